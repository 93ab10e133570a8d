import DynamoCore
import Foundation
import Testing

@testable import DynamoStorage

func temporaryDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("dynamo-test-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct StorageEngineTests {
    static func engines() throws -> [(String, any StorageEngine, String?)] {
        let dir = temporaryDirectory()
        return [("memory", MemoryEngine(), nil), ("rocksdb", try RocksDBEngine(path: dir), dir)]
    }

    @Test func getPutDeleteAndOrderedScanOnEveryEngine() throws {
        for (name, engine, dir) in try Self.engines() {
            defer { dir.map { try? FileManager.default.removeItem(atPath: $0) } }
            for b in [UInt8](arrayLiteral: 5, 1, 9, 3, 7) { try engine.put([1, b], [b], sync: false) }
            try engine.put([2, 0], [0], sync: true)
            #expect(try engine.get([1, 9]) == [9], "\(name)")
            #expect(try engine.get([1, 4]) == nil, "\(name)")
            try engine.delete([1, 9], sync: false)
            #expect(try engine.get([1, 9]) == nil, "\(name)")
            let scanned = try engine.scan(from: [1, 2], to: [2], limit: 10).map(\.key)
            #expect(scanned == [[1, 3], [1, 5], [1, 7]], "\(name)")
            #expect(try engine.scan(from: [1], to: nil, limit: 2).map(\.key) == [[1, 1], [1, 3]], "\(name)")
        }
    }

    @Test func rocksDBKeepsDataAcrossReopenAndRefusesASecondOpener() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let engine = try RocksDBEngine(path: dir)
            try engine.put(Array("k".utf8), Array("v".utf8), sync: true)
            #expect(throws: StorageError.self) { try RocksDBEngine(path: dir) }
        }
        let reopened = try RocksDBEngine(path: dir)
        #expect(try reopened.get(Array("k".utf8)) == Array("v".utf8))
    }

    @Test func anUnwritableDataDirIsAClearError() {
        #expect(throws: StorageError.self) { try RocksDBEngine(path: "/proc/definitely/not/here") }
    }
}

@Suite struct ReplicaStoreTests {
    let policy = ClockPolicy()

    @Test func keysAreLaidOutInRingOrderAndCounted() throws {
        let store = try ReplicaStore(engine: MemoryEngine())
        let keys = (0..<50).map { Array("key-\($0)".utf8) }
        for key in keys {
            _ = try store.coordinateWrite(
                key, value: [1], context: nil, actor: "n1", now: 1, policy: policy, sync: false)
        }
        #expect(store.keyCount == 50)
        let scanned = try store.engine.scan(
            from: [StorageKey.data], to: [StorageKey.data + 1], limit: 100)
        let positions = scanned.map { Array($0.key[1..<17]) }
        #expect(positions == positions.sorted { $0.lexicographicallyPrecedes($1) })
        #expect(Set(scanned.map { Array($0.key[17...]) }) == Set(keys))
        // Rewrites do not count twice; a reopened store counts from disk.
        _ = try store.coordinateWrite(
            keys[0], value: [2], context: nil, actor: "n1", now: 2, policy: policy, sync: false)
        #expect(try ReplicaStore(engine: store.engine).keyCount == 50)
    }

