/// One stored version of a key (a sibling when there are several): its value or a
/// tombstone, the dot that created it, and what its writer had seen.
///
/// This is a dotted version vector: `past` is the history the writer had seen (the
/// client's context) and `dot` the single new event. A version supersedes another only
/// if its past contains the other's dot. So a write made without a context is concurrent
/// with everything and never silently replaces a value, and a write with a context
/// replaces exactly the versions that context covers (see `CausalHistory`).
public struct Version: Hashable, Sendable {
    public var dot: Dot
    public var past: CausalHistory
    /// The value, or nil for a tombstone (a delete).
    public var value: [UInt8]?
    /// Wall-clock milliseconds of the write, for last-write-wins and for display.
    public var timestamp: UInt64

    public init(dot: Dot, past: CausalHistory, value: [UInt8]?, timestamp: UInt64) {
        self.dot = dot
        self.past = past
        self.value = value
        self.timestamp = timestamp
    }

    public var isTombstone: Bool { value == nil }

    /// The version's full causal history: its past plus its own dot.
    public var clock: CausalHistory { past.inserting(dot, timestamp: timestamp) }

    /// Whether this version was written knowing `other` (and so supersedes it).
    public func supersedes(_ other: Version) -> Bool {
        dot != other.dot && past.covers(other.dot)
    }

    /// Orders versions for last-write-wins: later timestamp, then the larger dot.
    func isNewer(than other: Version) -> Bool {
        (timestamp, dot.actor, dot.counter) > (other.timestamp, other.dot.actor, other.dot.counter)
    }
}

/// How a cluster resolves concurrent versions.
public enum ConflictPolicy: String, Sendable, CaseIterable, Codable {
    /// Keep every concurrent version and let the client reconcile (Dynamo's default).
    case siblings
    /// Keep only the version with the latest timestamp (for session-style data).
    case lww
}

/// Tunables for clocks.
public struct ClockPolicy: Sendable, Hashable {
    /// Prune a clock's vector to this many entries, dropping the oldest (paper: 10).
    public var maxEntries: Int
    public var conflicts: ConflictPolicy

    public init(maxEntries: Int = 10, conflicts: ConflictPolicy = .siblings) {
        self.maxEntries = maxEntries
        self.conflicts = conflicts
    }
}

/// Everything a replica knows about one key: the set of concurrent versions.
public struct VersionedObject: Hashable, Sendable {
    /// Concurrent versions, sorted by dot so equal objects compare and encode equally.
    public private(set) var versions: [Version]

    public init(versions: [Version] = []) {
        self.versions = versions.sorted { ($0.dot, $0.timestamp) < ($1.dot, $1.timestamp) }
    }

    public var isEmpty: Bool { versions.isEmpty }

    /// The merged history of every version: the context a client gets back from a read.
    public var context: CausalHistory {
        versions.reduce(CausalHistory.empty) { $0.merged(with: $1.clock) }
    }

    /// The highest counter of `actor` in the key's history (what `context` would say,
    /// without building it: one pass, no merging).
    public func maxCounter(of actor: ActorName) -> UInt64 {
        versions.reduce(0) { highest, version in
            max(highest, version.past.maxCounter(of: actor), version.dot.actor == actor ? version.dot.counter : 0)
        }
    }

    /// Versions that hold a value (not tombstones).
    public var liveVersions: [Version] { versions.filter { !$0.isTombstone } }

    /// True when every version is a tombstone (and there is at least one).
    public var isDeleted: Bool { !versions.isEmpty && versions.allSatisfy(\.isTombstone) }

    /// The bytes of every sibling's value together.
    public var valueBytes: Int { versions.reduce(0) { $0 + ($1.value?.count ?? 0) } }

    /// Coordinates a write (a value, or nil to delete) by `actor` with the client's `context`.
    ///
    /// Versions the context covers are replaced; the rest stay as siblings. Returns the
    /// new object and the new version.
    ///
    /// The new dot's counter is one past the highest this actor has used that the key's
    /// history shows. A coordinator that may not hold that history (a fallback whose
    /// earlier hints were delivered and deleted) passes `counterFloor` (its clock in ms) so
    /// it can never reuse a dot.
    public func writing(
        _ value: [UInt8]?,
        context: CausalHistory?,
        actor: ActorName,
        now: UInt64,
        policy: ClockPolicy,
        counterFloor: UInt64 = 0
    ) throws(ClockError) -> (object: VersionedObject, version: Version) {
        var past = context ?? .empty
        let highest = max(maxCounter(of: actor), past.maxCounter(of: actor), counterFloor)
        guard highest < Dot.maxCounter else { throw ClockError.counterExhausted(actor: actor, counter: highest) }
        let counter = highest + 1
        if policy.conflicts == .lww { past = past.merged(with: self.context) }
        past = past.pruned(to: policy.maxEntries, keep: actor)
        let version = Version(dot: Dot(actor: actor, counter: counter), past: past, value: value, timestamp: now)
        return (merged(with: VersionedObject(versions: [version]), policy: policy), version)
    }

    /// Merges what two replicas know (sync): a version survives unless some version of
    /// either side supersedes it. Commutative, associative and idempotent.
    ///
    /// Linear in the versions for the common shapes: duplicates are found by dot (equal dots
    /// are compared whole only among themselves), and only versions written with a context
    /// (a non-empty past) can supersede anything, so a pile of blind writes costs no
    /// pairwise comparisons. (It was quadratic in both: 500 blind writes to one key took
    /// 12 s once 1,500 siblings were there.)
    public func merged(with other: VersionedObject, policy: ClockPolicy) -> VersionedObject {
        var all: [Version] = []
        all.reserveCapacity(versions.count + other.versions.count)
        var byDot: [Dot: [Int]] = [:]
        for v in [versions, other.versions].joined() {
            if let same = byDot[v.dot] {
                if same.contains(where: { all[$0] == v }) { continue }
                byDot[v.dot]!.append(all.count)
            } else {
                byDot[v.dot] = [all.count]
            }
            all.append(v)
        }
        let superseders = all.filter { !$0.past.isEmpty }
        // A dot no past covers survives without looking for who supersedes it.
        let covered = superseders.reduce(CausalHistory.empty) { $0.merged(with: $1.past) }
        var survivors = all.filter { candidate in
            !covered.covers(candidate.dot) || !superseders.contains { $0.supersedes(candidate) }
        }
        if policy.conflicts == .lww, let newest = survivors.max(by: { $1.isNewer(than: $0) }) {
            survivors = [newest]
        }
        return VersionedObject(versions: survivors)
    }
}

/// A write that the key's clock cannot carry.
public enum ClockError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The key's history already holds the largest counter a dot may have for this actor
    /// (only a forged context or a damaged store gets there).
    case counterExhausted(actor: ActorName, counter: UInt64)

    public var description: String {
        switch self {
        case .counterExhausted(let actor, let counter):
            "the key's clock for \(actor) is at \(counter), the largest counter allowed; write refused"
        }
    }
}
