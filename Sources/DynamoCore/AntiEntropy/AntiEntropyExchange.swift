/// Merkle anti-entropy: a tree of each range this node is a home node of, kept current
/// from its own data's changes, and exchanges that compare one range's tree with one of
/// its other replicas at a time (round robin over ranges and peers, spaced so each range
/// is compared about once per interval). An exchange descends into differing subtrees,
/// lists the differing segments' keys, fetches what the peer has and merges it here.
///
/// Pure: `NodeMachine` carries out its steps and feeds the answers back.
public struct AntiEntropy: Sendable {
    /// A Merkle tree of a range this node is a home node of, and who else holds the range.
    public struct RangeTree: Sendable {
        public var range: KeyRange
        public var peers: [NodeName]
        public var tree: MerkleTree
        public var built: Bool
    }

    /// What the last exchange of a range with a peer found (for status and the console).
    public struct ExchangeRecord: Hashable, Sendable {
        public var range: KeyRange
        public var peer: NodeName
        /// Wall-clock ms of the comparison.
        public var at: UInt64
        public var inSync: Bool
        public var keysDiffering: Int
        public var keysRepaired: Int
        /// Hashes and keys received, roughly in bytes.
        public var bytesReceived: Int
    }

    /// The exchange running now.
    struct Exchange: Sendable {
        var range: KeyRange
        var peer: NodeName
        var walk = MerkleComparison()
        var record: ExchangeRecord
        /// Fetches and merges of differing keys still unanswered.
        var pending = 0
        var startedAt: UInt64
    }

    public enum Step: Hashable, Sendable {
        /// Build the range's tree from the store (answer: `built`).
        case build(KeyRange)
        /// Ask the peer for tree hashes or segment listings (answer: `answered`).
        case ask(PeerRequest, to: NodeName, range: KeyRange)
        /// Fetch the peer's copy of a differing key (answer: `fetched`).
        case fetch(key: [UInt8], from: NodeName, range: KeyRange)
        /// Merge the fetched copy into own data (answer: `repaired`).
        case repair(key: [UInt8], object: VersionedObject, range: KeyRange, peer: NodeName)
        case event(NodeEvent)
    }

    /// Keys repaired per exchange at most, and tree nodes asked per request: the throttle
    /// that keeps anti-entropy from crowding out client requests (the paper's admission
    /// control); a bigger divergence simply takes several rounds.
    public static let keyLimit = 128
    public static let nodeLimit = 64

    public private(set) var trees: [KeyRange: RangeTree] = [:]
    public private(set) var exchanges: [String: ExchangeRecord] = [:]
    public private(set) var exchangeCount = 0
    /// Keys found differing, summed over every exchange.
    public private(set) var keysDiffering = 0
    public private(set) var keysRepaired = 0
    /// The ring the trees were planned on.
    public private(set) var ring = Ring(tokens: [])
    private var rangeIndex: [KeyRange] = []
    private var nextExchangeAt: UInt64 = 0
    private var cursor = 0
    private var exchange: Exchange?
    private let intervalMs: UInt64
    private let requestTimeoutMs: UInt64

    public init(intervalMs: UInt64, requestTimeoutMs: UInt64) {
        self.intervalMs = intervalMs
        self.requestTimeoutMs = requestTimeoutMs
    }

    // MARK: Trees

