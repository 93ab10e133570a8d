/// Coordinating client requests at one node. A read runs a `GetCoordinator` over the key's
/// replicas (with read repair). A write is coordinated here when this node is among the
/// key's first N healthy nodes, else forwarded to those nodes in turn; coordinated, it is
/// stored here, then replicated by a `PutCoordinator` with a sloppy quorum.
///
/// Pure: it owns every request in flight and returns steps; `NodeMachine` sends the
/// messages, runs the storage operations and feeds the answers back. Each decision takes a
/// `View` of the cluster as the node sees it at that moment.
public struct RequestCoordination: Sendable {
    /// What the node does for the component.
    public enum Step: Hashable, Sendable {
        /// Ask replica `node` (possibly this node) on behalf of run `run` (answer: `replied`);
        /// `trace` when the run is traced.
        case replica(ReplicaRequest, to: NodeName, run: RunID, trace: TraceTag? = nil)
        /// Ask `node` to coordinate the write (answer: `forwardAnswered`).
        case forward(ForwardedPut, to: NodeName, write: RunID)
        /// Store a write coordinated here (answer: `stored`).
        case store(StorageOp, write: RunID)
        case readReply(client: ClientRequestID, GetCoordinator.Outcome)
        /// Answer a write: its client, or the peer that forwarded it.
        case writeReply(Requester, WriteResult)
        /// Answer a forwarding peer with an error, so it tries its next candidate.
        case refuse(PeerHandle, String)
        /// A key's size as seen by a write, a refused write or a read (for the object limits).
        case watch(key: [UInt8], ObjectSize, HotKeys.Sighting)
        case event(NodeEvent)
    }

    /// The cluster as the node sees it when it decides.
    public struct View {
        public var routing: Routing
        /// Counters of the dots made here start above this (see `NodeMachine.dotFloor`).
        public var dotFloor: UInt64
        /// The node has not heard from the cluster yet: it coordinates no write, since it
        /// does not know yet whether the cluster remembers a later life of it (a lost or
        /// restored data dir), whose dots its new ones must start above.
        public var starting: Bool
        /// The node left the cluster and is about to exit: what it stored now would go
        /// with it (found by an attack review: a write acknowledged there was lost).
        public var departed: Bool

        public init(routing: Routing, dotFloor: UInt64, starting: Bool, departed: Bool = false) {
            self.routing = routing
            self.dotFloor = dotFloor
            self.starting = starting
            self.departed = departed
        }
    }

    /// Client id of reads the node makes for itself (tombstone sweeps): no one gets a reply.
    public static let internalClient = ClientRequestID(0)

    struct GetRun {
        var coordinator: GetCoordinator
        var client: ClientRequestID
        var trace: ReplicaTrace
        /// The request trace it belongs to (see `RequestTraces`).
        var traceId: String?
    }

    struct PutRun {
        var coordinator: PutCoordinator
        var requester: Requester
        var version: Version
        var trace: ReplicaTrace
        var traceId: String?
    }

    /// A write not yet replicating: waiting for a node it was forwarded to, or for its
    /// local store.
    struct PendingWrite {
        enum Phase {
            /// `failedHere`: this node could not store the write itself, so when no
            /// candidate takes it the write fails instead of coming back here.
            case forwarding(remaining: [NodeName], failedHere: String?)
            case storing(replicas: [HintedReplica])
        }
        var requester: Requester
        var put: ForwardedPut
        var phase: Phase
        /// When the write came in (monotonic µs, for its trace).
        var startUs: UInt64
    }

    let settings: NodeSettings
    private var nextID: UInt64 = 1
    private var gets: [RunID: GetRun] = [:]
    private var puts: [RunID: PutRun] = [:]
    private var writes: [RunID: PendingWrite] = [:]

    public init(settings: NodeSettings) { self.settings = settings }

    /// The trace of a write being stored or forwarded here (nil: untraced).
    public func trace(ofWrite id: RunID) -> String? { writes[id]?.put.trace }

    /// Reads and replicating writes in flight.
    public var running: Int { gets.count + puts.count }
    /// Writes forwarded or being stored here.
    public var pendingWrites: Int { writes.count }

    private var me: NodeName { settings.name }

    private mutating func newID() -> RunID {
        defer { nextID += 1 }
        return RunID(nextID)
    }