    @Test func concurrentWritesToOneKeyAreAllKept() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try ReplicaStore(engine: try RocksDBEngine(path: dir))
        let key = Array("hot".utf8)
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    for i in 0..<25 {
                        let incoming = try! VersionedObject().writing(
                            Array("\(writer)-\(i)".utf8), context: nil, actor: "w\(writer)-\(i)", now: 1,
                            policy: ClockPolicy()
                        ).object
                        try! store.merge(key, incoming, policy: ClockPolicy(), sync: false)
                    }
                }
            }
        }
        #expect(try store.object(for: key)?.versions.count == 200)
    }

    /// A fallback's dot left with a delivered hint; its next write of the key must not reuse it
    /// (the simulator found this: the old version's context then superseded the new one).
    @Test func dotsNeverRepeatAfterTheirVersionsLeftTheNode() throws {
        let store = try ReplicaStore(engine: MemoryEngine())
        let key = Array("k".utf8)
        let first = try store.coordinateHintedWrite(
            key, target: "n4", value: [1], context: nil, actor: "n5", now: 1, policy: policy
        ).version
        let hint = try #require(try store.pendingHints(limit: 10) { _ in true }.first)
        #expect(try store.removeHint(hint))
        let second = try store.coordinateHintedWrite(
            key, target: "n4", value: [2], context: nil, actor: "n5", now: 2, policy: policy
        ).version
        #expect(second.dot.counter > first.dot.counter)
        // The same for own data handed off (or a tombstone reaped), then written again.
        let own = try store.coordinateWrite(
            key, value: [3], context: nil, actor: "n5", now: 3, policy: policy, sync: false
        ).version
        #expect(try store.forget(key, ifStill: try #require(try store.object(for: key))))
        let again = try store.coordinateWrite(
            key, value: [4], context: nil, actor: "n5", now: 4, policy: policy, sync: false
        ).version
        #expect(again.dot.counter > own.dot.counter)
        #expect(store.keyCount == 1)
    }

    /// Found by the simulator's one-version-per-dot check: a fallback that later becomes a
    /// home node of the key (a node is refilling) numbered its own write like the one it
    /// still held as a hint.
    @Test func aHomeWriteCountsPastTheDotsOfHintsHeldForTheKey() throws {
        let store = try ReplicaStore(engine: MemoryEngine())
        let key = Array("k".utf8)
        let hinted = try store.coordinateHintedWrite(
            key, target: "n3", value: [1], context: nil, actor: "n2", now: 1, policy: policy)
        let own = try store.coordinateWrite(
            key, value: [2], context: nil, actor: "n2", now: 2, policy: policy, sync: false)
        #expect(own.version.dot.counter > hinted.version.dot.counter)
    }

    /// Found by the simulator with clocks pruned to 2 entries: another coordinator's write
    /// dropped this node's entry from the key's history, so its next write reused a dot
    /// (and a version that covered the old one silently superseded the new).
    @Test func aMergedPrunedClockDoesNotMakeANodeReuseItsDots() throws {
        let pruning = ClockPolicy(maxEntries: 2)
        let store = try ReplicaStore(engine: MemoryEngine())
        let key = Array("k".utf8)
        let mine = try store.coordinateWrite(
            key, value: [1], context: nil, actor: "n5", now: 1, policy: pruning, sync: false
        ).version
        // n1 and n3 wrote over it; n1's clock keeps only two entries and drops n5.
        let over = Version(
            dot: Dot(actor: "n1", counter: 2),
            past: CausalHistory(dots: [mine.dot, Dot(actor: "n1", counter: 1), Dot(actor: "n3", counter: 1)]), value: [2],
            timestamp: 2)
        try store.merge(key, VersionedObject(versions: [over]), policy: pruning, sync: false)
        let pruned = Version(
            dot: Dot(actor: "n1", counter: 3),
            past: CausalHistory(dots: [Dot(actor: "n1", counter: 2), Dot(actor: "n3", counter: 1)]), value: [3],
            timestamp: 3)
        try store.merge(key, VersionedObject(versions: [pruned]), policy: pruning, sync: false)
        #expect(try store.object(for: key)?.maxCounter(of: "n5") == 0, "the history no longer shows n5")
        let next = try store.coordinateWrite(
            key, value: [4], context: nil, actor: "n5", now: 4, policy: pruning, sync: false
        ).version
        #expect(next.dot.counter > mine.dot.counter)
        // The same when the counter lives only in the past of a hint's version, which a
        // pruned version of the node's own data supersedes.
        let other = try ReplicaStore(engine: MemoryEngine())
        let hint = Version(
            dot: Dot(actor: "n3", counter: 2), past: CausalHistory(dots: [Dot(actor: "n3", counter: 1), Dot(actor: "n5", counter: 3)]),
            value: nil, timestamp: 5)
        try other.storeHint(target: "n1", key: key, VersionedObject(versions: [hint]), policy: pruning, sync: true)
        let own = Version(
            dot: Dot(actor: "n3", counter: 3), past: CausalHistory(dots: [Dot(actor: "n3", counter: 1), Dot(actor: "n3", counter: 2)]),
            value: [6], timestamp: 6)
        try other.merge(key, VersionedObject(versions: [own]), policy: pruning, sync: false)
        let again = try other.coordinateHintedWrite(
            key, target: "n2", value: [7], context: nil, actor: "n5", now: 7, policy: pruning
        ).version
        #expect(again.dot.counter > 3)
    }

    @Test func corruptStoredBytesAreAStorageErrorNotACrash() throws {
        let engine = MemoryEngine()
        let store = try ReplicaStore(engine: engine)
        try engine.put(StorageKey.data([1]), [0xff, 0xff], sync: false)
        #expect(throws: StorageError.self) { try store.object(for: [1]) }
    }
}