    /// Plans the trees on `ring`: keeps those of unchanged ranges, drops the others, and
    /// builds new ones from storage (in range order, so every process plans alike).
    public mutating func refresh(ring: Ring, me: NodeName, n: Int) -> [Step] {
        self.ring = ring
        let tokens = ring.tokens
        var wanted: [KeyRange: [NodeName]] = [:]
        for (index, token) in tokens.enumerated() {
            let start = tokens[(index + tokens.count - 1) % tokens.count].position
            guard start != token.position || tokens.count == 1 else { continue }
            let home = ring.preferenceList(for: token.position).home(n)
            guard home.contains(me) else { continue }
            wanted[KeyRange(start: start, end: token.position)] = home.filter { $0 != me }
        }
        var steps: [Step] = []
        var next: [KeyRange: RangeTree] = [:]
        for (range, peers) in wanted.sorted(by: { $0.key < $1.key }) {
            if var existing = trees[range] {
                existing.peers = peers
                next[range] = existing
            } else {
                next[range] = RangeTree(range: range, peers: peers, tree: MerkleTree(), built: false)
                steps.append(.build(range))
            }
        }
        trees = next
        rangeIndex = next.keys.sorted()
        // The last comparisons of ranges or replicas that are no longer this node's go with
        // them, so the status holds the current pairs only. (A range kept from while a node
        // was joining once read "40 keys differing" for minutes, compared by no one.)
        exchanges = exchanges.filter { _, record in next[record.range]?.peers.contains(record.peer) ?? false }
        return steps
    }

    /// The store scanned a range's hashes, stamped with the mutation sequence of the scan.
    public mutating func built(_ range: KeyRange, hashes: [KeyHash], seq: UInt64) {
        guard var entry = trees[range] else { return }
        for hash in hashes { entry.tree.set(hash.key, hash: hash.hash, seq: seq) }
        entry.built = true
        trees[range] = entry
    }

    /// Own data changed: the trees follow (updates are stamped, so order does not matter).
    public mutating func apply(_ updates: [TreeUpdate]) {
        guard !rangeIndex.isEmpty else { return }
        for update in updates {
            let position = RingPosition.of(key: update.key)
            guard let range = range(containing: position) else { continue }
            trees[range]?.tree.set(update.key, hash: update.hash, seq: update.seq, position: position)
        }
    }

    /// The tracked range containing `position` (ranges are disjoint, sorted by end).
    private func range(containing position: RingPosition) -> KeyRange? {
        var low = 0
        var high = rangeIndex.count
        while low < high {
            let mid = (low + high) / 2
            if rangeIndex[mid].end < position { low = mid + 1 } else { high = mid }
        }
        let candidate = rangeIndex[low == rangeIndex.count ? 0 : low]
        return candidate.contains(position) ? candidate : nil
    }

    /// A peer's exchange request, answered from the tree of `range` (an error while there
    /// is none: the range is not this node's, or its tree is still being built).
    public func serve(_ request: PeerRequest) -> PeerResponse {
        switch request {
        case .treeChildren(let range, let nodes):
            guard let tree = trees[range], tree.built else { return .error("no tree for range \(range)") }
            return .treeHashes(nodes.map { tree.tree.children(level: $0.level, id: $0.id) })
        case .treeSegments(let range, let segments):
            guard let tree = trees[range], tree.built else { return .error("no tree for range \(range)") }
            return .treeKeys(segments.flatMap { tree.tree.entries(inSegment: $0) })
        default:
            return .error("not an anti-entropy request")
        }
    }

    // MARK: Exchanges

    /// Starts comparing the next range's tree with one of its replicas when one is due.
    public mutating func tick(now: NodeMachine.Now, isUp: Bool, reachable: (NodeName) -> Bool) -> [Step] {
        guard now.monotonicMs >= nextExchangeAt else { return [] }
        let built = rangeIndex.filter { trees[$0]!.built }
        nextExchangeAt = now.monotonicMs + intervalMs / UInt64(max(1, built.count))
        // Safety net: an exchange that lost track of its answers is abandoned.
        if let current = exchange, now.monotonicMs > current.startedAt + 5 * requestTimeoutMs { exchange = nil }
        guard exchange == nil, !built.isEmpty, isUp else { return [] }
        cursor += 1
        let range = built[cursor % built.count]
        let peers = trees[range]!.peers.filter(reachable)
        guard !peers.isEmpty else { return [] }
        let peer = peers[(cursor / built.count) % peers.count]
        let record = ExchangeRecord(
            range: range, peer: peer, at: now.wallMs, inSync: false, keysDiffering: 0, keysRepaired: 0,
            bytesReceived: 0)
        exchange = Exchange(range: range, peer: peer, record: record, startedAt: now.monotonicMs)
        exchangeCount += 1
        return [.ask(.treeChildren(range: range, nodes: [MerkleNodeID(level: 0, id: 0)]), to: peer, range: range)]
    }

