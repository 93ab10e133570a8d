/// Tunables a coordinator needs. Times are monotonic milliseconds.
public struct QuorumConfig: Hashable, Sendable {
    public var n: Int
    public var r: Int
    public var w: Int
    public var requestTimeoutMs: UInt64
    /// How long after answering a read the coordinator keeps collecting late replies for read repair.
    public var readRepairWindowMs: UInt64
    /// A tombstone is reaped only once it is this old (wall ms), so a replica or hint that
    /// was away for less than this cannot bring the deleted value back (Cassandra's
    /// gc_grace).
    public var tombstoneGraceMs: UInt64

    public init(
        n: Int = 3, r: Int = 2, w: Int = 2, requestTimeoutMs: UInt64 = 1000, readRepairWindowMs: UInt64 = 1000,
        tombstoneGraceMs: UInt64 = 600_000
    ) {
        self.n = n
        self.r = r
        self.w = w
        self.requestTimeoutMs = requestTimeoutMs
        self.readRepairWindowMs = readRepairWindowMs
        self.tombstoneGraceMs = tombstoneGraceMs
    }
}

/// Bounds on keys that hold whatever a node is configured with.
public enum KeyLimits {
    /// No key, from a client, a peer or the disk, is longer: storage keys spell a hint's
    /// key length in two bytes, and peers refuse longer keys while decoding.
    public static let absoluteMaxKeyBytes = 65_535
}
