/// Request traces: what each node did for one traced client request (`X-Dynamo-Trace: 1`),
/// step by step, with its own monotonic and wall clocks, so a console can merge every
/// node's part into a space-time diagram.
///
/// A trace follows the request across nodes: the peer requests made for it travel
/// wrapped in `PeerRequest.traced` with the trace's id and what the message is, and the
/// node receiving one records its side (the arrival, a hint it keeps, its answer). Nothing
/// is recorded, and nothing is wrapped, for a request that is not traced.

/// What a traced peer message is for (its label in a diagram).
public enum TraceMessage: UInt8, Hashable, Sendable, CaseIterable {
    case get = 1
    case put = 2
    /// A read repair: a put a read sends to a replica it found stale.
    case repair = 3
    case reap = 4
    /// A client write handed to a coordinator in the key's top N.
    case forward = 5

    public var name: String {
        switch self {
        case .get: "get"
        case .put: "put"
        case .repair: "repair"
        case .reap: "reap"
        case .forward: "forward"
        }
    }
}

/// The trace a peer message belongs to.
public struct TraceTag: Hashable, Sendable {
    /// The client request's id (`X-Dynamo-Request-Id`), at most `maxIdBytes`.
    public var id: String
    public var message: TraceMessage

    public static let maxIdBytes = ForwardedPut.maxRequestIdBytes

    public init(id: String, message: TraceMessage) {
        self.id = id
        self.message = message
    }

    /// Ids a trace may go by: those of requests (`ForwardedPut.isValid(requestId:)`).
    public static func isValid(id: String) -> Bool { ForwardedPut.isValid(requestId: id) }
}

