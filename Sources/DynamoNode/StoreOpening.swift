import DynamoCore
import DynamoStorage
import Foundation
import Logging
import NIOConcurrencyHelpers

/// The data dir's store, opened and checked against its seal (see `StoreSeal`).
///
/// A store that lost data (a damaged write-ahead log or MANIFEST, a store dir emptied), or
/// that was repaired with `--repair-store`, is not served as it is: the node says so at
/// error level and marks itself to refill, so it rejoins as a new node does, pulling the
/// keys of its ranges from its replicas before it serves them again (it keeps its name,
/// tokens and what survived).
struct OpenedStore {
    let store: ReplicaStore
    let identity: NodeIdentity
    let keeper: StoreKeeper
    /// What the store lost at this start (nil: nothing found), for the status.
    let loss: String?

    static func open(config: NodeConfig, logger: Logger) throws -> OpenedStore {
        let path = config.dataDir + "/rocksdb"
        let repairHint =
            "if the store is damaged, start the node once with --repair-store: it keeps what reads back and refills the rest from the replicas"
        do {
            try FileManager.default.createDirectory(atPath: config.dataDir, withIntermediateDirectories: true)
        } catch {
            throw NodeStartError("cannot create data dir \(config.dataDir): \(error.localizedDescription)")
        }
        let engine: RocksDBEngine
        let store: ReplicaStore
        var logDamage: String?
        do {
            if config.repairStore, FileManager.default.fileExists(atPath: path) {
                let room = RocksDBEngine.roomToRecover(path: path)
                guard room.free >= room.needed else {
                    throw NodeStartError(
                        "not enough free space to repair the store in \(path): \(room.free) bytes free, \(room.needed) needed; free some space first"
                    )
                }
                logger.warning("repairing the store in \(path) (--repair-store)")
                try RocksDBEngine.repair(path: path)
            }
            (engine, logDamage) = try openEngine(path: path)
            store = try ReplicaStore(engine: engine)
        } catch let error as NodeStartError {
            throw error
        } catch {
            if "\(error)".contains("No space left") {
                throw NodeStartError(
                    "cannot open data dir \(config.dataDir): its disk is full (\(error)); free some space and start the node again"
                )
            }
            throw NodeStartError("cannot open data dir \(config.dataDir): \(error); \(repairHint)")
        }
        do {
            let sealPath = config.dataDir + "/" + StoreSeal.fileName
            var loss = logDamage
            let stored = try store.metadata(StoreSeal.metadataKey)
            if let bytes = try StoreSeal.read(at: sealPath) {
                if let seal = StoreSeal(decoding: bytes) {
                    loss = loss ?? seal.loss(storeIncarnation: stored, storeSequence: engine.latestSequence ?? 0)
                } else {
                    // Whatever damaged the seal may have damaged the store: refill to be safe.
                    loss = loss ?? "the store seal \(sealPath) is damaged, so what the store holds cannot be checked"
                }
            }
            if config.repairStore {
                // What repair could not read is set aside in rocksdb/lost (kept for the operator).
                loss =
                    "the store was repaired (--repair-store): what did not read back is gone (set aside in \(path)/lost)"
            }
            let incarnation = stored ?? StoreSeal.newIncarnation()
            if stored == nil { try store.setMetadata(StoreSeal.metadataKey, incarnation) }
            if let loss {
                logger.error(
                    "THIS NODE'S STORE LOST DATA: \(loss). It refills its ranges from its replicas before serving them."
                )
            }
            let identity = try NodeIdentity.loadOrCreate(
                in: store, name: config.name, tokenCount: config.tokens, refill: loss != nil,
                nowMs: config.wallMs)
            let keeper = StoreKeeper(sealPath: sealPath, incarnation: incarnation, engine: engine, store: store)
            try keeper.refreshSeal()
            return OpenedStore(store: store, identity: identity, keeper: keeper, loss: loss)
        } catch let error as NodeStartError {
            throw error
        } catch {
            throw NodeStartError("cannot check the store in \(path): \(error)")
        }
    }
}

/// Opens the store, refusing a damaged log record however recent; then, if that was the
/// trouble, recovers the log to its last consistent point and says what was lost.
private func openEngine(path: String) throws(StorageError) -> (RocksDBEngine, String?) {
    do {
        return (try RocksDBEngine(path: path), nil)
    } catch {
        guard error.message.contains("Corruption") else { throw error }
        let engine = try RocksDBEngine(path: path, strictLog: false)
        return (
            engine,
            "its write-ahead log is damaged (\(error.message)); RocksDB recovered it to its last consistent point, and the writes after that are gone"
        )
    }
}

/// Looks after the open store from the shell: keeps its seal current (about once a second,
/// off the event loops, and at shutdown), and after a storage failure gets it taking writes
/// again once the cause is gone (a full disk with space back).
final class StoreKeeper: Sendable {
    let sealPath: String
    private let incarnation: [UInt8]
    private let engine: RocksDBEngine
    private let store: ReplicaStore
    private let written = NIOLockedValueBox<UInt64?>(nil)

    init(sealPath: String, incarnation: [UInt8], engine: RocksDBEngine, store: ReplicaStore) {
        self.sealPath = sealPath
        self.incarnation = incarnation
        self.engine = engine
        self.store = store
    }

    /// Records the store's current sequence, if it moved since the last time.
    func refreshSeal() throws(StorageError) {
        let outcome = written.withLockedValue { written -> Result<Void, StorageError> in
            guard let sequence = engine.latestSequence, sequence != written else { return .success(()) }
            do throws(StorageError) {
                try StoreSeal(incarnation: incarnation, sequence: sequence).write(to: sealPath)
            } catch {
                return .failure(error)
            }
            written = sequence
            return .success(())
        }
        try outcome.get()
    }

    /// After a failure: makes sure the store takes writes. A small synced write first (the
    /// fault may have passed); if that fails too, the store is reopened (RocksDB refuses
    /// every write after a failed log append until then) and tried again. Returns whether
    /// it had to reopen; throws while the fault lasts.
    func resume() throws(StorageError) -> Bool {
        let probe = Array(String(UInt64.random(in: .min ... .max)).utf8)
        do {
            try store.setMetadata("probe", probe)
            try store.recountIfUncertain()
            return false
        } catch {
            let room = RocksDBEngine.roomToRecover(path: engine.path)
            guard room.free >= room.needed else {
                throw StorageError(
                    "waiting for disk space to reopen the store: \(room.free) bytes free, \(room.needed) needed")
            }
            try engine.reopen()
            try store.setMetadata("probe", probe)
            // A batch whose sync failed may have come back with the log: count it.
            try store.recountIfUncertain()
            return true
        }
    }

    /// A storage failure in a few words, for the status and the dashboard.
    static func degradation(_ reason: String) -> String {
        if reason.contains("No space left") || reason.contains("ENOSPC") || reason.contains("waiting for disk space") {
            return "disk full"
        }
        if reason.contains("is closed") { return "store closed" }
        return "storage errors"
    }
}
