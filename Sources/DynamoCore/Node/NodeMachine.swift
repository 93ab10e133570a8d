/// One node's whole protocol as a pure state machine: membership and failure detection,
/// request coordination (forwarding, sloppy quorum, read repair), serving replica requests,
/// and hinted handoff.
///
/// It performs no I/O and reads no clock: every input carries the time, randomness comes
/// from a seeded generator, and everything it wants done comes back as `Action`s. The NIO
/// runtime executes those over TCP and RocksDB; the test simulator executes the very same
/// actions over an in-memory network with injected faults.
public struct NodeMachine: Sendable {
    public let settings: NodeSettings
    /// Keys recently seen near or over the object limits, and writes refused by them.
    public internal(set) var hotKeys = HotKeys()
    /// Counters of the dots this node makes start above this. Zero until the node learns it
    /// lost data (its store went back, or peers remember a later life of it): its new dots
    /// are then numbered from its clock in ms, above any it made before, since versions it
    /// made then may live on in other nodes' hints where no refill reaches.
    public private(set) var dotFloor: UInt64

    // The components, one per technique.
    public internal(set) var requests: RequestCoordination
    public internal(set) var gossip: Gossip
    public internal(set) var hints: HintDelivery
    public internal(set) var handoff: OwnershipHandoff
    public internal(set) var join: JoinTransfer
    public internal(set) var antiEntropy: AntiEntropy
    public internal(set) var reaper: TombstoneReaper
    /// Replica requests per peer and gossip rounds, counted for `/metrics`.
    public private(set) var traffic = PeerTraffic()
    /// Traced requests' steps at this node, and the traced work in flight.
    var traces = RequestTraces()
    var traced = TracedWork()

    var rng: SeededRandom
    private var nextID: UInt64 = 1
    private var outgoing: [PeerRequestID: (purpose: Outgoing, deadline: UInt64)] = [:]
    private var storageWaits: [StorageToken: StorageWait] = [:]

    /// What an answer from a peer is for.
    enum Outgoing {
        case replica(run: RunID, node: NodeName)
        /// A gossip SYN or ACK2, to a member or a seed known by its address.
        case gossip(target: NodeName?, address: String)
        case farewell(target: NodeName)
        case forward(write: RunID, target: NodeName)
        case hint(Hint)
        case handoff(key: [UInt8], node: NodeName)
        case pull(from: NodeName)
        case tree(range: KeyRange, peer: NodeName)
        case treeFetch(range: KeyRange, peer: NodeName, key: [UInt8])
    }

    /// What a storage result is for.
    enum StorageWait {
        case serve(handle: PeerHandle, isPut: Bool)
        case localReplica(run: RunID)
        case coordinate(write: RunID)
        case loadHints
        case removeHint(Hint)
        case sweep
        case handoffScan
        case handedOff
        case serveTransfer(handle: PeerHandle, requester: Member)
        case pulled(from: NodeName)
        case buildTree(range: KeyRange)
        case treeRepaired(range: KeyRange, peer: NodeName)
    }

    public init(settings: NodeSettings, seed: UInt64) {
        self.settings = settings
        let me = Member(
            name: settings.name, peerAddress: settings.peerAddress, httpAddress: settings.httpAddress,
            tokens: settings.tokens, status: settings.seeds.isEmpty && !settings.awaitPeers ? .up : .joining,
            generation: settings.generation)
        // (A known node that restarts is `joining` only until its first gossip exchange.)
        let membership = Membership(
            me: me, seeds: settings.seeds, gossipIntervalMs: settings.gossipIntervalMs, key: settings.clusterKey)
        self.requests = RequestCoordination(settings: settings)
        self.gossip = Gossip(
            membership: membership, intervalMs: settings.gossipIntervalMs, freshIdentity: settings.freshIdentity)
        self.hints = HintDelivery(intervalMs: settings.hintIntervalMs)
        self.handoff = OwnershipHandoff(intervalMs: settings.hintIntervalMs)
        self.join = JoinTransfer(gossipIntervalMs: settings.gossipIntervalMs, awaitPeers: settings.awaitPeers)
        self.antiEntropy = AntiEntropy(
            intervalMs: settings.antiEntropyIntervalMs, requestTimeoutMs: settings.quorum.requestTimeoutMs)
        self.reaper = TombstoneReaper(
            intervalMs: settings.tombstoneSweepIntervalMs, graceMs: settings.quorum.tombstoneGraceMs)
        self.rng = SeededRandom(seed: seed)
        self.dotFloor = settings.dotFloor
    }

    public var name: NodeName { settings.name }
    public var membership: Membership { gossip.membership }
    public var dropped: Set<NodeName> { gossip.dropped }
    /// How many requests and coordinations are in flight (for tests and status).
    public var inFlight: Int { outgoing.count + storageWaits.count + requests.running }

