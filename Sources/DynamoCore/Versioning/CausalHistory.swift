/// Who generated a version: a node name.
public typealias ActorName = String

/// A dot: the single event (actor, counter) that created one version.
public struct Dot: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var actor: ActorName
    public var counter: UInt64

    public init(actor: ActorName, counter: UInt64) {
        self.actor = actor
        self.counter = counter
    }

    public static func < (lhs: Dot, rhs: Dot) -> Bool { (lhs.actor, lhs.counter) < (rhs.actor, rhs.counter) }

    /// The largest counter a dot may carry. Decoders refuse anything above it, so arithmetic
    /// on counters from the network or the disk (`+ 1`, interval ends) can never overflow,
    /// and a write whose counter would pass it is refused (`ClockError`) rather than wrap:
    /// at one write a nanosecond it would take 146 years to get there honestly.
    public static let maxCounter: UInt64 = 1 << 62

    public var description: String { "\(actor):\(counter)" }
}

/// A causal history: for each actor, the set of its events (counters) known, kept as
/// disjoint intervals, plus when that actor's entry last advanced (for pruning).
///
/// A plain version vector ("n1 up to 5") cannot say "n1:2 but not n1:1", which is what a
/// client knows after a blind write by n1 while another n1 version still lives; reading
/// that as {n1:2} would let the client's next write silently discard the version it never
/// saw. Intervals say exactly which events are known and stay compact: a key's history per
/// actor is normally one interval. (Counters are per key, so every fresh key's first dot
/// is `n1:1` and contexts of different keys look alike: contexts are sealed with their
/// key, see `CausalContext`, so one key's context cannot be used on another.)
public struct CausalHistory: Hashable, Sendable, CustomStringConvertible {
    public struct Entry: Hashable, Sendable {
        /// Sorted, disjoint, non-adjacent intervals of counters.
        public fileprivate(set) var ranges: [ClosedRange<UInt64>]
        /// Wall-clock ms when this actor's entry last advanced.
        public fileprivate(set) var timestamp: UInt64

        public var max: UInt64 { ranges.last?.upperBound ?? 0 }

        func contains(_ counter: UInt64) -> Bool {
            // Few ranges per actor: a linear scan from the top is fastest in practice.
            for range in ranges.reversed() where range.lowerBound <= counter { return range.upperBound >= counter }
            return false
        }

        /// Union with `other`, coalescing overlapping and adjacent intervals.
        func union(_ other: [ClosedRange<UInt64>]) -> [ClosedRange<UInt64>] {
            let all = (ranges + other).sorted { $0.lowerBound < $1.lowerBound }
            var result: [ClosedRange<UInt64>] = []
            for range in all {
                if let last = result.last, range.lowerBound <= last.upperBound &+ 1 {
                    result[result.count - 1] = last.lowerBound...Swift.max(last.upperBound, range.upperBound)
                } else {
                    result.append(range)
                }
            }
            return result
        }
    }

    public private(set) var entries: [ActorName: Entry]

    public init() { entries = [:] }

    /// A history holding exactly these events.
    public init(dots: [Dot], timestamp: UInt64 = 0) {
        entries = [:]
        for dot in dots { insert(dot, timestamp: timestamp) }
    }

    /// For decoding: entries as given (validated by the decoder).
    init(entries: [ActorName: Entry]) { self.entries = entries }

    public static let empty = CausalHistory()

    public var isEmpty: Bool { entries.isEmpty }

    public func covers(_ dot: Dot) -> Bool { entries[dot.actor]?.contains(dot.counter) ?? false }

    /// The highest counter of `actor` this history has seen.
    public func maxCounter(of actor: ActorName) -> UInt64 { entries[actor]?.max ?? 0 }

    /// Adds one event.
    public mutating func insert(_ dot: Dot, timestamp: UInt64) {
        guard dot.counter > 0 else { return }
        var entry = entries[dot.actor] ?? Entry(ranges: [], timestamp: 0)
        entry.ranges = entry.union([dot.counter...dot.counter])
        entry.timestamp = Swift.max(entry.timestamp, timestamp)
        entries[dot.actor] = entry
    }

    public func inserting(_ dot: Dot, timestamp: UInt64) -> CausalHistory {
        var copy = self
        copy.insert(dot, timestamp: timestamp)
        return copy
    }