@Suite struct StoreSealTests {
    let incarnation = StoreSeal.newIncarnation()

    @Test func aSealRoundTripsThroughItsFileAndADamagedOneIsToldApart() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/" + StoreSeal.fileName
        #expect(try StoreSeal.read(at: path) == nil)
        let seal = StoreSeal(incarnation: incarnation, sequence: 123_456)
        try seal.write(to: path)
        try StoreSeal(incarnation: incarnation, sequence: 123_457).write(to: path)
        #expect(try StoreSeal.read(at: path).flatMap(StoreSeal.init(decoding:))?.sequence == 123_457)
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
        var bytes = seal.encoded()
        bytes[10] ^= 1
        #expect(StoreSeal(decoding: bytes) == nil, "a flipped bit is a damaged seal, not a different one")
        #expect(StoreSeal(decoding: Array(seal.encoded().dropLast())) == nil)
        #expect(throws: StorageError.self) { try seal.write(to: dir + "/missing/dir/seal") }
    }

    @Test func aStoreThatWentBackOrWasReplacedHasLostData() {
        let seal = StoreSeal(incarnation: incarnation, sequence: 500)
        #expect(seal.loss(storeIncarnation: incarnation, storeSequence: 500) == nil)
        #expect(seal.loss(storeIncarnation: incarnation, storeSequence: 9_000) == nil)
        #expect(seal.loss(storeIncarnation: incarnation, storeSequence: 499)?.contains("1 writes are gone") == true)
        #expect(seal.loss(storeIncarnation: nil, storeSequence: 9_000) != nil, "an emptied store")
        #expect(seal.loss(storeIncarnation: StoreSeal.newIncarnation(), storeSequence: 9_000) != nil, "another store")
    }

    @Test func rocksDBCountsItsWritesAcrossAReopen() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let engine = try RocksDBEngine(path: dir)
            #expect(engine.latestSequence == 0)
            for i in 0..<10 { try engine.put([UInt8(i)], [1], sync: false) }
            #expect(engine.latestSequence == 10)
        }
        #expect(try RocksDBEngine(path: dir).latestSequence == 10)
    }
}

/// Issue 10, items 6 and 7, where the store enforces them.
@Suite struct ObjectLimitStoreTests {
    let policy = ClockPolicy()
    let limits = ObjectLimits(warnSiblings: 3, maxSiblings: 5, warnObjectBytes: 2_000, maxObjectBytes: 4_000)
    let key = Array("cart".utf8)

    func write(_ store: ReplicaStore, _ value: [UInt8], context: CausalHistory? = nil, now: UInt64 = 1)
        -> StorageResult
    {
        store.execute(
            .coordinateWrite(
                key: key, value: value, context: context, actor: "n1", now: now, hintFor: nil, sync: false,
                limits: limits),
            policy: policy)
    }

