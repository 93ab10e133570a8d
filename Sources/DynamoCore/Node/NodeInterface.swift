/// Who is waiting for an answer: a client of this node's HTTP API, or a peer that sent a
/// request (identified by a handle the shell chose, so it can find the connection).
public enum Requester: Hashable, Sendable {
    case client(ClientRequestID)
    case peer(PeerHandle)
}

/// What goes into the machine and what comes out.
extension NodeMachine {
    public enum Input: Hashable, Sendable {
        /// `trace`: the request's id when it is traced (see `RequestTraces`).
        case clientGet(id: ClientRequestID, key: [UInt8], r: Int?, trace: String? = nil)
        /// value nil: delete. `trace`: the request's id when it is traced.
        case clientWrite(
            id: ClientRequestID, key: [UInt8], value: [UInt8]?, context: CausalHistory?, w: Int?, requestId: String? = nil,
            trace: String? = nil)
        case peerRequest(handle: PeerHandle, from: NodeName, PeerRequest)
        /// nil: the request failed or its connection broke.
        case peerResponse(requestID: PeerRequestID, PeerResponse?)
        /// A storage operation finished, with what it changed of the own data: the Merkle
        /// trees take `treeUpdates` before anything acts on the result.
        case storageResult(token: StorageToken, StorageResult, treeUpdates: [TreeUpdate] = [])
        /// Time passed: run due timers (gossip, hints, deadlines).
        case tick
        /// Drop all traffic with these nodes (fault injection).
        case setFaults(drop: Set<NodeName>)
        /// Leave the cluster: hand every range and hint to others (the shell then sends
        /// `depart`).
        case leave
        /// A leaving node holds nothing any more: it declares itself `left` and tells every
        /// member (the shell exits once `hasDeparted`).
        case depart
    }

    public enum Action: Hashable, Sendable {
        /// Send a request to the peer at `address`; its answer comes back as `.peerResponse`.
        case send(requestID: PeerRequestID, toAddress: String, PeerRequest)
        /// Answer a peer's request.
        case respond(handle: PeerHandle, PeerResponse)
        case storage(token: StorageToken, StorageOp)
        /// Answer a client's read.
        case readReply(client: ClientRequestID, GetCoordinator.Outcome)
        /// Answer a client's write (or delete).
        case writeReply(client: ClientRequestID, WriteResult)
        /// A peer request that gets no answer (its sender is cut off): forget its handle.
        case ignore(handle: PeerHandle)
        /// A new node has all the data of its ranges: persist that, so a restart does not
        /// join again (until then, a restart resumes the join), and its dot floor.
        case joined(dotFloor: UInt64)
        /// The node took a new generation and dot floor (the cluster remembered a later life
        /// of it): persist them, so a restart starts above them.
        case identityChanged(generation: UInt64, dotFloor: UInt64)
        /// Something a person watching would want to know (failures seen, hints delivered...).
        case event(NodeEvent)
        /// A key near or over the object limits was written or read, or a write to it was
        /// refused: worth a (rate-limited) warning in the log.
        case objectNearLimit(ObjectReport)
    }

    /// Times for one input: monotonic for deadlines, wall clock for version timestamps.
    public struct Now: Hashable, Sendable {
        public var monotonicMs: UInt64
        public var wallMs: UInt64
        /// The monotonic clock in microseconds, for traces only (no decision reads it): a
        /// replica on the same machine answers in well under a millisecond.
        public var monotonicUs: UInt64
        /// The wall clock in microseconds, for traces only (nodes on one machine line up
        /// their parts of a trace by it).
        public var wallUs: UInt64

        public init(monotonicMs: UInt64, wallMs: UInt64, monotonicUs: UInt64? = nil, wallUs: UInt64? = nil) {
            self.monotonicMs = monotonicMs
            self.wallMs = wallMs
            self.monotonicUs = monotonicUs ?? monotonicMs &* 1000
            self.wallUs = wallUs ?? wallMs &* 1000
        }
    }

    // What the shells, the console and the tests read of a node.

    public var hintsDelivered: [NodeName: Int] { hints.delivered }
    public var tombstonesReaped: Int { reaper.reaped }
    public var trees: [KeyRange: AntiEntropy.RangeTree] { antiEntropy.trees }
    public var exchanges: [String: AntiEntropy.ExchangeRecord] { antiEntropy.exchanges }
    public var exchangeCount: Int { antiEntropy.exchangeCount }
    public var keysRepairedByExchange: Int { antiEntropy.keysRepaired }
    public var keysDifferingByExchange: Int { antiEntropy.keysDiffering }

    /// The steps this node recorded for trace `id` (nil: none), and the ids it keeps.
    public func traceSteps(_ id: String) -> [TraceStep]? { traces.steps(of: id) }
    public var traceIds: [String] { traces.ids }
    /// Traced work in flight (peer requests both ways, clients, storage): for tests, which
    /// check it drains.
    public var tracedInFlight: Int {
        traced.outgoing.count + traced.inbound.count + traced.clients.count + traced.storage.count
    }

    public func isReachable(_ node: NodeName, at now: UInt64) -> Bool { gossip.isReachable(node, at: now) }
    public func status(of node: NodeName, at now: UInt64) -> MemberStatus? { gossip.status(of: node, at: now) }
}
