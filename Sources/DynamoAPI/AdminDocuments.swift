/// The admin API's smaller documents (spec section 7).

/// `POST /admin/faults` (and its answer): this node's injected faults, the whole set (a
/// field left out means none of that kind). `drop`: peers whose messages it drops, both
/// ways (the contract). `delay`, `jitter` (ms) and `loss` (0...1), per peer: what happens
/// to the messages this node *sends* to that peer; the answers to them are sent by the
/// peer, so a delay on one side slows every round trip over that link by that much.
public struct FaultsDocument: Codable, Hashable, Sendable {
    public var drop: [String]
    public var delay: [String: Int]
    public var jitter: [String: Int]
    public var loss: [String: Double]

    /// The most delay or jitter one link takes (ms): beyond it every request times out.
    public static let maxDelayMs = 60_000

    public init(drop: [String], delay: [String: Int] = [:], jitter: [String: Int] = [:], loss: [String: Double] = [:]) {
        self.drop = drop
        self.delay = delay
        self.jitter = jitter
        self.loss = loss
    }

    enum CodingKeys: String, CodingKey { case drop, delay, jitter, loss }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        drop = try container.decodeIfPresent([String].self, forKey: .drop) ?? []
        delay = try container.decodeIfPresent([String: Int].self, forKey: .delay) ?? [:]
        jitter = try container.decodeIfPresent([String: Int].self, forKey: .jitter) ?? [:]
        loss = try container.decodeIfPresent([String: Double].self, forKey: .loss) ?? [:]
    }

    /// Written with only the kinds in force besides `drop`: a node without slow or lossy
    /// links answers `{"drop": [...]}` exactly as before they existed.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(drop, forKey: .drop)
        if !delay.isEmpty { try container.encode(delay, forKey: .delay) }
        if !jitter.isEmpty { try container.encode(jitter, forKey: .jitter) }
        if !loss.isEmpty { try container.encode(loss, forKey: .loss) }
    }

    /// Every peer the document names.
    public var peers: Set<String> { Set(drop).union(delay.keys).union(jitter.keys).union(loss.keys) }

    /// What is wrong with the values (nil: nothing): delays and jitter from 0 to
    /// `maxDelayMs`, loss a fraction from 0 to 1.
    public var problem: String? {
        // Each checked on its own (a negative one beside a larger one once passed, and
        // crashed the node).
        for (peer, ms) in Array(delay) + Array(jitter) where !(0...Self.maxDelayMs).contains(ms) {
            return "delay and jitter are whole ms from 0 to \(Self.maxDelayMs) (\(peer): \(ms))"
        }
        for (peer, fraction) in loss where !(fraction.isFinite && (0...1).contains(fraction)) {
            return "loss is a fraction from 0 to 1 (\(peer): \(fraction))"
        }
        return nil
    }

    /// No fault at all.
    public var isEmpty: Bool { drop.isEmpty && delay.isEmpty && jitter.isEmpty && loss.isEmpty }

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

/// `GET /admin/trace/{id}`: one node's part of a traced request (see `RequestTraces`):
/// every step it took, each with its own monotonic and wall clocks in µs.
public struct TraceDocument: Codable, Hashable, Sendable {
    public struct Step: Codable, Hashable, Sendable {
        /// request, send, receive, answer, reply, noReply, local, hint, answered.
        public var kind: String
        /// The other node of a message (for `hint`: the home node the hint is for).
        public var peer: String?
        /// What the message is: get, put, repair, reap, forward.
        public var message: String?
        public var detail: String?
        public var monotonicUs: UInt64
        public var wallUs: UInt64

        public init(
            kind: String, peer: String? = nil, message: String? = nil, detail: String? = nil, monotonicUs: UInt64,
            wallUs: UInt64
        ) {
            self.kind = kind
            self.peer = peer
            self.message = message
            self.detail = detail
            self.monotonicUs = monotonicUs
            self.wallUs = wallUs
        }
    }

    public var node: String
    public var id: String
    public var steps: [Step]

    public init(node: String, id: String, steps: [Step]) {
        self.node = node
        self.id = id
        self.steps = steps
    }
}

/// `GET /admin/trace`: the traces a node keeps, newest first.
public struct TraceListDocument: Codable, Hashable, Sendable {
    public var node: String
    public var ids: [String]

    public init(node: String, ids: [String]) {
        self.node = node
        self.ids = ids
    }
}