    // MARK: Input

    public mutating func handle(_ input: Input, now: Now) -> [Action] {
        let actions = dispatch(input, now: now)
        // Answers to traced clients and peers are recorded as they leave.
        if !traced.inbound.isEmpty || !traced.clients.isEmpty { traceActions(actions, now: now) }
        return actions
    }

    private mutating func dispatch(_ input: Input, now: Now) -> [Action] {
        switch input {
        case .clientGet(let id, let key, let r, let asked):
            let traceId = traceable(asked)
            if let traceId {
                traced.clients[id] = traceId
                trace(traceId, .request, detail: "get \(KeyText.short(key))" + (r.map { " R=\($0)" } ?? ""), now: now)
            }
            return startRead(client: id, key: key, r: r, trace: traceId, now: now)
        case .clientWrite(let id, let key, let value, let context, let w, let requestId, let traceId):
            var put = ForwardedPut(key: key, value: value, context: context, w: w, requestId: requestId)
            if let traceId = traceable(traceId) {
                traced.clients[id] = traceId
                put.trace = traceId
                let verb = value == nil ? "delete" : "put"
                trace(traceId, .request, detail: "\(verb) \(KeyText.short(key))" + (w.map { " W=\($0)" } ?? ""), now: now)
            }
            return run(requests.write(.client(id), put, view: coordinationView(now: now), now: now), now: now)
        case .peerRequest(let handle, let from, let request):
            return serve(handle: handle, from: from, request, now: now)
        case .peerResponse(let requestID, let response):
            return received(requestID: requestID, response, now: now)
        case .storageResult(let token, let result, let updates):
            antiEntropy.apply(updates)
            return stored(token: token, result, now: now)
        case .tick:
            return tick(now: now)
        case .leave:
            guard membership.local.status != .leaving, membership.local.status != .left else { return [] }
            gossip.membership.setLocalStatus(.leaving, now: now.monotonicMs)
            handoff.hurry()
            hints.hurry()
            return [.event(.leaving)]
        case .depart:
            return sendFarewell(gossip.depart(now: now.monotonicMs), now: now)
        case .setFaults(let drop):
            return gossip.setFaults(drop: drop).map(Action.event)
        }
    }

    /// A client request's trace id, if it can be traced here: valid, and not the id of a
    /// trace this node already keeps (a reused or guessed id would mix two requests in one
    /// diagram: the second goes untraced).
    private func traceable(_ id: String?) -> String? {
        guard let id, TraceTag.isValid(id: id), !traces.contains(id) else { return nil }
        return id
    }

    /// Whether this node left the cluster and told the others (see `Gossip.hasDeparted`).
    public var hasDeparted: Bool { gossip.hasDeparted }

    private mutating func sendFarewell(_ rounds: [Gossip.Round], now: Now) -> [Action] {
        rounds.flatMap { round -> [Action] in
            guard let target = round.target else { return [] }
            return send(
                round.request, to: target, purpose: .farewell(target: target),
                timeoutMs: settings.quorum.requestTimeoutMs, now: now)
        }
    }

    /// The event for a replica this node stores as a hint for `target` (none without one).
    func hintKept(_ key: [UInt8], for target: NodeName?) -> [Action] {
        target.map { [.event(.hintKept(key: key, target: $0))] } ?? []
    }

    /// The next number for something this machine starts (one counter for every kind).
    mutating func newID<Kind>() -> NodeID<Kind> {
        defer { nextID += 1 }
        return NodeID(nextID)
    }

    // MARK: Talking to peers

    /// Sends `request` to `node` (by name); a dropped or unknown peer simply never answers,
    /// and the deadline turns that into a failure.
    /// A traced request (`trace`) goes wrapped with its tag, and its answer is recorded.
    mutating func send(
        _ request: PeerRequest, to node: NodeName, purpose: Outgoing, timeoutMs: UInt64, now: Now, trace tag: TraceTag? = nil
    ) -> [Action] {
        let id: PeerRequestID = newID()
        outgoing[id] = (purpose, now.monotonicMs + timeoutMs)
        if case .replica = purpose { traffic.sent(to: node) }
        var request = request
        if let tag {
            traced.outgoing[id] = (tag, node)
            trace(tag.id, .send, peer: node, message: tag.message, now: now)
            request = .traced(tag, request)
        }
        guard !dropped.contains(node), let address = membership.member(node)?.peerAddress else { return [] }
        return [.send(requestID: id, toAddress: address, request)]
    }

    mutating func storage(_ op: StorageOp, wait: StorageWait) -> [Action] {
        let token: StorageToken = newID()
        storageWaits[token] = wait
        return [.storage(token: token, op)]
    }