    /// The peer answered a tree request (nil: it did not): descend into differing subtrees,
    /// list differing segments, then fetch the differing keys the peer has. (What only this
    /// node has, the peer pulls in its own exchanges.)
    public mutating func answered(range: KeyRange, peer: NodeName, _ response: PeerResponse?) -> [Step] {
        guard var current = exchange, current.range == range, current.peer == peer else { return [] }
        guard let tree = trees[range]?.tree else {
            // The range moved (the ring changed): drop this exchange.
            exchange = nil
            return []
        }
        switch response {
        case .treeHashes(let lists):
            current.record.bytesReceived += lists.reduce(0) { $0 + $1.count * 8 }
            if current.walk.hashesReceived == 0 {
                // The root's children: equal children means equal trees.
                current.record.inSync = lists.first == tree.children(level: 0, id: 0)
            }
            current.walk.receive(children: lists, local: tree)
            if !current.walk.frontier.isEmpty {
                let nodes = current.walk.frontier.prefix(Self.nodeLimit).map {
                    MerkleNodeID(level: $0.level, id: $0.id)
                }
                current.walk.limitFrontier(to: Self.nodeLimit)
                exchange = current
                return [.ask(.treeChildren(range: range, nodes: nodes), to: peer, range: range)]
            }
            exchange = current
            if current.walk.differingSegments.isEmpty { return finish() }
            let segments = Array(current.walk.differingSegments.prefix(Self.nodeLimit))
            return [.ask(.treeSegments(range: range, segments: segments), to: peer, range: range)]
        case .treeKeys(let listing):
            current.record.bytesReceived += listing.reduce(0) { $0 + $1.key.count + 8 }
            let segments = Array(current.walk.differingSegments.prefix(Self.nodeLimit))
            let keys = MerkleComparison.differingKeys(local: tree, remote: listing, segments: segments)
            current.record.keysDiffering = keys.count
            keysDiffering += keys.count
            let remote = Set(listing.map(\.key))
            let wanted = keys.filter { remote.contains($0) }.prefix(Self.keyLimit)
            current.pending = wanted.count
            exchange = current
            if wanted.isEmpty { return finish() }
            return wanted.map { .fetch(key: $0, from: peer, range: range) }
        default:
            // No tree there yet (the peer is building it, or sees other ranges), or no answer.
            exchange = nil
            return []
        }
    }

    /// The peer's copy of a differing key arrived (nil: none, or no answer).
    public mutating func fetched(key: [UInt8], range: KeyRange, peer: NodeName, _ object: VersionedObject?) -> [Step] {
        guard let object else { return repaired(range: range, peer: peer, stored: false) }
        return [.repair(key: key, object: object, range: range, peer: peer)]
    }

    /// The store merged (or failed to merge) a fetched copy.
    public mutating func repaired(range: KeyRange, peer: NodeName, stored: Bool) -> [Step] {
        guard var current = exchange, current.range == range, current.peer == peer else { return [] }
        current.pending -= 1
        if stored {
            current.record.keysRepaired += 1
            keysRepaired += 1
        }
        exchange = current
        return current.pending <= 0 ? finish() : []
    }

    private mutating func finish() -> [Step] {
        guard let current = exchange else { return [] }
        exchange = nil
        // (An exchange that began before the ring changed finishes, but is recorded only
        // if its range and replica are still this node's.)
        if trees[current.range]?.peers.contains(current.peer) == true {
            exchanges["\(current.range.end.hex)/\(current.peer)"] = current.record
        }
        guard current.record.keysRepaired > 0 else { return [] }
        return [
            .event(
                .antiEntropy(
                    peer: current.peer, range: current.range, differing: current.record.keysDiffering,
                    repaired: current.record.keysRepaired))
        ]
    }
}
