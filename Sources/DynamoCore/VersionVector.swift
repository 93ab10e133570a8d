/// Who generated a version: a node name (a node that lost its disk gets a new actor, see `Actor`).
public typealias Actor = String

/// One entry of a causal clock: a per-actor counter and when it was last advanced
/// (milliseconds since the epoch), so the oldest entries can be pruned (Dynamo paper 4.4).
public struct ClockEntry: Hashable, Sendable {
    public var counter: UInt64
    public var timestamp: UInt64

    public init(counter: UInt64, timestamp: UInt64) {
        self.counter = counter
        self.timestamp = timestamp
    }
}

/// A dot: the single event (actor, counter) that created one version.
public struct Dot: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var actor: Actor
    public var counter: UInt64

    public init(actor: Actor, counter: UInt64) {
        self.actor = actor
        self.counter = counter
    }

    public static func < (lhs: Dot, rhs: Dot) -> Bool { (lhs.actor, lhs.counter) < (rhs.actor, rhs.counter) }

    public var description: String { "\(actor):\(counter)" }
}

/// A version vector: for each actor, the highest counter seen.
public struct VersionVector: Hashable, Sendable, CustomStringConvertible {
    public private(set) var entries: [Actor: ClockEntry]

    public init(_ entries: [Actor: ClockEntry] = [:]) { self.entries = entries }

    public static let empty = VersionVector()

    public var isEmpty: Bool { entries.isEmpty }

    public subscript(actor: Actor) -> UInt64 { entries[actor]?.counter ?? 0 }

    /// Whether the event `dot` is part of this history.
    public func covers(_ dot: Dot) -> Bool { self[dot.actor] >= dot.counter }

    /// Whether every event of `other` is part of this history.
    public func descends(_ other: VersionVector) -> Bool {
        other.entries.allSatisfy { self[$0.key] >= $0.value.counter }
    }

    /// Adds the event `dot`, stamped `timestamp`.
    public mutating func add(_ dot: Dot, timestamp: UInt64) {
        let old = entries[dot.actor]
        if let old, old.counter >= dot.counter { return }
        entries[dot.actor] = ClockEntry(counter: dot.counter, timestamp: max(timestamp, old?.timestamp ?? 0))
    }

    /// The least upper bound: per actor, the larger counter (and the later timestamp).
    public func merged(with other: VersionVector) -> VersionVector {
        var result = self
        for (actor, entry) in other.entries {
            if let mine = result.entries[actor] {
                result.entries[actor] = ClockEntry(
                    counter: max(mine.counter, entry.counter),
                    timestamp: max(mine.timestamp, entry.timestamp)
                )
            } else {
                result.entries[actor] = entry
            }
        }
        return result
    }

    /// Drops the oldest entries (by timestamp) beyond `limit`, never the actor in `keep`.
    ///
    /// Pruning forgets history, so a version it made look concurrent comes back as a
    /// sibling: the paper's trade-off, and never a lost write.
    public func pruned(to limit: Int, keep: Actor?) -> VersionVector {
        guard entries.count > limit, limit > 0 else { return self }
        let ordered = entries.sorted { ($0.value.timestamp, $0.key) > ($1.value.timestamp, $1.key) }
        var kept: [Actor: ClockEntry] = [:]
        if let keep, let entry = entries[keep] { kept[keep] = entry }
        for (actor, entry) in ordered where kept.count < limit { kept[actor] = entry }
        return VersionVector(kept)
    }

    /// Actors in a stable order, for encoding and display.
    public var sortedEntries: [(actor: Actor, entry: ClockEntry)] {
        entries.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    public var description: String {
        sortedEntries.map { "\($0.actor):\($0.entry.counter)" }.joined(separator: " ")
    }
}

/// A causal history: a contiguous version vector plus isolated dots beyond it.
///
/// Version vectors alone cannot say "n1:2 but not n1:1", which is exactly what a client
/// knows after a blind write by n1 while another n1 version still lives: reading that as
/// {n1:2} would let the client's next write silently discard the version it never saw.
/// Keeping such events as explicit dots (compacted into the vector once contiguous) makes
/// every context cover precisely the versions it was built from.
public struct CausalHistory: Hashable, Sendable, CustomStringConvertible {
    public private(set) var vector: VersionVector
    /// Events not contiguous with `vector`, sorted.
    public private(set) var dots: [Dot]

    public init(vector: VersionVector = .empty, dots: [Dot] = []) {
        self.vector = vector
        self.dots = []
        for dot in dots { insert(dot, timestamp: 0) }
    }

    public static let empty = CausalHistory()

    public var isEmpty: Bool { vector.isEmpty && dots.isEmpty }

    public func covers(_ dot: Dot) -> Bool { vector.covers(dot) || dots.contains(dot) }

    /// The highest counter of `actor` this history has seen.
    public func maxCounter(of actor: Actor) -> UInt64 {
        dots.filter { $0.actor == actor }.map(\.counter).reduce(vector[actor], max)
    }

    /// Adds one event, folding it (and any dots it makes contiguous) into the vector.
    public mutating func insert(_ dot: Dot, timestamp: UInt64) {
        guard !covers(dot) else { return }
        dots.append(dot)
        dots.sort()
        compact(timestamp: timestamp)
    }

    public func inserting(_ dot: Dot, timestamp: UInt64) -> CausalHistory {
        var copy = self
        copy.insert(dot, timestamp: timestamp)
        return copy
    }

    public func merged(with other: CausalHistory) -> CausalHistory {
        var result = CausalHistory(vector: vector.merged(with: other.vector))
        result.dots = Array(Set(dots + other.dots)).sorted()
        result.compact(timestamp: 0)
        return result
    }

    /// Whether every event of `other` is in this history.
    public func descends(_ other: CausalHistory) -> Bool {
        vector.descends(other.vector)
            || (other.vector.entries.allSatisfy { vector[$0.key] >= $0.value.counter }
                && other.dots.allSatisfy(covers))
    }

    public func pruned(to limit: Int, keep: Actor?) -> CausalHistory {
        var copy = self
        copy.vector = vector.pruned(to: limit, keep: keep)
        return copy
    }

    private mutating func compact(timestamp: UInt64) {
        var changed = true
        while changed {
            changed = false
            var remaining: [Dot] = []
            for dot in dots {
                if vector.covers(dot) {
                    changed = true
                } else if dot.counter == vector[dot.actor] + 1 {
                    vector.add(dot, timestamp: timestamp)
                    changed = true
                } else {
                    remaining.append(dot)
                }
            }
            dots = remaining
        }
    }

    /// Per actor, the highest counter seen (for display).
    public var summary: [Actor: UInt64] {
        var result = vector.entries.mapValues(\.counter)
        for dot in dots { result[dot.actor] = max(result[dot.actor] ?? 0, dot.counter) }
        return result
    }

    public var description: String {
        summary.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: " ")
    }
}