    /// The union of both histories.
    public func merged(with other: CausalHistory) -> CausalHistory {
        var result = self
        for (actor, theirs) in other.entries {
            if let mine = result.entries[actor] {
                result.entries[actor] = Entry(
                    ranges: mine.union(theirs.ranges), timestamp: Swift.max(mine.timestamp, theirs.timestamp))
            } else {
                result.entries[actor] = theirs
            }
        }
        return result
    }

    /// Whether every event of `other` is in this history.
    public func descends(_ other: CausalHistory) -> Bool {
        other.entries.allSatisfy { actor, entry in
            guard let mine = entries[actor] else { return entry.ranges.isEmpty }
            return mine.union(entry.ranges) == mine.ranges
        }
    }

    /// Drops the actors whose entries advanced longest ago, beyond `limit` actors, never `keep`.
    ///
    /// Pruning forgets history, so a version it made look concurrent comes back as a
    /// sibling: the paper's trade-off (section 4.4), and never a lost write.
    public func pruned(to limit: Int, keep: ActorName?) -> CausalHistory {
        guard entries.count > limit, limit > 0 else { return self }
        let ordered = entries.sorted { ($0.value.timestamp, $0.key) > ($1.value.timestamp, $1.key) }
        var kept: [ActorName: Entry] = [:]
        if let keep, let entry = entries[keep] { kept[keep] = entry }
        for (actor, entry) in ordered where kept.count < limit { kept[actor] = entry }
        return CausalHistory(entries: kept)
    }

    /// Per actor, the highest counter seen (for display).
    public var summary: [ActorName: UInt64] { entries.mapValues(\.max) }

    /// Actors in a stable order, for encoding and display.
    public var sortedEntries: [(actor: ActorName, entry: Entry)] {
        entries.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    public var description: String {
        sortedEntries.map { actor, entry in
            let ranges = entry.ranges.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
            return "\(actor):\(ranges.joined(separator: ","))"
        }.joined(separator: " ")
    }
}

extension CausalHistory {
    /// Sanity bounds on anything decoded from outside.
    public static let decodeActorLimit = 1024
    public static let decodeRangeLimit = 4096

    public func encode(into writer: inout ByteWriter) {
        let sorted = sortedEntries
        writer.write(varint: UInt64(sorted.count))
        for (actor, entry) in sorted {
            writer.write(string: actor)
            writer.write(varint: entry.timestamp)
            writer.write(varint: UInt64(entry.ranges.count))
            for range in entry.ranges {
                writer.write(varint: range.lowerBound)
                writer.write(varint: range.upperBound - range.lowerBound)
            }
        }
    }

    /// The exact size of `encode(into:)`'s output.
    public var encodedByteCount: Int {
        var total = ByteWriter.varintSize(UInt64(entries.count))
        for (actor, entry) in entries {
            total += ByteWriter.lengthPrefixedSize(actor.utf8.count) + ByteWriter.varintSize(entry.timestamp)
            total += ByteWriter.varintSize(UInt64(entry.ranges.count))
            for range in entry.ranges {
                total += ByteWriter.varintSize(range.lowerBound)
                total += ByteWriter.varintSize(range.upperBound - range.lowerBound)
            }
        }
        return total
    }

    public static func decode(from reader: inout ByteReader) throws(ByteDecodingError) -> CausalHistory {
        let count = try reader.readInt(max: decodeActorLimit)
        var entries: [ActorName: Entry] = [:]
        for _ in 0..<count {
            let actor = try reader.readString(max: 255)
            let timestamp = try reader.readVarint()
            let rangeCount = try reader.readInt(max: decodeRangeLimit)
            var ranges: [ClosedRange<UInt64>] = []
            var floor: UInt64 = 0
            for _ in 0..<rangeCount {
                let low = try reader.readVarint()
                let span = try reader.readVarint()
                // Ranges must be positive, sorted, disjoint and non-adjacent (the canonical
                // form) and stay within `Dot.maxCounter`, so `floor` below cannot overflow.
                guard low > floor, low <= Dot.maxCounter, span <= Dot.maxCounter - low else {
                    throw ByteDecodingError("malformed clock range")
                }
                ranges.append(low...(low + span))
                floor = low + span + 1
            }
            guard !ranges.isEmpty else { throw ByteDecodingError("empty clock entry") }
            guard entries.updateValue(Entry(ranges: ranges, timestamp: timestamp), forKey: actor) == nil else {
                throw ByteDecodingError("duplicate clock actor")
            }
        }
        return CausalHistory(entries: entries)
    }
}