    private mutating func noteAnswer(from node: NodeName, answered: Bool, now: Now) -> [Action] {
        gossip.noteAnswer(from: node, answered: answered, now: now.monotonicMs).map(Action.event)
    }

    private mutating func received(requestID: PeerRequestID, _ response: PeerResponse?, now: Now) -> [Action] {
        guard let (purpose, _) = outgoing.removeValue(forKey: requestID) else { return [] }
        let answered = response != nil
        if !traced.outgoing.isEmpty, let (tag, peer) = traced.outgoing.removeValue(forKey: requestID) {
            if let response {
                trace(tag.id, .reply, peer: peer, message: tag.message, detail: Self.describe(response), now: now)
            } else {
                trace(tag.id, .noReply, peer: peer, message: tag.message, now: now)
            }
        }
        switch purpose {
        case .replica(let run, let node):
            traffic.settled(from: node, answered: answered)
            let reply = RequestCoordination.reply(response, from: node)
            return noteAnswer(from: node, answered: answered, now: now)
                + self.run(requests.replied(run: run, from: node, reply, now: now), now: now)
        case .gossip(let target, let address):
            var actions: [Action] = []
            if case .gossipDelta(let rows, let wanted) = response {
                actions += receiveGossip(rows, now: now)
                // The ACK2, unless a fault cut the peer off meanwhile.
                if let rows = gossip.rows(for: wanted), !(target.map(dropped.contains) ?? false) {
                    actions += sendGossip(rows, to: address, target: target, now: now)
                }
            }
            if let target { actions += noteAnswer(from: target, answered: answered, now: now) }
            return actions
        case .farewell(let target):
            return sendFarewell(gossip.farewellAnswered(by: target, answered: answered), now: now)
        case .forward(let write, let target):
            return noteAnswer(from: target, answered: answered, now: now)
                + run(requests.forwardAnswered(write, response, view: coordinationView(now: now), now: now), now: now)
        case .pull(let node):
            // Whether the source was up before this answer (or its absence) counted.
            let up = membership.member(node)?.status == .up
            return noteAnswer(from: node, answered: answered, now: now)
                + pulled(from: node, response, sourceWasUp: up, now: now)
        case .tree(let range, let peer):
            return noteAnswer(from: peer, answered: answered, now: now)
                + run(antiEntropy.answered(range: range, peer: peer, response), now: now)
        case .treeFetch(let range, let peer, let key):
            return noteAnswer(from: peer, answered: answered, now: now)
                + fetched(key, range: range, peer: peer, response, now: now)
        case .handoff(let key, let node):
            return noteAnswer(from: node, answered: answered, now: now)
                + run(handoff.acked(key: key, by: node, stored: response == .replica(.stored), now: now.monotonicMs), now: now)
        case .hint(let hint):
            // A hint offered to a node seen as down (a stand-in) says nothing of the target.
            let actions = isReachable(hint.target, at: now.monotonicMs)
                ? noteAnswer(from: hint.target, answered: answered, now: now) : []
            return actions + run(hints.offered(hint, accepted: response == .replica(.stored)), now: now)
        }
    }

    // MARK: Timers

    private mutating func tick(now: Now) -> [Action] {
        var actions: [Action] = []
        let t = now.monotonicMs
        if traces.count > 0 { traces.prune(atMs: t) }
        // Requests whose deadline passed count as unanswered.
        for (id, entry) in outgoing.sorted(by: { $0.key < $1.key }) where entry.deadline <= t {
            actions += received(requestID: id, nil, now: now)
        }
        actions += run(requests.tick(now: now), now: now)
        let (rounds, events) = gossip.tick(now: t, rng: &rng)
        for round in rounds {
            traffic.gossipRoundStarted()
            actions += sendGossip(round.request, to: round.address, target: round.target, now: now)
        }
        actions += events.map(Action.event)
        // The view the components decide on this tick (none of them changes membership).
        let view = gossip
        if settings.sloppyQuorum {
            let me = name
            let steps = hints.tick(now: t) {
                // A leaving node must get rid of every hint, reachable target or not; hints
                // for a node that left go to the key's current home.
                let leaving = view.membership.local.status == .leaving
                return Set(
                    view.membership.members.values.filter {
                        $0.name != me
                            && (leaving || $0.status == .leaving || $0.status == .left || view.isReachable($0.name, at: t))
                    }.map(\.name))
            }
            actions += run(steps, now: now)
        }
        let exchange = antiEntropy.tick(now: now, isUp: membership.local.status == .up) { view.isReachable($0, at: t) }
        actions += run(exchange, now: now)
        if membership.local.status == .joining, settings.freshIdentity, membership.hasJoined {
            let joinView = JoinTransfer.View(
                now: t, upSources: membership.members.values.filter { $0.name != name && $0.status == .up }.map(\.name),
                memberCount: membership.current.count, lastChange: membership.lastChange,
                isUp: { [membership] in membership.member($0)?.status == .up })
            actions += run(join.advance(joinView), now: now)
        }
        if antiEntropy.ring != membership.routingRing { actions += refreshTrees(now: now) }
        if membership.local.status != .joining { actions += run(handoff.tick(now: t), now: now) }
        actions += run(reaper.tick(now: now), now: now)
        return actions
    }