    // MARK: Reads

    /// `mayReap`: tombstones past their grace may be reaped on this read (the cluster is settled).
    public mutating func read(
        client: ClientRequestID, key: [UInt8], r: Int?, routing: Routing, mayReap: Bool, now: NodeMachine.Now,
        trace: String? = nil
    ) -> [Step] {
        let coordinator = GetCoordinator(
            key: key, replicas: routing.readReplicas(forKey: key), r: r ?? settings.quorum.r,
            policy: settings.clocks, now: now.monotonicMs, config: settings.quorum, wallNow: now.wallMs,
            mayReap: mayReap)
        let id = newID()
        gets[id] = GetRun(
            coordinator: coordinator, client: client, trace: ReplicaTrace(startUs: now.monotonicUs), traceId: trace)
        return runGet(id, now: now) { $0.start() }
    }

    private mutating func runGet(
        _ id: RunID, now: NodeMachine.Now, _ event: (inout GetCoordinator) -> [GetCoordinator.Action]
    ) -> [Step] {
        guard var run = gets[id] else { return [] }
        let actions = event(&run.coordinator)
        defer { gets[id] = run.coordinator.isFinished ? nil : run }
        let key = run.coordinator.key
        let forSelf = run.client == Self.internalClient
        var steps: [Step] = []
        for action in actions {
            switch action {
            case .send(let node, let request):
                if case .put = request {
                    guard settings.readRepair else { continue }
                    steps.append(.event(.readRepair(key: key, peer: node)))
                }
                if case .reap = request { steps.append(.event(.tombstoneReaped(key: key, peer: node))) }
                if case .get = request {
                    let hintFor = run.coordinator.replicas.first { $0.node == node }?.hintFor
                    run.trace.sent(to: node, hintFor: hintFor, nowUs: now.monotonicUs)
                }
                let message: TraceMessage
                switch request {
                case .get: message = .get
                case .put: message = .repair
                case .reap: message = .reap
                }
                steps.append(.replica(request, to: node, run: id, trace: run.traceId.map { TraceTag(id: $0, message: message) }))
            case .respond(var outcome):
                run.trace.replied(nowUs: now.monotonicUs)
                outcome.trace = run.trace
                if !forSelf, outcome.succeeded { steps.append(.watch(key: key, outcome.object.size, .read)) }
                if outcome.object.versions.count > 1 {
                    steps.append(.event(.siblingsRead(key: key, count: outcome.object.versions.count)))
                }
                if !forSelf { steps.append(.readReply(client: run.client, outcome)) }
            }
        }
        return steps
    }

    // MARK: Writes

    /// A client write: coordinated here when this node is among the key's first N healthy
    /// nodes (home nodes first, then fallbacks), else forwarded to them in order.
    public mutating func write(_ requester: Requester, _ put: ForwardedPut, view: View, now: NodeMachine.Now)
        -> [Step]
    {
        let id = newID()
        let replicas = view.routing.replicas(forKey: put.key)
        writes[id] = PendingWrite(
            requester: requester, put: put, phase: .storing(replicas: []), startUs: now.monotonicUs)
        if view.routing.coordinatesHere(replicas) { return coordinateHere(id, view: view, now: now) }
        return forward(id, candidates: replicas.map(\.node), failedHere: nil, view: view, now: now)
    }

    /// A write a peer forwarded: coordinated here, never forwarded again, so differing views
    /// of the cluster cannot bounce it around.
    public mutating func coordinate(_ requester: Requester, _ put: ForwardedPut, view: View, now: NodeMachine.Now)
        -> [Step]
    {
        let id = newID()
        writes[id] = PendingWrite(
            requester: requester, put: put, phase: .storing(replicas: []), startUs: now.monotonicUs)
        return coordinateHere(id, view: view, now: now)
    }

    /// Forwards the write to the first of `candidates`. With none left it is coordinated
    /// here (nobody answered: rather than refuse it), unless this node failed to store it.
    private mutating func forward(
        _ id: RunID, candidates: [NodeName], failedHere: String?, view: View, now: NodeMachine.Now
    ) -> [Step] {
        guard var write = writes[id] else { return [] }
        guard let target = candidates.first else {
            if let failedHere {
                return writeFailed(id, "local write failed (\(failedHere)) and no other replica could coordinate it")
            }
            return coordinateHere(id, view: view, now: now)
        }
        write.phase = .forwarding(remaining: Array(candidates.dropFirst()), failedHere: failedHere)
        writes[id] = write
        return [.forward(write.put, to: target, write: id)]
    }

