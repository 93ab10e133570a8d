/// Settings the node protocol needs (a subset of the `dynamo-node` flags).
public struct NodeSettings: Sendable, Hashable {
    public var name: NodeName
    public var peerAddress: String
    public var httpAddress: String
    public var tokens: [RingPosition]
    public var generation: UInt64
    public var seeds: [String]
    public var quorum: QuorumConfig
    public var clocks: ClockPolicy
    public var gossipIntervalMs: UInt64
    public var hintIntervalMs: UInt64
    /// How often a node looks for old tombstones it holds, to reap them.
    public var tombstoneSweepIntervalMs: UInt64
    /// Each range's Merkle tree is compared with a replica about once per this interval.
    public var antiEntropyIntervalMs: UInt64
    /// Read repair can be switched off (to show anti-entropy alone).
    public var readRepair: Bool
    /// Off: a strict quorum (home nodes only, no hinted handoff).
    public var sloppyQuorum: Bool
    /// The data dir had no identity: this node is new (or lost its disk) and must pull the
    /// data of the ranges it will own before it takes requests (`joining` until then).
    public var freshIdentity: Bool
    /// Which replica writes are fsynced before they are acknowledged.
    public var durability: Durability
    /// The cluster secret: member rows are signed with it and only verified rows are taken
    /// from gossip. nil in a development cluster on loopback (nothing is checked).
    public var clusterKey: ClusterKey?
    /// Counters of dots this node makes start above this (see `NodeMachine.dotFloor`).
    public var dotFloor: UInt64
    /// The node lost its data and has no seeds to ask: rather than come up empty at once,
    /// it stays `joining` until a member that knows it gets in touch (then pulls its ranges
    /// from the cluster), or, if none does within 10 gossip intervals, it is alone.
    public var awaitPeers: Bool
    /// What one key may hold; writes past it are refused, keys near it reported.
    public var objectLimits: ObjectLimits

    public init(
        name: NodeName, peerAddress: String, httpAddress: String, tokens: [RingPosition], generation: UInt64 = 1,
        seeds: [String] = [], quorum: QuorumConfig = QuorumConfig(), clocks: ClockPolicy = ClockPolicy(),
        gossipIntervalMs: UInt64 = 1000, hintIntervalMs: UInt64 = 1000, tombstoneSweepIntervalMs: UInt64 = 10_000,
        durability: Durability = .coordinator, freshIdentity: Bool = false,
        antiEntropyIntervalMs: UInt64 = 10_000, readRepair: Bool = true, sloppyQuorum: Bool = true,
        clusterKey: ClusterKey? = nil, dotFloor: UInt64 = 0, objectLimits: ObjectLimits = ObjectLimits(),
        awaitPeers: Bool = false
    ) {
        self.awaitPeers = awaitPeers
        self.objectLimits = objectLimits
        self.dotFloor = dotFloor
        self.clusterKey = clusterKey
        self.antiEntropyIntervalMs = antiEntropyIntervalMs
        self.readRepair = readRepair
        self.sloppyQuorum = sloppyQuorum
        self.freshIdentity = freshIdentity
        self.tombstoneSweepIntervalMs = tombstoneSweepIntervalMs
        self.name = name
        self.peerAddress = peerAddress
        self.httpAddress = httpAddress
        self.tokens = tokens
        self.generation = generation
        self.seeds = seeds
        self.quorum = quorum
        self.clocks = clocks
        self.gossipIntervalMs = gossipIntervalMs
        self.hintIntervalMs = hintIntervalMs
        self.durability = durability
    }
}

/// Which replica writes are fsynced before they are acknowledged.
///
/// Every write goes through RocksDB's write-ahead log, so all of them survive `kill -9`;
/// this only decides which also survive a power loss. The default follows the paper's
/// durable-write optimisation: the coordinator's own replica is synced, the others are not.
public enum Durability: String, Sendable, CaseIterable {
    case all, coordinator, none
}

extension Durability {
    /// Whether the coordinator's own replica write is synced.
    public var syncsCoordinatorWrites: Bool { self != .none }
    /// Whether every replica write is synced.
    public var syncsReplicaWrites: Bool { self == .all }
}

/// Who is waiting for an answer: a client of this node's HTTP API, or a peer that sent a
/// request (identified by a handle the shell chose, so it can find the connection).