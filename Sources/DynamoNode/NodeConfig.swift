public import DynamoCore

/// Everything a node is started with (the `dynamo-node` flags, spec section 5).
public struct NodeConfig: Sendable {
    public var name: NodeName
    public var host: String
    public var peerPort: Int
    public var httpPort: Int
    public var dataDir: String
    /// Peer addresses ("host:port") contacted until some other member is known.
    public var seeds: [String]
    public var tokens: Int
    public var quorum: QuorumConfig
    public var clocks: ClockPolicy
    public var gossipIntervalMs: UInt64
    public var hintIntervalMs: UInt64
    public var antiEntropyIntervalMs: UInt64
    public var maxKeyBytes: Int
    public var maxValueBytes: Int
    public var durability: Durability
    /// Off: a strict quorum (home nodes only, no hinted handoff).
    public var sloppyQuorum: Bool

    public init(
        name: NodeName, host: String = "127.0.0.1", peerPort: Int, httpPort: Int, dataDir: String,
        seeds: [String] = [], tokens: Int = 8, quorum: QuorumConfig = QuorumConfig(),
        clocks: ClockPolicy = ClockPolicy(), gossipIntervalMs: UInt64 = 1000, hintIntervalMs: UInt64 = 1000,
        antiEntropyIntervalMs: UInt64 = 10_000, maxKeyBytes: Int = 1024, maxValueBytes: Int = 1 << 20,
        durability: Durability = .coordinator, sloppyQuorum: Bool = true
    ) {
        self.sloppyQuorum = sloppyQuorum
        self.name = name
        self.host = host
        self.peerPort = peerPort
        self.httpPort = httpPort
        self.dataDir = dataDir
        self.seeds = seeds
        self.tokens = tokens
        self.quorum = quorum
        self.clocks = clocks
        self.gossipIntervalMs = gossipIntervalMs
        self.hintIntervalMs = hintIntervalMs
        self.antiEntropyIntervalMs = antiEntropyIntervalMs
        self.maxKeyBytes = maxKeyBytes
        self.maxValueBytes = maxValueBytes
        self.durability = durability
    }

    public var peerAddress: String { "\(host):\(peerPort)" }
    public var httpAddress: String { "\(host):\(httpPort)" }
}

/// Which replica writes are fsynced before they are acknowledged.
///
/// Every write goes through RocksDB's write-ahead log, so all of them survive `kill -9`;
/// this only decides which also survive a power loss. The default follows the paper's
/// durable-write optimisation: the coordinator's own replica is synced, the others are not.
public enum Durability: String, Sendable, CaseIterable {
    case all, coordinator, none
}