/// One thing a node did for a traced request.
public struct TraceStep: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        /// A client's request arrived (`message`: get, put or delete as `detail`).
        case request
        /// A peer message went to `peer`.
        case send
        /// A peer message arrived from `peer`.
        case receive
        /// This node answered `peer`'s message (`detail`: the answer).
        case answer
        /// `peer` answered this node's message (`detail`: the answer).
        case reply
        /// `peer` did not answer this node's message in time, or its link broke.
        case noReply
        /// This node's own replica stored or read the key (`detail`: the result).
        case local
        /// This node keeps the key as a hint for home node `peer`.
        case hint
        /// The client was answered (`detail`: the outcome): a write's quorum met here.
        case answered
    }

    public var kind: Kind
    public var peer: NodeName?
    public var message: TraceMessage?
    public var detail: String?
    /// This node's monotonic clock, µs.
    public var monotonicUs: UInt64
    /// This node's wall clock, µs since 1970 (what lines up the nodes' parts).
    public var wallUs: UInt64

    public init(
        _ kind: Kind, peer: NodeName? = nil, message: TraceMessage? = nil, detail: String? = nil, monotonicUs: UInt64,
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

/// The traces one node keeps, bounded in number, age and steps: the oldest go first.
public struct RequestTraces: Sendable {
    public static let maxTraces = 256
    public static let maxAgeMs: UInt64 = 10 * 60 * 1000
    public static let maxSteps = 128

    struct Trace {
        var startedMs: UInt64
        var steps: [TraceStep]

        mutating func append(_ step: TraceStep, max: Int) {
            if steps.count < max { steps.append(step) }
        }
    }

    private var traces: [String: Trace] = [:]
    /// Ids in the order their traces began (the front is evicted first).
    private var order: [String] = []

    public init() {}

    public var count: Int { traces.count }

    public func contains(_ id: String) -> Bool { traces[id] != nil }

    /// The steps this node recorded for trace `id`, in order (nil: none).
    public func steps(of id: String) -> [TraceStep]? { traces[id]?.steps }

    /// The ids kept, newest first.
    public var ids: [String] { order.reversed() }

    mutating func record(_ id: String, _ step: TraceStep, atMs now: UInt64) {
        if traces[id] == nil {
            if order.count >= Self.maxTraces { traces[order.removeFirst()] = nil }
            order.append(id)
        }
        traces[id, default: Trace(startedMs: now, steps: [])].append(step, max: Self.maxSteps)
    }

    /// Forgets traces older than `maxAgeMs`.
    mutating func prune(atMs now: UInt64) {
        while let first = order.first, let trace = traces[first], now &- trace.startedMs > Self.maxAgeMs,
            now >= trace.startedMs
        {
            traces[first] = nil
            order.removeFirst()
        }
    }
}

/// Where the traced requests in flight are, so what comes back for them is recorded too.
/// Empty whenever nothing is traced: the untraced path pays one `isEmpty` per check.
struct TracedWork: Sendable {
    /// Peer requests sent for a trace: what they were, and to whom.
    var outgoing: [PeerRequestID: (tag: TraceTag, peer: NodeName)] = [:]
    /// Peer requests received for a trace, until answered.
    var inbound: [PeerHandle: (tag: TraceTag, peer: NodeName)] = [:]
    /// Client requests traced here (the entry node), until answered.
    var clients: [ClientRequestID: String] = [:]
    /// This node's own replica's storage operations for a trace.
    var storage: [StorageToken: TraceTag] = [:]
}

extension NodeMachine {
    /// Records a step of trace `id` at `now`.
    mutating func trace(_ id: String, _ kind: TraceStep.Kind, peer: NodeName? = nil, message: TraceMessage? = nil,
        detail: String? = nil, now: Now)
    {
        traces.record(
            id,
            TraceStep(
                kind, peer: peer, message: message, detail: detail, monotonicUs: now.monotonicUs, wallUs: now.wallUs),
            atMs: now.monotonicMs)
    }

    /// Records what the actions of one input did for traced requests: answers to traced
    /// peer messages and to traced clients.
    mutating func traceActions(_ actions: [Action], now: Now) {
        for action in actions {
            switch action {
            case .respond(let handle, let response):
                guard let (tag, peer) = traced.inbound.removeValue(forKey: handle) else { continue }
                trace(tag.id, .answer, peer: peer, message: tag.message, detail: Self.describe(response), now: now)
            case .ignore(let handle):
                traced.inbound[handle] = nil
            case .readReply(let client, let outcome):
                guard let id = traced.clients.removeValue(forKey: client) else { continue }
                let detail =
                    outcome.succeeded
                    ? (outcome.object.isEmpty || outcome.object.isDeleted
                        ? "not found" : Self.versions(outcome.object.versions.count)) + ", R=\(outcome.required) met"
                    : "failed: \(outcome.replies.count) of R=\(outcome.required) answered"
                trace(id, .answered, detail: detail, now: now)
            case .writeReply(let client, let result):
                guard let id = traced.clients.removeValue(forKey: client) else { continue }
                trace(id, .answered, detail: Self.describe(result), now: now)
            default:
                continue
            }
        }
    }

    static func versions(_ count: Int) -> String { count == 1 ? "1 version" : "\(count) versions" }

    static func describe(_ result: WriteResult) -> String {
        if let error = result.error { return "failed: \(error)" }
        let acks = result.acks.count == 1 ? "1 ack" : "\(result.acks.count) acks"
        return (result.succeeded ? "ok" : "failed") + ", \(acks), W=\(result.required)"
    }

    static func describe(_ reply: ReplicaReply) -> String {
        switch reply {
        case .object(let object?) where !object.versions.isEmpty: versions(object.versions.count)
        case .object: "not found"
        case .stored: "stored"
        case .failed(let reason): "failed: \(reason)"
        }
    }

    static func describe(_ response: PeerResponse?) -> String {
        switch response {
        case .replica(let reply)?: describe(reply)
        case .coordinated(let result)?: describe(result)
        case .error(let reason)?: "failed: \(reason)"
        case nil: "no answer"
        default: "answered"
        }
    }
}
