import DynamoStorage
import NIOConcurrencyHelpers

/// A node's disk in the simulator: an in-memory engine that can fill up (writes fail, as
/// on a full disk) and can lose the tail of its write-ahead log in a crash (the last writes
/// are undone, and its write sequence goes back, as RocksDB's recovery to the last
/// consistent point does).
///
/// The node in the product notices such a loss by its seal (the sequence it recorded went
/// back) and refills from its replicas; the simulator restarts the node the same way.
final class SimulatedDisk: StorageEngine, Sendable {
    /// The data itself; `state` says what the disk may do to it.
    private let memory = MemoryEngine()
    private struct State {
        var full = false
        /// The most recent writes, newest last: the key and what it held before.
        var journal: [(key: [UInt8], before: [UInt8]?)] = []
        var sequence: UInt64 = 0
    }
    private let state = NIOLockedValueBox(State())
    /// How many recent writes a crash can lose at most.
    static let journalLimit = 64

    var isFull: Bool {
        get { state.withLockedValue { $0.full } }
        set { state.withLockedValue { $0.full = newValue } }
    }

    var sequence: UInt64 { state.withLockedValue { $0.sequence } }

    /// Undoes the last `count` writes (at most those journaled); returns how many were lost.
    func loseTail(_ count: Int) -> Int {
        state.withLockedValue { state in
            let lost = min(count, state.journal.count)
            for _ in 0..<lost {
                let (key, before) = state.journal.removeLast()
                if let before { try? memory.put(key, before, sync: false) } else { try? memory.delete(key, sync: false) }
                state.sequence -= 1
            }
            return lost
        }
    }

    func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]? { try memory.get(key) }

    func put(_ key: [UInt8], _ value: [UInt8], sync: Bool) throws(StorageError) { try write(key, value) }

    func delete(_ key: [UInt8], sync: Bool) throws(StorageError) { try write(key, nil) }

    private func write(_ key: [UInt8], _ value: [UInt8]?) throws(StorageError) {
        let refused = state.withLockedValue { state -> Bool in
            guard !state.full else { return true }
            state.journal.append((key, try? memory.get(key)))
            if state.journal.count > Self.journalLimit { state.journal.removeFirst() }
            if let value { try? memory.put(key, value, sync: false) } else { try? memory.delete(key, sync: false) }
            state.sequence += 1
            return false
        }
        if refused { throw StorageError("IO error: No space left on device (simulated full disk)") }
    }

    func scan(from start: [UInt8], to end: [UInt8]?, limit: Int) throws(StorageError) -> [(
        key: [UInt8], value: [UInt8]
    )] {
        try memory.scan(from: start, to: end, limit: limit)
    }
}
