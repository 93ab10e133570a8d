/// `GET /admin/status`.
public struct StatusDocument: Codable, Hashable, Sendable {
    public struct MemberInfo: Codable, Hashable, Sendable {
        public var name: String
        /// up, down, joining or leaving, as this node sees it.
        public var status: String
        public var peerAddress: String
        public var httpAddress: String
        /// Token positions as 32-digit hex (the ring positions of this member's vnodes).
        public var tokens: [String]
        public var heartbeat: UInt64?
        public var generation: UInt64?
        /// Milliseconds since this node last heard a newer heartbeat of the member.
        public var heartbeatAgeMs: UInt64?
        /// This node's suspicion of the member (phi accrual; down at 8 or more).
        public var phi: Double?
        /// False when the member failed to answer this node (routed around until it does).
        public var reachable: Bool?

        public init(
            name: String, status: String, peerAddress: String, httpAddress: String, tokens: [String],
            heartbeat: UInt64?, generation: UInt64?, heartbeatAgeMs: UInt64?, phi: Double? = nil,
            reachable: Bool? = nil
        ) {
            self.name = name
            self.status = status
            self.peerAddress = peerAddress
            self.httpAddress = httpAddress
            self.tokens = tokens
            self.heartbeat = heartbeat
            self.generation = generation
            self.heartbeatAgeMs = heartbeatAgeMs
            self.phi = phi
            self.reachable = reachable
        }
    }

    public struct Hints: Codable, Hashable, Sendable {
        /// Hinted replicas this node holds for others, waiting for delivery.
        public var pending: Int
        public var byTarget: [String: Int]
        /// Hints delivered (and then deleted) since this node started, per target.
        public var delivered: [String: Int]?

        public init(pending: Int, byTarget: [String: Int], delivered: [String: Int]? = nil) {
            self.pending = pending
            self.byTarget = byTarget
            self.delivered = delivered
        }
    }

    public struct Quorum: Codable, Hashable, Sendable {
        public var n: Int
        public var r: Int
        public var w: Int
        public var policy: String
        /// False when the quorum is strict (`--sloppy-quorum off`).
        public var sloppy: Bool?

        public init(n: Int, r: Int, w: Int, policy: String, sloppy: Bool? = nil) {
            self.sloppy = sloppy
            self.n = n
            self.r = r
            self.w = w
            self.policy = policy
        }
    }

    public var node: String
    public var members: [MemberInfo]
    public var hints: Hints
    public var keys: Int
    public var quorum: Quorum?
    /// True once the node has exchanged gossip with a seed (or has none).
    public var joined: Bool?
    public var antiEntropy: AntiEntropy?
    /// Client requests that arrived at this node's HTTP API since it started (a write it
    /// forwards counts here too), and their recent latency.
    public var requests: Requests?
    /// Storage operations that failed (a full disk, say): how many, and the last one.
    public var storage: Storage?
    /// The object limits, writes they refused, and keys recently seen near or over them.
    public var objects: Objects?
    /// Members that left the cluster for good (`members` lists them no more), with how
    /// long ago this node learned it; nil from nodes before this field.
    public var departed: [Departed]?

    public struct Departed: Codable, Hashable, Sendable {
        public var name: String
        public var msAgo: UInt64

        public init(name: String, msAgo: UInt64) {
            self.name = name
            self.msAgo = msAgo
        }
    }

    public struct Objects: Codable, Hashable, Sendable {
        public struct HotKey: Codable, Hashable, Sendable {
            /// The key as text (printable keys up to 24 characters, else a hex prefix).
            public var key: String
            public var siblings: Int
            public var bytes: Int
            /// A write to it was refused (the sizes are then what it holds).
            public var refused: Bool
            public var msAgo: UInt64

            public init(key: String, siblings: Int, bytes: Int, refused: Bool, msAgo: UInt64) {
                self.key = key
                self.siblings = siblings
                self.bytes = bytes
                self.refused = refused
                self.msAgo = msAgo
            }
        }

        public var warnSiblings: Int
        public var maxSiblings: Int
        public var warnObjectBytes: Int
        public var maxObjectBytes: Int
        /// Writes refused by the limits since the node started.
        public var writesRefused: Int
        /// Up to 10 keys, newest first: written or read at or past a warning, or refused.
        public var nearLimits: [HotKey]

        public init(
            warnSiblings: Int, maxSiblings: Int, warnObjectBytes: Int, maxObjectBytes: Int, writesRefused: Int,
            nearLimits: [HotKey]
        ) {
            self.warnSiblings = warnSiblings
            self.maxSiblings = maxSiblings
            self.warnObjectBytes = warnObjectBytes
            self.maxObjectBytes = maxObjectBytes
            self.writesRefused = writesRefused
            self.nearLimits = nearLimits
        }
    }

