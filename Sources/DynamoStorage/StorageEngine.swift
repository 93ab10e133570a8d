public import DynamoCore

/// An ordered byte-string key-value engine: the one thing storage backends implement.
///
/// Engines are dumb and synchronous (they block): callers run them off the event loops.
/// Keys sort bytewise, which `ReplicaStore` uses to lay data out in ring order.
public protocol StorageEngine: Sendable {
    func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]?
    /// `sync` forces the write-ahead log to disk before returning (durable against power loss,
    /// not just a process crash).
    func put(_ key: [UInt8], _ value: [UInt8], sync: Bool) throws(StorageError)
    func delete(_ key: [UInt8], sync: Bool) throws(StorageError)
    /// Applies the changes in order, atomically where the engine can (a crash keeps all or
    /// none of them), with one sync for the lot when `sync` is set. An extension gives
    /// engines without batches a sequential default.
    func write(_ changes: [StorageChange], sync: Bool) throws(StorageError)
    /// Up to `limit` entries with `start <= key < end` (no end: to the last key), in key order.
    func scan(from start: [UInt8], to end: [UInt8]?, limit: Int) throws(StorageError) -> [(
        key: [UInt8], value: [UInt8]
    )]
    /// Bytes the engine holds, as cheaply as it can estimate them (for `/metrics`; nil:
    /// unknown, the store is closed, say).
    var approximateBytes: UInt64? { get }
    /// Closes the engine for good (the node stops); nothing may use it afterwards.
    func close()
}

/// A storage failure, with what a person needs to fix it.
public struct StorageError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    /// Set when nothing failed but the change was refused because the key would hold too
    /// much (a client's answer, not a fault of the store).
    public var refusal: ObjectLimitRefusal?

    public init(_ message: String) { self.message = message }

    public init(refusal: ObjectLimitRefusal) {
        self.message = refusal.description
        self.refusal = refusal
    }

    public var description: String { message }
}

extension StorageEngine {
    /// Engines that cannot tell say nothing.
    public var approximateBytes: UInt64? { nil }
    /// Engines with nothing to release do nothing.
    public func close() {}
}
