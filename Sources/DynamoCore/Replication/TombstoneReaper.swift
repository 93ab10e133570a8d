/// Tombstone reaping: every sweep interval this node looks for its own keys that hold only
/// tombstones older than the grace period, and reads each at R=N. The read repairs replicas
/// that missed the delete, and once every home replica holds the same tombstone it is
/// forgotten everywhere, but only while the whole cluster is settled: no hint or stray
/// copy anywhere could bring back what the tombstone superseded.
///
/// Every holder sweeps (not just the first home node, which may be the one replica that
/// missed the delete). Pure: `NodeMachine` runs the sweeps and the reads.
public struct TombstoneReaper: Sendable {
    public enum Step: Hashable, Sendable {
        /// Find up to `limit` own keys holding only tombstones written before `before`
        /// (wall ms; answer: `found`).
        case find(before: UInt64, limit: Int)
        /// Read the key at R=N (repairing and, when settled, reaping it).
        case read(key: [UInt8])
    }

    /// Tombstones this node forgot because every home replica had them.
    public private(set) var reaped = 0
    private var nextSweepAt: UInt64
    private let intervalMs: UInt64
    private let graceMs: UInt64

    public init(intervalMs: UInt64, graceMs: UInt64) {
        self.intervalMs = intervalMs
        self.graceMs = graceMs
        self.nextSweepAt = intervalMs
    }

    /// Sweeps when a sweep is due.
    public mutating func tick(now: NodeMachine.Now) -> [Step] {
        guard now.monotonicMs >= nextSweepAt else { return [] }
        nextSweepAt = now.monotonicMs + intervalMs
        return [.find(before: now.wallMs > graceMs ? now.wallMs - graceMs : 0, limit: 32)]
    }

    /// The sweep found these keys: each is read.
    public func found(_ keys: [[UInt8]]) -> [Step] { keys.map { .read(key: $0) } }

    /// A replica (this node's store, for itself or a peer's read) forgot a tombstone.
    public mutating func forgot() { reaped += 1 }

    /// Whether this node is settled: it holds no hints, its last full handoff pass found no
    /// data it does not own, and it is not joining.
    public static func isSettled(hintsHeld: Int?, lastPass: OwnershipHandoff.LastPass, joining: Bool) -> Bool {
        hintsHeld == 0 && lastPass == .clean && !joining
    }

    /// Whether tombstones may be reaped: every member is settled, or left (it handed
    /// everything off and said so before it exited). A member still `leaving` and gone may
    /// have crashed or been cut off mid-handoff, holding live copies of what tombstones
    /// deleted: reaping then would let them come back (found by an attack review).
    public static func clusterSettled(_ members: some Sequence<Member>) -> Bool {
        members.allSatisfy { member in member.settled || member.status == .left }
    }
}