    /// A node the write was forwarded to answered (nil: not in time): the write was
    /// coordinated there, or goes to the next candidate.
    public mutating func forwardAnswered(_ id: RunID, _ response: PeerResponse?, view: View, now: NodeMachine.Now)
        -> [Step]
    {
        guard let write = writes[id], case .forwarding(let remaining, let failedHere) = write.phase else { return [] }
        if case .coordinated(let result) = response {
            writes[id] = nil
            return [.writeReply(write.requester, result)]
        }
        return forward(id, candidates: remaining, failedHere: failedHere, view: view, now: now)
    }

    /// Stores the write here (as a hint if this node is a fallback), to replicate it once stored.
    private mutating func coordinateHere(_ id: RunID, view: View, now: NodeMachine.Now) -> [Step] {
        guard var write = writes[id] else { return [] }
        if view.starting || view.departed {
            let reason =
                view.departed
                ? "\(me) left the cluster; try another node"
                : "\(me) is starting and has not reached the cluster yet; try another node"
            if case .peer(let handle) = write.requester {
                writes[id] = nil
                return [.refuse(handle, reason)]
            }
            return writeFailed(id, reason)
        }
        let put = write.put
        let replicas = view.routing.coordinatorReplicas(forKey: put.key)
        let hintFor = replicas.first { $0.node == me }?.hintFor
        write.phase = .storing(replicas: replicas)
        writes[id] = write
        let op = StorageOp.coordinateWrite(
            key: put.key, value: put.value, context: put.context, actor: me, now: now.wallMs, hintFor: hintFor,
            sync: settings.durability.syncsCoordinatorWrites, counterFloor: view.dotFloor,
            limits: settings.objectLimits)
        return (hintFor.map { [.event(.hintKept(key: put.key, target: $0))] } ?? []) + [.store(op, write: id)]
    }

    /// The store answered a write coordinated here: replicate the new version, or tell the
    /// client why not, or (this node cannot store it) let another replica coordinate it.
    public mutating func stored(_ id: RunID, _ result: StorageResult, view: View, now: NodeMachine.Now) -> [Step] {
        guard let write = writes[id], case .storing(let replicas) = write.phase else { return [] }
        let key = write.put.key
        switch result {
        case .version(let version, let size):
            writes[id] = nil
            let w = write.put.w ?? settings.quorum.w
            // The trace counts this node's own store as its answer.
            var trace = ReplicaTrace(startUs: write.startUs)
            let hintFor = replicas.first { $0.node == me }?.hintFor
            trace.sent(to: me, hintFor: hintFor, nowUs: write.startUs)
            trace.answered(me, failure: nil, nowUs: now.monotonicUs)
            return [.watch(key: key, size, .written)]
                + replicate(
                    write.requester, key: key, version: version, replicas: replicas, w: w, trace: trace,
                    traceId: write.put.trace, view: view, now: now)
        case .refused(let refusal):
            // Nothing was stored: the client learns why and how to resolve it.
            return [.watch(key: key, refusal.current, .refused)] + writeFailed(id, refusal.description, refusal: refusal)
        default:
            let reason: String
            if case .failed(let message) = result { reason = message } else { reason = "unexpected storage result" }
            // This node cannot store the write (a full disk): another replica coordinates
            // it. A forwarded write goes back as an error, so its forwarder tries the next.
            if case .peer(let handle) = write.requester {
                writes[id] = nil
                return [.refuse(handle, "\(me) cannot store the write: \(reason)")]
            }
            let others = view.routing.others(of: replicas, forKey: key)
            return forward(id, candidates: others, failedHere: reason, view: view, now: now)
        }
    }

