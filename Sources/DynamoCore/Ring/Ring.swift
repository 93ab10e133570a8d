/// A position on the 128-bit consistent-hashing ring (MD5 of a key or token seed).
public struct RingPosition: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: UInt128

    public init(_ value: UInt128) { self.value = value }

    /// Interprets 16 big-endian bytes (an MD5 digest) as a ring position.
    public init(bytes: some Collection<UInt8>) {
        precondition(bytes.count == 16, "a ring position is 16 bytes")
        var v: UInt128 = 0
        for b in bytes { v = v << 8 | UInt128(b) }
        self.value = v
    }

    /// The position of a key: MD5 of its bytes.
    public static func of(key: some Collection<UInt8>) -> RingPosition {
        RingPosition(bytes: MD5.digest(key))
    }

    public static let byteCount = 16

    /// The 16 big-endian bytes, so byte order equals ring order (storage keys rely on it).
    public var bytes: [UInt8] {
        (0..<Self.byteCount).map { i in UInt8(truncatingIfNeeded: value >> UInt128(8 * (15 - i))) }
    }

    public var hex: String { Self.hex(bytes) }

    /// The inverse of `hex`: 32 hex digits (as the admin API lists tokens).
    public init?(hex: String) {
        guard hex.count == 32, hex.allSatisfy(\.isHexDigit), let value = UInt128(hex, radix: 16) else { return nil }
        self.value = value
    }

    /// Bytes as lowercase hex, two digits each.
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { b in
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined()
    }

    public var description: String { hex }

    public static func < (lhs: RingPosition, rhs: RingPosition) -> Bool { lhs.value < rhs.value }

    /// The share of the ring covered walking clockwise from `self` (exclusive) to `end` (inclusive).
    public func fraction(to end: RingPosition) -> Double {
        let span = end.value &- value
        return span == 0 ? 1.0 : Double(span) / 340_282_366_920_938_463_463_374_607_431_768_211_456.0
    }
}

/// One virtual node: a token owned by a physical node.
public struct Token: Hashable, Sendable {
    public var position: RingPosition
    public var owner: NodeName

    public init(position: RingPosition, owner: NodeName) {
        self.position = position
        self.owner = owner
    }

    /// The default tokens of a node: MD5 of "name#i". Deterministic, so a node that lost
    /// its disk comes back with the same tokens, and a demo lays out the same ring every time.
    public static func defaultPositions(for name: NodeName, count: Int) -> [RingPosition] {
        (0..<count).map { RingPosition.of(key: Array("\(name)#\($0)".utf8)) }
    }
}

/// The consistent-hashing ring with virtual nodes.
///
/// Each physical node owns several tokens (so load spreads evenly and a bigger machine can
/// take more). A key belongs to the first token clockwise from its position; its
/// preference list is the distinct owners met walking on from there.
public struct Ring: Sendable, Equatable {
    /// Tokens sorted by position (ties broken by owner so every node builds the same ring).
    public private(set) var tokens: [Token]
    /// Distinct owners: a preference-list walk stops once it has found them all.
    private let nodeCount: Int

    public init(tokens: [Token]) {
        self.tokens = tokens.sorted { ($0.position, $0.owner) < ($1.position, $1.owner) }
        self.nodeCount = Set(tokens.map(\.owner)).count
    }

    public init(nodes: [NodeName: [RingPosition]]) {
        self.init(tokens: nodes.flatMap { name, positions in positions.map { Token(position: $0, owner: name) } })
    }

    public var nodes: Set<NodeName> { Set(tokens.map(\.owner)) }

    public var isEmpty: Bool { tokens.isEmpty }

    /// Index of the first token at or after `position`, wrapping around.
    public func successorIndex(of position: RingPosition) -> Int {
        var low = 0
        var high = tokens.count
        while low < high {
            let mid = (low + high) / 2
            if tokens[mid].position < position { low = mid + 1 } else { high = mid }
        }
        return low == tokens.count ? 0 : low
    }

    /// Every distinct physical node in clockwise order from the key's position. The first N
    /// are the key's home replicas; the rest are fallbacks for a sloppy quorum.
    public func preferenceList(for position: RingPosition) -> PreferenceList {
        guard !tokens.isEmpty else { return PreferenceList(nodes: []) }
        var chosen: [NodeName] = []
        chosen.reserveCapacity(nodeCount)
        // Every request walks this: a small cluster checks the few chosen names directly,
        // a large one keeps a set; either stops once every node is found.
        var seen: Set<NodeName>? = nodeCount > 16 ? [] : nil
        var index = successorIndex(of: position)
        var walked = 0
        while chosen.count < nodeCount, walked < tokens.count {
            let owner = tokens[index].owner
            index = index + 1 == tokens.count ? 0 : index + 1
            walked += 1
            let isNew = seen?.insert(owner).inserted ?? !chosen.contains(owner)
            if isNew { chosen.append(owner) }
        }
        return PreferenceList(nodes: chosen)
    }

    public func preferenceList(forKey key: some Collection<UInt8>) -> PreferenceList {
        preferenceList(for: .of(key: key))
    }

    /// The share of the ring's keys each node is one of the `n` home nodes of: what it
    /// stores (shares sum to `n` once there are `n` nodes). A node can own little of the
    /// ring yet be a home node of much of it, through its neighbours' ranges.
    public func homeShare(n: Int) -> [NodeName: Double] {
        var share: [NodeName: Double] = [:]
        guard !tokens.isEmpty else { return share }
        for (i, token) in tokens.enumerated() {
            let previous = tokens[(i + tokens.count - 1) % tokens.count].position
            let fraction = tokens.count == 1 ? 1 : previous.fraction(to: token.position)
            for node in preferenceList(for: token.position).home(n) { share[node, default: 0] += fraction }
        }
        return share
    }

    /// The share of the ring each node is the first owner of.
    public func ownership() -> [NodeName: Double] {
        var share: [NodeName: Double] = [:]
        guard !tokens.isEmpty else { return share }
        for (i, token) in tokens.enumerated() {
            let previous = tokens[(i + tokens.count - 1) % tokens.count].position
            share[token.owner, default: 0] += tokens.count == 1 ? 1 : previous.fraction(to: token.position)
        }
        return share
    }
}

/// The ordered nodes responsible for a key: the first N are its home replicas.
public struct PreferenceList: Sendable, Equatable {
    public var nodes: [NodeName]

    public init(nodes: [NodeName]) { self.nodes = nodes }

    /// The key's N home replicas (fewer if the cluster is smaller than N).
    public func home(_ n: Int) -> [NodeName] { Array(nodes.prefix(n)) }

    /// The first N nodes that `isHealthy` accepts, each home node that was skipped paired with
    /// the fallback standing in for it (the fallback holds a hint naming it).
    public func sloppyReplicas(
        n: Int,
        isHealthy: (NodeName) -> Bool
    ) -> [HintedReplica] {
        let home = self.home(n)
        var skipped = home.filter { !isHealthy($0) }
        var result: [HintedReplica] = home.filter(isHealthy).map { HintedReplica(node: $0, hintFor: nil) }
        for fallback in nodes.dropFirst(n) where !skipped.isEmpty && isHealthy(fallback) {
            result.append(HintedReplica(node: fallback, hintFor: skipped.removeFirst()))
        }
        return result
    }
}

/// A replica chosen for a request; `hintFor` names the home node it stands in for, if any.
public struct HintedReplica: Hashable, Sendable {
    public var node: NodeName
    public var hintFor: NodeName?

    public init(node: NodeName, hintFor: NodeName?) {
        self.node = node
        self.hintFor = hintFor
    }
}
