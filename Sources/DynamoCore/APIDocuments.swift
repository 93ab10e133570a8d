/// The JSON documents of the client and admin HTTP APIs (spec sections 6 and 7).
/// Shared by the node (which writes them) and the client (which reads them).

/// A key's versions as the client sees them.
public struct SiblingDocument: Codable, Hashable, Sendable {
    public struct Sibling: Codable, Hashable, Sendable {
        /// Standard base64 of the value ("" for a tombstone).
        public var value: String
        public var deleted: Bool
        public var clock: [String: UInt64]
        /// Extras for people: the dot that created this version and its write time (ms).
        public var dot: String?
        public var timestamp: UInt64?

        public init(value: String, deleted: Bool, clock: [String: UInt64], dot: String?, timestamp: UInt64?) {
            self.value = value
            self.deleted = deleted
            self.clock = clock
            self.dot = dot
            self.timestamp = timestamp
        }

        /// The decoded value bytes (nil for a tombstone).
        public var bytes: [UInt8]? { deleted ? nil : Base64.decode(value) }
    }

    public var context: String
    public var siblings: [Sibling]

    public init(context: String, siblings: [Sibling]) {
        self.context = context
        self.siblings = siblings
    }

    /// - Parameter context: the object's context, sealed for its key.
    public init(_ object: VersionedObject, context: String) {
        self.context = context
        self.siblings = object.versions.map { version in
            Sibling(
                value: Base64.encode(version.value ?? []),
                deleted: version.isTombstone,
                clock: version.clock.summary,
                dot: version.dot.description,
                timestamp: version.timestamp
            )
        }
    }
}

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
    /// Client requests this node coordinated since it started, and recent latency.
    public var requests: Requests?
    /// Storage operations that failed (a full disk, say): how many, and the last one.
    public var storage: Storage?
    /// The object limits, writes they refused, and keys recently seen near or over them.
    public var objects: Objects?

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

        public init(
            failures: UInt64, lastError: String?, lastErrorMsAgo: UInt64?, lostAtStart: String? = nil,
            degraded: String? = nil
        ) {
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

        public init(gets: UInt64, writes: UInt64, p50Ms: Double?, p99Ms: Double?) {
            self.gets = gets
            self.writes = writes
            self.p50Ms = p50Ms
            self.p99Ms = p99Ms
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

        public var trees: Int
        public var keysTracked: Int
        public var exchanges: Int
        public var keysRepaired: Int
        public var ranges: [Exchange]

        public init(trees: Int, keysTracked: Int, exchanges: Int, keysRepaired: Int, ranges: [Exchange]) {
            self.trees = trees
            self.keysTracked = keysTracked
            self.exchanges = exchanges
            self.keysRepaired = keysRepaired
            self.ranges = ranges
        }
    }

    public init(
        node: String, members: [MemberInfo], hints: Hints, keys: Int, quorum: Quorum?, joined: Bool?,
        antiEntropy: AntiEntropy? = nil, requests: Requests? = nil, storage: Storage? = nil, objects: Objects? = nil
    ) {
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

/// `POST /admin/faults` (and its answer): peers whose messages this node drops.
public struct FaultsDocument: Codable, Hashable, Sendable {
    public var drop: [String]

    public init(drop: [String]) { self.drop = drop }

    /// The drop set of every node for cutting `nodes` into `groups`: each node drops every
    /// node outside its own group; a node in no group is isolated from everyone.
    public static func partition(_ groups: [[String]], of nodes: [String]) -> [String: [String]] {
        Dictionary(
            uniqueKeysWithValues: nodes.map { node in
                let group = groups.first { $0.contains(node) } ?? [node]
                return (node, nodes.filter { !group.contains($0) })
            })
    }
}

/// `POST /admin/leave`: the node hands off what it holds, then exits.
public struct LeaveDocument: Codable, Hashable, Sendable {
    public var leaving: Bool
    /// Keys and hints it holds now, all of which go to other nodes before it exits.
    public var keys: Int
    public var hints: Int

    public init(leaving: Bool, keys: Int, hints: Int) {
        self.leaving = leaving
        self.keys = keys
        self.hints = hints
    }
}

/// `GET /admin/preflist/{key}`.
public struct PreflistDocument: Codable, Hashable, Sendable {
    public var hash: String
    public var preferenceList: [String]

    public init(hash: String, preferenceList: [String]) {
        self.hash = hash
        self.preferenceList = preferenceList
    }
}

/// Every error body: `{"error": ...}` plus, for quorum failures, what was missing, and for
/// a write refused by the object limits, which limit and what the key holds.
public struct ErrorDocument: Codable, Hashable, Sendable {
    public var error: String
    public var acks: Int?
    public var required: Int?
    public var replies: Int?
    /// The limit a refused write would cross: `max-siblings` or `max-object-bytes` (the
    /// flag's name), or `sibling-ceiling` / `byte-ceiling` (what a peer can read).
    public var limit: String?
    /// That limit's value.
    public var maximum: Int?
    /// The key (as text, shortened) and what it holds now: versions and encoded bytes.
    public var key: String?
    public var siblings: Int?
    public var bytes: Int?

    public init(
        error: String, acks: Int? = nil, required: Int? = nil, replies: Int? = nil, limit: String? = nil,
        maximum: Int? = nil, key: String? = nil, siblings: Int? = nil, bytes: Int? = nil
    ) {
        self.error = error
        self.acks = acks
        self.required = required
        self.replies = replies
        self.limit = limit
        self.maximum = maximum
        self.key = key
        self.siblings = siblings
        self.bytes = bytes
    }

    /// The body of a write refused by the object limits (HTTP 409).
    public init(refusal: ObjectLimitRefusal) {
        let limit: String =
            switch refusal.bound {
            case .maxSiblings: "max-siblings"
            case .maxObjectBytes: "max-object-bytes"
            case .siblingCeiling: "sibling-ceiling"
            case .byteCeiling: "byte-ceiling"
            }
        self.init(
            error: refusal.description, limit: limit, maximum: refusal.limit, key: KeyText.short(refusal.key),
            siblings: refusal.current.siblings, bytes: refusal.current.bytes)
    }
}

/// An HTTP request target split into its path and query parameters.
public enum RequestTarget {
    /// `/kv/k?r=2&x` gives `("/kv/k", ["r": "2", "x": ""])`. Any string is accepted (the
    /// node answers a bad parameter by name), empty pairs are skipped, the first of a
    /// repeated name wins.
    public static func split(_ target: String) -> (path: String, query: [String: String]) {
        guard let mark = target.firstIndex(of: "?") else { return (target, [:]) }
        var query: [String: String] = [:]
        for pair in target[target.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = parts.first, query[String(name)] == nil else { continue }
            query[String(name)] = parts.count > 1 ? String(parts[1]) : ""
        }
        return (String(target[..<mark]), query)
    }
}

/// Percent-decoding of one URL path segment into arbitrary bytes.
public enum PercentEncoding {
    /// Decodes `%XX` escapes; nil on a malformed escape.
    public static func decode(_ text: Substring) -> [UInt8]? {
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) else {
                    return nil
                }
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }

    /// Encodes every byte outside RFC 3986's unreserved set.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for b in bytes {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.append(b)
            default:
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// `GET /admin/events?since=SEQ`: the node's recent events (failures seen, hints kept and
/// delivered, read repairs, siblings read, partitions), numbered so a watcher polls only
/// the new ones.
public struct EventsDocument: Codable, Hashable, Sendable {
    /// One event: its sentence, and its facts as fields (absent when the kind has none),
    /// so a watcher never has to parse the sentence.
    public struct Event: Codable, Hashable, Sendable {
        public var seq: UInt64
        /// Wall-clock milliseconds since 1970.
        public var timeMs: UInt64
        public var text: String
        /// What happened, a stable name (`marked`, `hint-kept`, `read-repair`, ...).
        public var kind: String?
        /// The node the event happened on.
        public var node: String?
        /// The other node it is about.
        public var peer: String?
        /// The key it is about, as shown in `text` (printable, or a hex prefix).
        public var key: String?
        /// Keys, siblings or members counted.
        public var count: Int?
        /// The member status reported (`marked`), or up/down for reachability.
        public var status: String?
        /// The nodes it names (traffic dropped with, members learned of).
        public var peers: [String]?
        /// Why: a peer marked down (`phi 9.1`, `partition`, `unanswered`), storage degraded
        /// (`disk full`), a pull failed.
        public var detail: String?

        public init(
            seq: UInt64, timeMs: UInt64, text: String, kind: String? = nil, node: String? = nil,
            peer: String? = nil, key: String? = nil, count: Int? = nil, status: String? = nil,
            peers: [String]? = nil, detail: String? = nil
        ) {
            self.peers = peers
            self.detail = detail
            self.seq = seq
            self.timeMs = timeMs
            self.text = text
            self.kind = kind
            self.node = node
            self.peer = peer
            self.key = key
            self.count = count
            self.status = status
        }

        /// `event` as it happened on `node`.
        public init(seq: UInt64, timeMs: UInt64, node: NodeName, _ event: NodeEvent) {
            self.init(
                seq: seq, timeMs: timeMs, text: event.text(node: node), kind: event.kind, node: node,
                peer: event.peer, key: event.key.map(KeyText.short), count: event.count,
                status: event.status?.rawValue, peers: event.peers, detail: event.detail)
        }
    }

    public var node: String
    public var events: [Event]

    public init(node: String, events: [Event]) {
        self.node = node
        self.events = events
    }
}