    @Test func blindWritesPastTheSiblingLimitAreRefusedAndNothingIsStored() throws {
        let store = try ReplicaStore(engine: MemoryEngine())
        for i in 1...5 {
            guard case .version(_, let size) = write(store, [UInt8(i)]) else {
                Issue.record("write \(i) refused")
                return
            }
            #expect(size.siblings == i)
            #expect(size.bytes == (try store.object(for: key))?.encoded().count)
        }
        let before = try #require(try store.object(for: key))
        guard case .refused(let refusal) = write(store, [6]) else {
            Issue.record("the sixth blind write must be refused")
            return
        }
        #expect(refusal.bound == .maxSiblings)
        #expect(refusal.current.siblings == 5 && refusal.attempted.siblings == 6)
        #expect(try store.object(for: key) == before)
        #expect(store.takeTreeUpdates().count == 5)
        // A write with the context of a read resolves them, and blind writes work again.
        guard case .version(_, let size) = write(store, [7], context: before.context) else {
            Issue.record("a resolving write must pass")
            return
        }
        #expect(size.siblings == 1)
        guard case .version = write(store, [8]) else {
            Issue.record("after resolving, a blind write passes")
            return
        }
    }

    @Test func aWritePastTheByteLimitIsRefused() throws {
        let store = try ReplicaStore(engine: MemoryEngine())
        let value = [UInt8](repeating: 1, count: 1_500)
        guard case .version = write(store, value), case .version = write(store, value) else {
            Issue.record("two values of 1,500 bytes fit in 4,000")
            return
        }
        guard case .refused(let refusal) = write(store, value) else {
            Issue.record("a third must be refused")
            return
        }
        #expect(refusal.bound == .maxObjectBytes)
        #expect(refusal.attempted.bytes > 4_000 && refusal.current.bytes <= 4_000)
        #expect(try store.object(for: key)?.versions.count == 2)
    }

    /// What 10,001 blind writes left behind before the limits: every operation on the key
    /// failed ("count 10001 exceeds 10000"), and so did every scan over it (Merkle trees,
    /// handoff, the tombstone sweep). The store reads it now; a peer is still never sent it
    /// (`PeerCodec.tooLarge`); and a write with its context resolves it.
    @Test func aKeyStoredPastTheDecodeLimitStaysReadableAndResolvable() throws {
        let engine = MemoryEngine()
        let store = try ReplicaStore(engine: engine)
        let count = VersionedObject.decodeVersionLimit + 1
        let legacy = VersionedObject(
            versions: (1...count).map {
                Version(dot: Dot(actor: "n1", counter: UInt64($0)), past: .empty, value: [1], timestamp: 1)
            })
        try engine.put(StorageKey.data(key), legacy.encoded(), sync: false)
        let read = try #require(try store.object(for: key))
        #expect(read.versions.count == count)
        #expect(try store.scanOwn(after: nil, limit: 10).count == 1)
        #expect(try store.rangeHashes(start: RingPosition(0), end: RingPosition(0)).0.count == 1)
        // Another blind write is refused, even with limits above the ceiling.
        guard case .refused(let refusal) = write(store, [2]) else {
            Issue.record("a blind write must not grow it")
            return
        }
        #expect(refusal.bound == .maxSiblings)
        // So is a replica's merge that would grow it; one that resolves it is taken.
        let extra = try VersionedObject().writing([3], context: nil, actor: "n2", now: 2, policy: policy).object
        let merge = StorageOp.merge(key: key, object: extra, hintFor: nil, sync: false)
        guard case .refused(let ceiling) = store.execute(merge, policy: policy) else {
            Issue.record("a replica must not grow it past what peers decode")
            return
        }
        #expect(ceiling.bound == .siblingCeiling)
        guard case .version(_, let size) = write(store, [4], context: read.context) else {
            Issue.record("a write with its context must resolve it")
            return
        }
        #expect(size.siblings == 1)
        #expect(try store.object(for: key)?.liveVersions.map(\.value) == [[4]])
    }
}