    private mutating func replicate(
        _ requester: Requester, key: [UInt8], version: Version, replicas: [HintedReplica], w: Int,
        trace: ReplicaTrace, traceId: String?, view: View, now: NodeMachine.Now
    ) -> [Step] {
        // With a sloppy quorum, a replica that fails is replaced by the next healthy node of
        // the preference list within this request (with a hint for it).
        let fallbacks =
            view.routing.sloppyQuorum
            ? view.routing.reachablePreference(forKey: key, excluding: Set(replicas.map(\.node))) : []
        let coordinator = PutCoordinator(
            key: key, object: VersionedObject(versions: [version]), replicas: replicas, coordinator: me,
            localStored: true, w: w, now: now.monotonicMs, timeoutMs: settings.quorum.requestTimeoutMs,
            fallbacks: fallbacks)
        let id = newID()
        puts[id] = PutRun(
            coordinator: coordinator, requester: requester, version: version, trace: trace, traceId: traceId)
        return runPut(id, now: now) { $0.start() }
    }

    private mutating func runPut(
        _ id: RunID, now: NodeMachine.Now, _ event: (inout PutCoordinator) -> [PutCoordinator.Action]
    ) -> [Step] {
        guard var run = puts[id] else { return [] }
        let actions = event(&run.coordinator)
        // Only the coordinator says when a run is over: it answers first (at the latest on
        // the tick after its deadline). Dropping a run once the deadline passed, before the
        // tick, lost the answer of a write whose last reply came in between: its client
        // waited for ever (found by an attack review; the simulator now checks every request
        // is answered).
        defer { puts[id] = run.coordinator.isFinished(now: now.monotonicMs) ? nil : run }
        return actions.map { action in
            switch action {
            case .send(let node, let request):
                let hintFor = run.coordinator.replicas.first { $0.node == node }?.hintFor
                run.trace.sent(to: node, hintFor: hintFor, nowUs: now.monotonicUs)
                return .replica(request, to: node, run: id, trace: run.traceId.map { TraceTag(id: $0, message: .put) })
            case .respond(let outcome):
                run.trace.replied(nowUs: now.monotonicUs)
                var result = WriteResult(
                    succeeded: outcome.succeeded, coordinator: me, acks: outcome.acks, required: outcome.required,
                    context: run.version.clock, dot: run.version.dot, asked: run.coordinator.replicas)
                result.trace = run.trace
                return .writeReply(run.requester, result)
            }
        }
    }

    /// Answers a write that was not coordinated (nothing stored, no acks) with why.
    private mutating func writeFailed(_ id: RunID, _ error: String, refusal: ObjectLimitRefusal? = nil) -> [Step] {
        guard let write = writes.removeValue(forKey: id) else { return [] }
        let result = WriteResult(
            succeeded: false, coordinator: me, acks: [], required: write.put.w ?? settings.quorum.w,
            context: .empty, error: error, refusal: refusal)
        return [.writeReply(write.requester, result)]
    }

    // MARK: Replies and time

    /// A replica's reply to a request of run `run`.
    public mutating func replied(run: RunID, from node: NodeName, _ reply: ReplicaReply, now: NodeMachine.Now)
        -> [Step]
    {
        var failure: String?
        if case .failed(let reason) = reply { failure = reason }
        if gets[run] != nil {
            gets[run]?.trace.answered(node, failure: failure, nowUs: now.monotonicUs)
            return runGet(run, now: now) { $0.receive(from: node, reply) }
        }
        if puts[run] != nil {
            puts[run]?.trace.answered(node, failure: failure, nowUs: now.monotonicUs)
            return runPut(run, now: now) { $0.receive(from: node, reply, now: now.monotonicMs) }
        }
        return []
    }

    /// A replica's answer over the network (nil: none in time) as the reply a run takes.
    public static func reply(_ response: PeerResponse?, from node: NodeName) -> ReplicaReply {
        switch response {
        case .replica(let value): value
        case .error(let reason): .failed(reason)
        case nil: .failed("no answer from \(node)")
        default: .failed("unexpected answer from \(node)")
        }
    }

    /// Deadlines: reads and writes answer (or give up repairing) when their time is up.
    public mutating func tick(now: NodeMachine.Now) -> [Step] {
        var steps: [Step] = []
        for id in gets.keys.sorted() { steps += runGet(id, now: now) { $0.tick(now: now.monotonicMs) } }
        for id in puts.keys.sorted() { steps += runPut(id, now: now) { $0.tick(now: now.monotonicMs) } }
        return steps
    }
}
