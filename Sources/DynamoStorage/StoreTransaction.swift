import DynamoCore

/// One change of a write batch.
public enum StorageChange: Hashable, Sendable {
    case put(key: [UInt8], value: [UInt8])
    case delete(key: [UInt8])
}

extension StorageEngine {
    /// The default for engines without batches: the changes in order, synced with the last
    /// (a sequential log makes every earlier write durable with it).
    public func write(_ changes: [StorageChange], sync: Bool) throws(StorageError) {
        for (index, change) in changes.enumerated() {
            let syncNow = sync && index == changes.count - 1
            switch change {
            case .put(let key, let value): try put(key, value, sync: syncNow)
            case .delete(let key): try delete(key, sync: syncNow)
            }
        }
    }
}

/// The writes of storage operations not yet in the engine, and what they change in the
/// store's counters and Merkle trees once they are.
///
/// Group commit: every operation of a batch reads through the writes of the operations
/// before it (`get`, `scan`), and the batch goes to the engine as one atomic write with one
/// sync. An operation runs in a child transaction, so one that fails leaves nothing
/// behind; its parent absorbs it when it succeeds. Confined to one thread.
final class StoreTransaction {
    private let engine: any StorageEngine
    private let parent: StoreTransaction?
    /// The latest value of each key written here (nil: deleted).
    private var overlay: [[UInt8]: [UInt8]?] = [:]
    private(set) var changes: [StorageChange] = []
    /// Some change asked to be synced.
    private(set) var sync = false
    /// Keys of own data added (+) or removed (-).
    var keyDelta = 0
    /// Hints added (+) or removed (-) per target.
    private(set) var hintDelta: [NodeName: Int] = [:]
    /// Hints added (+) or removed (-) per key.
    private(set) var hintKeyDelta: [[UInt8]: Int] = [:]
    /// Own data changed, in order: the key's new tree hash (nil: gone).
    var treeChanges: [(key: [UInt8], hash: UInt64?)] = []

    init(engine: any StorageEngine, parent: StoreTransaction? = nil) {
        self.engine = engine
        self.parent = parent
    }

    func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]? {
        if let written = overlay[key] { return written }
        if let parent { return try parent.get(key) }
        return try engine.get(key)
    }

    func put(_ key: [UInt8], _ value: [UInt8], sync: Bool) {
        overlay[key] = .some(value)
        changes.append(.put(key: key, value: value))
        self.sync = self.sync || sync
    }

    func delete(_ key: [UInt8], sync: Bool) {
        overlay[key] = .some(nil)
        changes.append(.delete(key: key))
        self.sync = self.sync || sync
    }

    /// Up to `limit` entries with `start <= key < end`, as they stand with this
    /// transaction's writes.
    func scan(from start: [UInt8], to end: [UInt8], limit: Int) throws(StorageError) -> [(
        key: [UInt8], value: [UInt8]
    )] {
        let written = overlay.filter { !$0.key.lexicographicallyPrecedes(start) && $0.key.lexicographicallyPrecedes(end) }
        // Enough from below that deletions here cannot leave the first `limit` short.
        let below =
            if let parent {
                try parent.scan(from: start, to: end, limit: limit + written.count)
            } else {
                try engine.scan(from: start, to: end, limit: limit + written.count)
            }
        guard !written.isEmpty else { return Array(below.prefix(limit)) }
        var merged: [[UInt8]: [UInt8]] = [:]
        for entry in below { merged[entry.key] = entry.value }
        for (key, value) in written { merged[key] = value }
        return merged.sorted { $0.key.lexicographicallyPrecedes($1.key) }.prefix(limit).map { ($0.key, $0.value) }
    }

    /// A hint of `key` for `target` added (+1) or removed (-1).
    func countHint(of key: [UInt8], for target: NodeName, _ delta: Int) {
        hintDelta[target, default: 0] += delta
        hintKeyDelta[key, default: 0] += delta
    }

    /// Whether this transaction (or one it belongs to) added or removed hints of `key`.
    func changesHints(of key: [UInt8]) -> Bool {
        hintKeyDelta[key] != nil || (parent?.changesHints(of: key) ?? false)
    }

    /// Takes over the writes and effects of a child that succeeded.
    func absorb(_ child: StoreTransaction) {
        for (key, value) in child.overlay { overlay[key] = value }
        changes += child.changes
        sync = sync || child.sync
        keyDelta += child.keyDelta
        for (target, delta) in child.hintDelta { hintDelta[target, default: 0] += delta }
        for (key, delta) in child.hintKeyDelta { hintKeyDelta[key, default: 0] += delta }
        treeChanges += child.treeChanges
    }
}