    public struct Storage: Codable, Hashable, Sendable {
        public var failures: UInt64
        public var lastError: String?
        public var lastErrorMsAgo: UInt64?
        /// What the store had lost when the node started (a damaged log, a repair), so it
        /// refilled from its replicas; nil when it came back whole.
        public var lostAtStart: String?
        /// Set while the store fails (\"disk full\"), until it takes writes again.
        public var degraded: String?
        /// Group commit since the node started: write batches committed, how many of them
        /// were synced, and the storage operations they carried.
        public var batches: UInt64?
        public var syncs: UInt64?
        public var batchedOperations: UInt64?

        public init(
            failures: UInt64, lastError: String?, lastErrorMsAgo: UInt64?, lostAtStart: String? = nil,
            degraded: String? = nil, batches: UInt64? = nil, syncs: UInt64? = nil, batchedOperations: UInt64? = nil
        ) {
            self.batches = batches
            self.syncs = syncs
            self.batchedOperations = batchedOperations
            self.degraded = degraded
            self.lostAtStart = lostAtStart
            self.failures = failures
            self.lastError = lastError
            self.lastErrorMsAgo = lastErrorMsAgo
        }
    }

    public struct Requests: Codable, Hashable, Sendable {
        public var gets: UInt64
        public var writes: UInt64
        /// Over the last 1,024 requests (nil before the first).
        public var p50Ms: Double?
        public var p99Ms: Double?
        /// Writes received here by the W they asked for ("1", "2"...): the last 256 of each.
        public var writesByW: [String: Quantiles]?

        public struct Quantiles: Codable, Hashable, Sendable {
            public var count: Int
            public var p50Ms: Double
            public var p99Ms: Double

            public init(count: Int, p50Ms: Double, p99Ms: Double) {
                self.count = count
                self.p50Ms = p50Ms
                self.p99Ms = p99Ms
            }
        }

        public init(
            gets: UInt64, writes: UInt64, p50Ms: Double?, p99Ms: Double?, writesByW: [String: Quantiles]? = nil
        ) {
            self.gets = gets
            self.writes = writes
            self.p50Ms = p50Ms
            self.p99Ms = p99Ms
            self.writesByW = writesByW
        }
    }

    /// Merkle anti-entropy: totals, and the last comparison of each range with each replica.
    public struct AntiEntropy: Codable, Hashable, Sendable {
        public struct Exchange: Codable, Hashable, Sendable {
            /// The ring range (start..end, hex prefixes) and the replica compared with.
            public var range: String
            public var peer: String
            public var lastComparedMsAgo: UInt64
            public var inSync: Bool
            public var keysDiffering: Int
            public var keysRepaired: Int
            public var bytesReceived: Int

            public init(
                range: String, peer: String, lastComparedMsAgo: UInt64, inSync: Bool, keysDiffering: Int,
                keysRepaired: Int, bytesReceived: Int
            ) {
                self.range = range
                self.peer = peer
                self.lastComparedMsAgo = lastComparedMsAgo
                self.inSync = inSync
                self.keysDiffering = keysDiffering
                self.keysRepaired = keysRepaired
                self.bytesReceived = bytesReceived
            }
        }

        /// A range this node keeps a tree of, and its other replicas: every pair listed
        /// here is compared in turn, and `ranges` holds the last comparison of each.
        public struct Tracked: Codable, Hashable, Sendable {
            public var range: String
            public var peers: [String]

            public init(range: String, peers: [String]) {
                self.range = range
                self.peers = peers
            }
        }

        public var trees: Int
        public var keysTracked: Int
        public var exchanges: Int
        public var keysRepaired: Int
        /// The last comparison of each current range with each of its replicas (ranges and
        /// replicas that moved away are dropped; a pair not compared yet is missing).
        public var ranges: [Exchange]
        /// Every current range and its replicas (nil from nodes before this field).
        public var tracked: [Tracked]?

        public init(
            trees: Int, keysTracked: Int, exchanges: Int, keysRepaired: Int, ranges: [Exchange],
            tracked: [Tracked]? = nil
        ) {
            self.trees = trees
            self.keysTracked = keysTracked
            self.exchanges = exchanges
            self.keysRepaired = keysRepaired
            self.ranges = ranges
            self.tracked = tracked
        }
    }

    public init(
        node: String, members: [MemberInfo], hints: Hints, keys: Int, quorum: Quorum?, joined: Bool?,
        antiEntropy: AntiEntropy? = nil, requests: Requests? = nil, storage: Storage? = nil, objects: Objects? = nil,
        departed: [Departed]? = nil
    ) {
        self.departed = departed
        self.objects = objects
        self.storage = storage
        self.antiEntropy = antiEntropy
        self.requests = requests
        self.node = node
        self.members = members
        self.hints = hints
        self.keys = keys
        self.quorum = quorum
        self.joined = joined
    }
}
