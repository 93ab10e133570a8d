public import DynamoAPI
public import DynamoCore
import Foundation
import NIOCore

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
    /// A node looks for old tombstones to reap once per anti-entropy interval (no flag of
    /// its own: reaping needs the replicas in sync, which anti-entropy is checking anyway).
    public var tombstoneSweepIntervalMs: UInt64 { antiEntropyIntervalMs }
    public var maxKeyBytes: Int
    public var maxValueBytes: Int
    /// What one key may hold (`--max-siblings`, `--max-object-bytes` and their warnings).
    public var objectLimits: ObjectLimits
    public var durability: Durability
    /// Off: a strict quorum (home nodes only, no hinted handoff).
    public var sloppyQuorum: Bool
    /// The address to bind both ports on (`--listen`, default `--host`).
    public var listenHost: String
    /// The address peers and clients are told to use (`--advertise`, default `--host`).
    public var advertiseHost: String
    /// The cluster secret: peers must prove it, admin changes need it as a bearer token
    /// off loopback. nil: a development node, allowed on loopback only.
    public var clusterKey: ClusterKey?
    public var limits: ConnectionLimits
    /// TLS on both ports (mutual on the peer port); nil: plain TCP.
    public var tls: NodeTLS?
    /// Run RocksDB's repair on the store before opening it, then refill from the replicas
    /// (`--repair-store`: the way out when a damaged file keeps the node from starting).
    public var repairStore: Bool
    /// Shifts this node's wall clock (`--clock-offset-ms`): version timestamps, tombstone
    /// ages and everything else the node dates. For showing what clock skew does to
    /// `--policy lww` on one machine, in a demo or a test.
    public var clockOffsetMs: Int64 = 0
    /// Event loops for the HTTP API besides the node's protocol loop (`--http-threads`):
    /// they parse requests and write replies, so a node uses more than one core; the
    /// protocol state stays on its one loop. 0 serves HTTP on the protocol loop too.
    public var httpThreads: Int = NodeConfig.defaultHTTPThreads

    /// One HTTP loop per core beyond the protocol loop's, at least one, at most four.
    public static var defaultHTTPThreads: Int { min(4, max(1, System.coreCount - 1)) }

    /// This node's wall clock in ms since 1970, with its offset (never below 0).
    public var wallMs: UInt64 { shifted(Date().timeIntervalSince1970, perSecond: 1000) }

    /// The same clock in ms and in µs (for traces, which line nodes up by it), from one
    /// reading.
    public var wallClock: (ms: UInt64, us: UInt64) {
        let seconds = Date().timeIntervalSince1970
        return (shifted(seconds, perSecond: 1000), shifted(seconds, perSecond: 1_000_000))
    }

    /// `seconds` since 1970 plus the offset, in units of 1/`perSecond` s (a multiple of
    /// 1000): at least 0, at most `Int64.max` units.
    private func shifted(_ seconds: Double, perSecond: Int64) -> UInt64 {
        let real = Int64(seconds * Double(perSecond))
        let (offset, overflowOffset) = clockOffsetMs.multipliedReportingOverflow(by: perSecond / 1000)
        let (shifted, overflow) = real.addingReportingOverflow(offset)
        if overflow || overflowOffset { return clockOffsetMs > 0 ? UInt64(Int64.max) : 0 }
        return UInt64(max(0, shifted))
    }

    public init(
        name: NodeName, host: String = "127.0.0.1", peerPort: Int, httpPort: Int, dataDir: String,
        seeds: [String] = [], tokens: Int = 8, quorum: QuorumConfig = QuorumConfig(),
        clocks: ClockPolicy = ClockPolicy(), gossipIntervalMs: UInt64 = 1000, hintIntervalMs: UInt64 = 1000,
        antiEntropyIntervalMs: UInt64 = 10_000, maxKeyBytes: Int = 1024, maxValueBytes: Int = 1 << 20,
        durability: Durability = .coordinator, sloppyQuorum: Bool = true, listenHost: String? = nil,
        advertiseHost: String? = nil, clusterKey: ClusterKey? = nil, limits: ConnectionLimits = ConnectionLimits(),
        tls: NodeTLS? = nil, repairStore: Bool = false, objectLimits: ObjectLimits = ObjectLimits()
    ) {
        self.repairStore = repairStore
        self.objectLimits = objectLimits
        self.tls = tls
        self.limits = limits
        self.listenHost = listenHost ?? host
        self.advertiseHost = advertiseHost ?? host
        self.clusterKey = clusterKey
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

    /// What the node advertises to peers and clients.
    public var peerAddress: String { HostAddress.joined(advertiseHost, peerPort) }
    public var httpAddress: String { HostAddress.joined(advertiseHost, httpPort) }

    /// Whether the node binds only loopback addresses (so only this machine can reach it).
    public var listensOnLoopbackOnly: Bool { HostAddress.isLoopback(listenHost) }
}
