/// Requests nodes make of each other (carried by the peer protocol, see DynamoWire).
public enum PeerRequest: Hashable, Sendable {
    case replica(ReplicaRequest)
    /// Gossip SYN: the version of every row the sender holds (see `GossipDigest`).
    case gossipDigest([MemberDigest])
    /// Gossip ACK2 (the rows a SYN's answer asked for), or a departing node's farewell.
    case gossipRows([GossipRow])
    /// A node outside a key's top N hands a client write to one inside it.
    case coordinatePut(ForwardedPut)
    /// A joining node asks for the keys it will own (judged with its own row added to the
    /// ring, in case the peer has not heard of it yet), a batch at a time from `after`.
    case pull(requester: Member, after: [UInt8]?)
    /// Anti-entropy: the children hashes of these nodes of the peer's tree for `range`.
    case treeChildren(range: KeyRange, nodes: [MerkleNodeID])
    /// Anti-entropy: the keys and hashes in these segments of the peer's tree for `range`.
    case treeSegments(range: KeyRange, segments: [UInt32])
    /// A request made for a traced client request (never itself traced): the receiver
    /// records its side of it (see `RequestTraces`).
    indirect case traced(TraceTag, PeerRequest)
}

/// A node of a Merkle tree: its level (0 = root) and index within the level.
public struct MerkleNodeID: Hashable, Sendable {
    public var level: Int
    public var id: UInt32

    public init(level: Int, id: UInt32) {
        self.level = level
        self.id = id
    }
}

public enum PeerResponse: Hashable, Sendable {
    case replica(ReplicaReply)
    /// Gossip ACK: the rows the responder holds newer, and the versions it wants (empty
    /// both, the answer to an ACK2).
    case gossipDelta(rows: [GossipRow], wanted: [MemberDigest])
    case coordinated(WriteResult)
    /// A batch of keys for a joining node; `next` is where to continue (nil: done).
    case transfer(entries: [KeyedObject], next: [UInt8]?)
    /// Children hashes for each requested tree node, in order.
    case treeHashes([[UInt64]])
    /// Keys and hashes of the requested segments.
    case treeKeys([KeyHash])
    /// The peer could not handle the request (unknown, overloaded, failed).
    case error(String)
}

/// A client write forwarded to a coordinator in the key's top N.
public struct ForwardedPut: Hashable, Sendable {
    public var key: [UInt8]
    /// nil for a delete.
    public var value: [UInt8]?
    public var context: CausalHistory?
    public var w: Int?
    /// The client request's id (`X-Dynamo-Request-Id`), so the coordinator's log names it
    /// too; at most `maxRequestIdBytes`.
    public var requestId: String?
    /// The trace the write belongs to, at the node handling it (not encoded: a forwarded
    /// write carries its trace in `PeerRequest.traced`).
    public var trace: String?

    public static let maxRequestIdBytes = 64

    /// Request ids (`X-Dynamo-Request-Id`, trace ids, node names within them): 1 to 64
    /// letters, digits and `._:-`, safe in a log line, a header and a path as they are.
    public static func isValid(requestId text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= maxRequestIdBytes
            && text.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                    || byte == 0x2e || byte == 0x5f || byte == 0x3a || byte == 0x2d
            }
    }

    public init(
        key: [UInt8], value: [UInt8]?, context: CausalHistory?, w: Int?, requestId: String? = nil, trace: String? = nil
    ) {
        self.key = key
        self.value = value
        self.context = context
        self.w = w
        self.requestId = requestId
        self.trace = trace
    }
}

/// The result of a coordinated write, as the client will see it.
public struct WriteResult: Hashable, Sendable {
    public var succeeded: Bool
    public var coordinator: NodeName
    public var acks: [NodeName]
    public var required: Int
    /// The context of the new version (what the client passes on its next write).
    public var context: CausalHistory
    /// Set when the coordinator failed outright (not a quorum shortfall).
    public var error: String?
    /// The dot of the version this write created (nil if none was created).
    public var dot: Dot?
    /// Every replica the coordinator sent the write to, fallbacks with the home node they
    /// keep a hint for (for tracing).
    public var asked: [HintedReplica]
    /// Set when the coordinator refused the write because the key would hold too much
    /// (nothing was stored; `error` says the same in words).
    public var refusal: ObjectLimitRefusal?
    /// Each replica asked and when it acknowledged, at the coordinator (not carried to a
    /// node that forwarded the write: its client sees none).
    public var trace: ReplicaTrace?

    public init(
        succeeded: Bool, coordinator: NodeName, acks: [NodeName], required: Int, context: CausalHistory,
        error: String? = nil, dot: Dot? = nil, asked: [HintedReplica] = [], refusal: ObjectLimitRefusal? = nil
    ) {
        self.refusal = refusal
        self.asked = asked
        self.succeeded = succeeded
        self.coordinator = coordinator
        self.acks = acks
        self.required = required
        self.context = context
        self.error = error
        self.dot = dot
    }
}
