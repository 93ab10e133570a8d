import NIOConcurrencyHelpers

/// An in-memory engine for tests and the simulator: same ordering, no durability.
public final class MemoryEngine: StorageEngine, Sendable {
    private let state = NIOLockedValueBox<[[UInt8]: [UInt8]]>([:])

    public init() {}

    /// Keys and values, byte for byte.
    public var approximateBytes: UInt64? {
        state.withLockedValue { entries in entries.reduce(0) { $0 + UInt64($1.key.count + $1.value.count) } }
    }

    public func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]? {
        state.withLockedValue { $0[key] }
    }

    public func put(_ key: [UInt8], _ value: [UInt8], sync: Bool) throws(StorageError) {
        state.withLockedValue { $0[key] = value }
    }

    public func delete(_ key: [UInt8], sync: Bool) throws(StorageError) {
        state.withLockedValue { _ = $0.removeValue(forKey: key) }
    }

    /// All the changes at once, as RocksDB's write batch does.
    public func write(_ changes: [StorageChange], sync: Bool) throws(StorageError) {
        state.withLockedValue { entries in
            for change in changes {
                switch change {
                case .put(let key, let value): entries[key] = value
                case .delete(let key): entries[key] = nil
                }
            }
        }
    }

    public func scan(from start: [UInt8], to end: [UInt8]?, limit: Int) throws(StorageError) -> [(
        key: [UInt8], value: [UInt8]
    )] {
        state.withLockedValue { entries in
            entries.filter { entry in
                !entry.key.lexicographicallyPrecedes(start)
                    && (end.map { entry.key.lexicographicallyPrecedes($0) } ?? true)
            }
            .sorted { $0.key.lexicographicallyPrecedes($1.key) }
            .prefix(limit)
            .map { ($0.key, $0.value) }
        }
    }
}
