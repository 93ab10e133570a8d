public import DynamoCore
import NIOConcurrencyHelpers

/// A node's primary replica store: the versions of every key it holds, on an engine.
///
/// Layout: `0x01 | MD5(key) (16 bytes) | key` so a scan walks keys in ring order (what
/// handoff and Merkle trees need); `0x00 | name` holds node metadata. Updates to one key
/// are read-merge-write under a striped lock, so concurrent writes never lose a version.
public final class ReplicaStore: Sendable {
    public let engine: any StorageEngine
    private let stripes: [NIOLock]
    private let keyCounter: NIOLockedValueBox<Int>

    static let metaPrefix: UInt8 = 0x00
    static let dataPrefix: UInt8 = 0x01

    public init(engine: any StorageEngine) throws(StorageError) {
        self.engine = engine
        self.stripes = (0..<64).map { _ in NIOLock() }
        self.keyCounter = NIOLockedValueBox(0)
        var count = 0
        var start: [UInt8] = [Self.dataPrefix]
        while true {
            let batch = try engine.scan(from: start, to: [Self.dataPrefix + 1], limit: 1024)
            count += batch.count
            guard let last = batch.last, batch.count == 1024 else { break }
            start = last.key + [0]
        }
        keyCounter.withLockedValue { $0 = count }
    }

    /// Keys held in this store (values and tombstones).
    public var keyCount: Int { keyCounter.withLockedValue { $0 } }

    static func storageKey(for key: [UInt8]) -> [UInt8] {
        [dataPrefix] + RingPosition.of(key: key).bytes + key
    }

    private func stripe(for storageKey: [UInt8]) -> NIOLock {
        // Bytes 1...2 are the start of the key's MD5: uniformly spread.
        stripes[Int(storageKey[1] ^ storageKey[2]) % stripes.count]
    }

    public func object(for key: [UInt8]) throws(StorageError) -> VersionedObject? {
        guard let bytes = try engine.get(Self.storageKey(for: key)) else { return nil }
        return try Self.decode(bytes, key: key)
    }

    /// Atomically replaces the stored object with `transform(current)`; returns the new object.
    public func update<Result>(
        _ key: [UInt8], sync: Bool, _ transform: (VersionedObject?) -> (VersionedObject, Result)
    ) throws(StorageError) -> (VersionedObject, Result) {
        let storageKey = Self.storageKey(for: key)
        let lock = stripe(for: storageKey)
        lock.lock()
        defer { lock.unlock() }
        let current = try engine.get(storageKey).map { bytes throws(StorageError) in try Self.decode(bytes, key: key) }
        let (next, result) = transform(current)
        if next != current {
            try engine.put(storageKey, next.encoded(), sync: sync)
            if current == nil { keyCounter.withLockedValue { $0 += 1 } }
        }
        return (next, result)
    }

    /// Merges versions another replica sent (a write, a repair, a handoff).
    @discardableResult
    public func merge(_ key: [UInt8], _ incoming: VersionedObject, policy: ClockPolicy, sync: Bool) throws(StorageError)
        -> VersionedObject
    {
        try update(key, sync: sync) { current in
            ((current ?? VersionedObject()).merged(with: incoming, policy: policy), ())
        }.0
    }

    /// Coordinates a write here: generates the new version from what is stored and the
    /// client's context, stores it, and returns it (to be replicated).
    public func coordinateWrite(
        _ key: [UInt8], value: [UInt8]?, context: CausalHistory?, actor: Actor, now: UInt64, policy: ClockPolicy,
        sync: Bool
    ) throws(StorageError) -> Version {
        try update(key, sync: sync) { current in
            (current ?? VersionedObject()).writing(value, context: context, actor: actor, now: now, policy: policy)
        }.1
    }

    /// Node metadata (identity, tokens), stored beside the data.
    public func metadata(_ name: String) throws(StorageError) -> [UInt8]? {
        try engine.get([Self.metaPrefix] + Array(name.utf8))
    }

    public func setMetadata(_ name: String, _ value: [UInt8]) throws(StorageError) {
        try engine.put([Self.metaPrefix] + Array(name.utf8), value, sync: true)
    }

    private static func decode(_ bytes: [UInt8], key: [UInt8]) throws(StorageError) -> VersionedObject {
        do {
            return try VersionedObject(decoding: bytes)
        } catch {
            throw StorageError("stored object for a key of \(key.count) bytes is corrupt: \(error.reason)")
        }
    }
}