    private mutating func refreshTrees(now: Now) -> [Action] {
        run(antiEntropy.refresh(ring: membership.routingRing, me: name, n: settings.quorum.n), now: now)
    }

    private mutating func sendGossip(_ request: PeerRequest, to address: String, target: NodeName?, now: Now)
        -> [Action]
    {
        let id: PeerRequestID = newID()
        outgoing[id] = (.gossip(target: target, address: address), now.monotonicMs + settings.quorum.requestTimeoutMs)
        return [.send(requestID: id, toAddress: address, request)]
    }

    mutating func receiveGossip(_ rows: [GossipRow], now: Now) -> [Action] {
        let heard = gossip.receive(rows, now: now.monotonicMs)
        var actions: [Action] = heard.refused.map { .event(.gossipRefused(peer: $0)) }
        if heard.outlivedEarlierSelf {
            // Its data dir is older than the cluster's memory of it (deleted, or restored
            // from a backup): dots it made since may live on elsewhere.
            dotFloor = max(dotFloor, now.wallMs)
            actions.append(.identityChanged(generation: membership.local.generation, dotFloor: dotFloor))
            actions.append(.event(.outlivedEarlierSelf(generation: membership.local.generation)))
        }
        if let learned = heard.learned {
            // Ownership may have moved: look for data to hand off right away, and do not
            // claim to be settled until a pass under the new ring says so.
            let wasClean = handoff.lastPass == .clean
            handoff.ringChanged()
            actions += refreshTrees(now: now)
            if wasClean { updateSettled() }
            if !learned.isEmpty { actions.append(.event(.learned(members: learned))) }
        }
        if heard.mayRejoin { actions.append(.event(gossip.rejoin(now: now.monotonicMs))) }
        return actions
    }

    // MARK: Storage results

    private mutating func stored(token: StorageToken, _ result: StorageResult, now: Now) -> [Action] {
        guard let wait = storageWaits.removeValue(forKey: token) else { return [] }
        if !traced.storage.isEmpty, let tag = traced.storage.removeValue(forKey: token) {
            let detail: String
            switch result {
            case .object(let object): detail = Self.describe(.object(object))
            case .failed(let reason): detail = "failed: \(reason)"
            case .refused(let refusal): detail = "refused: \(refusal.description)"
            default: detail = "stored"
            }
            trace(tag.id, .local, message: tag.message, detail: detail, now: now)
        }
        if case .removed(true) = result, case .serve = wait { reaper.forgot() }
        if case .removed(true) = result, case .localReplica = wait { reaper.forgot() }
        switch wait {
        case .serve(let handle, let isPut):
            return [.respond(handle: handle, .replica(Self.replicaReply(to: isPut ? .put : .get, result)))]
        case .serveTransfer(let handle, let requester):
            return [.respond(handle: handle, transfer(result, for: requester))]
        case .localReplica(let run):
            return self.run(requests.replied(run: run, from: name, Self.replicaReply(to: nil, result), now: now), now: now)
        case .coordinate(let write):
            return run(requests.stored(write, result, view: coordinationView(now: now), now: now), now: now)
        case .loadHints:
            return hintsLoaded(result, now: now)
        case .removeHint(let hint):
            return run(hints.removed(hint, result == .removed(true)), now: now)
        case .handoffScan:
            return handoffScanned(result, now: now)
        case .handedOff:
            return run(handoff.forgot(removed: result == .removed(true), now: now.monotonicMs), now: now)
        case .pulled(let source):
            var failure: String?
            if case .failed(let reason) = result { failure = reason }
            return run(join.stored(from: source, failure: failure), now: now)
        case .buildTree(let range):
            if case .keyHashes(let hashes, let seq) = result { antiEntropy.built(range, hashes: hashes, seq: seq) }
            return []
        case .treeRepaired(let range, let peer):
            return run(antiEntropy.repaired(range: range, peer: peer, stored: result == .stored), now: now)
        case .sweep:
            guard case .keys(let keys) = result else { return [] }
            return run(reaper.found(keys), now: now)
        }
    }


}
