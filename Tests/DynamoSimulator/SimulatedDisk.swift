public import DynamoStorage
import NIOConcurrencyHelpers

/// A node's disk in the simulator, with the durability RocksDB gives the product.
///
/// - Every write reaches the write-ahead log before it returns, so killing the process
///   (`kill -9`) loses nothing the engine took.
/// - A write with `sync` forces the log to disk, and with it every write before it (the log
///   is sequential). A power loss undoes every write after the last synced one.
/// - A damaged log loses its last records however they were written (RocksDB recovers to
///   the last consistent point).
/// - The disk can fill up: writes then fail.
///
/// The product notices lost writes by its seal, which records the write sequence about once
/// a second (`StoreSeal`): if the store comes back behind it, the node refills from its
/// replicas. `seal()` and `wentBehindSeal` model that, with the same blind spot: writes made
/// since the last seal and lost in a power loss go unnoticed (the README says so).
public final class SimulatedDisk: StorageEngine, Sendable {
    public init() {}

    private struct State {
        var entries: [[UInt8]: [UInt8]] = [:]
        var full = false
        /// The most recent writes, newest last: the key and what it held before.
        var journal: [(key: [UInt8], before: [UInt8]?)] = []
        /// Writes since the last synced one, newest last: the key and what it held before.
        /// A power loss undoes them all, however many (nothing syncs on its own).
        var unsynced: [(key: [UInt8], before: [UInt8]?)] = []
        var sequence: UInt64 = 0
        var sealed: UInt64 = 0
    }
    private let state = NIOLockedValueBox(State())
    /// How many recent writes a damaged log can lose at most.
    public static let journalLimit = 64

    public var isFull: Bool {
        get { state.withLockedValue { $0.full } }
        set { state.withLockedValue { $0.full = newValue } }
    }

    /// Records the current write sequence, as the product's seal refresh does.
    public func seal() { state.withLockedValue { $0.sealed = $0.sequence } }

    /// Whether the store is behind its seal: the product then knows it lost writes.
    public var wentBehindSeal: Bool { state.withLockedValue { $0.sequence < $0.sealed } }

    /// A damaged log: undoes the last `count` writes (at most those journaled), synced or
    /// not; returns how many were lost.
    public func loseTail(_ count: Int) -> Int {
        state.withLockedValue { state in
            let lost = min(count, state.journal.count)
            Self.undo(lost, in: &state)
            return lost
        }
    }

    /// A power loss: undoes every write after the last synced one; returns how many.
    public func losePower() -> Int {
        state.withLockedValue { state in
            let lost = state.unsynced.count
            for (key, before) in state.unsynced.reversed() { state.entries[key] = before }
            state.sequence -= UInt64(lost)
            // The journal's newest entries were those writes.
            state.journal.removeLast(min(lost, state.journal.count))
            state.unsynced = []
            return lost
        }
    }

    private static func undo(_ count: Int, in state: inout State) {
        for _ in 0..<count {
            let (key, before) = state.journal.removeLast()
            state.entries[key] = before
            state.sequence -= 1
        }
        // The undone writes were the newest: those of them not yet synced are gone.
        state.unsynced.removeLast(min(count, state.unsynced.count))
    }

    public func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]? { state.withLockedValue { $0.entries[key] } }

    public func put(_ key: [UInt8], _ value: [UInt8], sync: Bool) throws(StorageError) { try write(key, value, sync: sync) }

    public func delete(_ key: [UInt8], sync: Bool) throws(StorageError) { try write(key, nil, sync: sync) }


    private func write(_ key: [UInt8], _ value: [UInt8]?, sync: Bool) throws(StorageError) {
        let refused = state.withLockedValue { state -> Bool in
            guard !state.full else { return true }
            state.journal.append((key, state.entries[key]))
            if state.journal.count > Self.journalLimit {
                // A damaged log loses at most the newest `journalLimit` writes.
                state.journal.removeFirst()
            }
            if sync {
                state.unsynced = []
            } else {
                state.unsynced.append((key, state.entries[key]))
            }
            state.entries[key] = value
            state.sequence += 1
            return false
        }
        if refused { throw StorageError("IO error: No space left on device (simulated full disk)") }
    }

    public func scan(from start: [UInt8], to end: [UInt8]?, limit: Int) throws(StorageError) -> [(
        key: [UInt8], value: [UInt8]
    )] {
        state.withLockedValue { state in
            state.entries.filter { entry in
                !entry.key.lexicographicallyPrecedes(start)
                    && (end.map { entry.key.lexicographicallyPrecedes($0) } ?? true)
            }
            .sorted { $0.key.lexicographicallyPrecedes($1.key) }
            .prefix(limit)
            .map { ($0.key, $0.value) }
        }
    }
}
