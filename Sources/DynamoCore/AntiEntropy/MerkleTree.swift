/// The hash tree of one key range a node replicates (Dynamo paper 4.7, riak_core's
/// hashtree).
///
/// Leaves are segments chosen by bits of each key's hash, so any ring range spreads evenly
/// over them; every node's hash is the XOR of the key hashes beneath it. XOR is
/// commutative and its own inverse, so a write updates one leaf and its ancestors in
/// O(depth) with no rehashing, in any order, and the tree always equals one rebuilt from
/// scratch. Riak marks dirty segments and rehashes them lazily by rescanning; XOR needs no
/// rescans. Keys are kept with their hashes and a mutation sequence number, so setting a
/// key is exact even when updates arrive out of order or race a rebuild from storage.
public struct MerkleTree: Sendable, Equatable {
    /// Children per node and levels below the root: 16^5 = 1,048,576 segments, so a
    /// segment holds about one key until a range has a million.
    public static let fanout = 16
    public static let depth = 5
    public static let bitsPerLevel = 4

    /// Node hashes per level (0 = root), sparse: absent means zero.
    private var levels: [[UInt32: UInt64]]
    /// Every key of the range: its hash and the sequence number of the state it reflects.
    /// A removed key keeps hash 0 (real hashes are odd) so stale news cannot revive it.
    public private(set) var keys: [[UInt8]: (hash: UInt64, seq: UInt64)]
    public private(set) var count = 0
    /// Keys per segment, for listing a differing segment.
    private var segments: [UInt32: Set<[UInt8]>]

    public init() {
        levels = Array(repeating: [:], count: Self.depth + 1)
        keys = [:]
        segments = [:]
    }

    public static func == (lhs: MerkleTree, rhs: MerkleTree) -> Bool {
        lhs.levels == rhs.levels
            && lhs.keys.mapValues(\.hash).filter { $0.value != 0 }
                == rhs.keys.mapValues(\.hash).filter { $0.value != 0 }
    }

    /// The hash a key contributes: MD5 of the key and its encoded versions (64 bits).
    public static func hash(key: [UInt8], object: VersionedObject) -> UInt64 {
        var bytes = key
        bytes.append(0)
        bytes += object.encoded()
        return MD5.digest(bytes).prefix(8).reduce(0) { $0 << 8 | UInt64($1) } | 1
    }

    /// The segment (leaf) of a key: low bits of MD5(key), independent of ring ranges.
    public static func segment(of key: [UInt8]) -> UInt32 {
        segment(at: .of(key: key))
    }

    /// The segment of a key at `position` (its MD5): the digest's last bytes.
    public static func segment(at position: RingPosition) -> UInt32 {
        UInt32(truncatingIfNeeded: position.value) & ((1 << (bitsPerLevel * depth)) - 1)
    }

    public var root: UInt64 { levels[0][0] ?? 0 }

    /// Sets a key's hash (nil: the key is gone) as of mutation `seq`; older news is ignored.
    /// `position`, when the caller has it, saves hashing the key again.
    public mutating func set(_ key: [UInt8], hash newHash: UInt64?, seq: UInt64, position: RingPosition? = nil) {
        let current = keys[key]
        if let current, current.seq > seq { return }
        let old = current?.hash ?? 0
        let new = newHash ?? 0
        keys[key] = (new, seq)
        let delta = old ^ new
        let segment = Self.segment(at: position ?? .of(key: key))
        if old == 0, new != 0 {
            count += 1
            segments[segment, default: []].insert(key)
        } else if old != 0, new == 0 {
            count -= 1
            segments[segment]?.remove(key)
            if segments[segment]?.isEmpty == true { segments[segment] = nil }
        }
        guard delta != 0 else { return }
        for level in 0...Self.depth {
            let id = segment >> UInt32(Self.bitsPerLevel * (Self.depth - level))
            let value = (levels[level][id] ?? 0) ^ delta
            levels[level][id] = value == 0 ? nil : value
        }
    }

    /// The hashes of the children of node `id` at `level` (fanout values, zero if empty).
    public func children(level: Int, id: UInt32) -> [UInt64] {
        precondition(level < Self.depth, "segments have no children")
        let first = id << UInt32(Self.bitsPerLevel)
        return (0..<UInt32(Self.fanout)).map { levels[level + 1][first + $0] ?? 0 }
    }

    /// The keys of a segment with their hashes, sorted by key.
    public func entries(inSegment segment: UInt32) -> [KeyHash] {
        (segments[segment] ?? []).map { KeyHash(key: $0, hash: keys[$0]!.hash) }.sorted {
            $0.key.lexicographicallyPrecedes($1.key)
        }
    }
}

/// A key and the hash of its versions, as exchanged for a differing segment.
public struct KeyHash: Hashable, Sendable {
    public var key: [UInt8]
    public var hash: UInt64

    public init(key: [UInt8], hash: UInt64) {
        self.key = key
        self.hash = hash
    }
}

/// One side's view of comparing two trees, level by level: which nodes to ask the other
/// side about next, and finally which keys differ. Pure: the node machine carries the
/// questions and answers over the peer protocol.
public struct MerkleComparison: Sendable {
    /// Nodes (level, id) whose children are still to be compared.
    public private(set) var frontier: [(level: Int, id: UInt32)] = [(0, 0)]
    /// Segments that differ, once the walk reached the leaves.
    public private(set) var differingSegments: [UInt32] = []
    /// Hashes received from the other side (bytes exchanged, for status and tests).
    public private(set) var hashesReceived = 0

    public init() {}

    /// Whether the whole tree is the same (known as soon as the roots match).
    public static func inSync(_ local: MerkleTree, remoteRoot: UInt64) -> Bool { local.root == remoteRoot }

    /// The other side's children hashes for each frontier node, in order. Advances the
    /// frontier to the children that differ.
    public mutating func receive(children remote: [[UInt64]], local: MerkleTree) {
        var next: [(level: Int, id: UInt32)] = []
        for (node, theirs) in zip(frontier, remote) {
            hashesReceived += theirs.count
            let mine = local.children(level: node.level, id: node.id)
            for index in 0..<min(mine.count, theirs.count) where mine[index] != theirs[index] {
                let child = (level: node.level + 1, id: node.id << UInt32(MerkleTree.bitsPerLevel) + UInt32(index))
                if child.level == MerkleTree.depth {
                    differingSegments.append(child.id)
                } else {
                    next.append(child)
                }
            }
        }
        frontier = next
    }

    /// Keeps only the first `limit` frontier nodes (the rest wait for a later exchange).
    public mutating func limitFrontier(to limit: Int) {
        if frontier.count > limit { frontier = Array(frontier.prefix(limit)) }
    }

    /// The keys that differ between the local tree and the other side's listing of the
    /// differing segments (missing on either side, or with different hashes).
    public static func differingKeys(local: MerkleTree, remote: [KeyHash], segments: [UInt32]) -> [[UInt8]] {
        var theirs: [[UInt8]: UInt64] = [:]
        for entry in remote { theirs[entry.key] = entry.hash }
        var result: Set<[UInt8]> = []
        for segment in segments {
            for entry in local.entries(inSegment: segment) where theirs[entry.key] != entry.hash {
                result.insert(entry.key)
            }
        }
        for entry in remote where (local.keys[entry.key]?.hash ?? 0) != entry.hash { result.insert(entry.key) }
        return result.sorted { $0.lexicographicallyPrecedes($1) }
    }
}
