/// Who is waiting for an answer: a client of this node's HTTP API, or a peer that sent a
/// request (identified by a handle the shell chose, so it can find the connection).
public enum Requester: Hashable, Sendable {
    case client(ClientRequestID)
    case peer(PeerHandle)
}

/// What a coordination answers: a client of this node gets it as a typed action, a peer
/// that forwarded a write as its response.
enum ClientReply: Hashable, Sendable {
    case read(GetCoordinator.Outcome)
    case write(WriteResult)
}

/// One node's whole protocol as a pure state machine: membership and failure detection,
/// request coordination (forwarding, sloppy quorum, read repair), serving replica requests,
/// and hinted handoff.
///
/// It performs no I/O and reads no clock: every input carries the time, randomness comes
/// from a seeded generator, and everything it wants done comes back as `Action`s. The NIO
/// runtime executes those over TCP and RocksDB; the test simulator executes the very same
/// actions over an in-memory network with injected faults.
public struct NodeMachine: Sendable {
    public enum Input: Hashable, Sendable {
        case clientGet(id: ClientRequestID, key: [UInt8], r: Int?)
        /// value nil: delete.
        case clientWrite(id: ClientRequestID, key: [UInt8], value: [UInt8]?, context: CausalHistory?, w: Int?)
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
        /// Leave the cluster: hand every range and hint to others (the shell exits when
        /// nothing is held any more).
        case leave
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

        public init(monotonicMs: UInt64, wallMs: UInt64) {
            self.monotonicMs = monotonicMs
            self.wallMs = wallMs
        }
    }

    public let settings: NodeSettings
    /// Keys recently seen near or over the object limits, and writes refused by them.
    public internal(set) var hotKeys = HotKeys()
    /// Counters of the dots this node makes start above this. Zero until the node learns it
    /// lost data (its store went back, or peers remember a later life of it): its new dots
    /// are then numbered from its clock in ms, above any it made before, since versions it
    /// made then may live on in other nodes' hints where no refill reaches.
    public private(set) var dotFloor: UInt64

    // The components, one per technique.
    public private(set) var gossip: Gossip
    public private(set) var hints: HintDelivery
    public private(set) var handoff: OwnershipHandoff
    public private(set) var join: JoinTransfer
    public private(set) var antiEntropy: AntiEntropy
    public private(set) var reaper: TombstoneReaper

    var rng: SeededRandom
    private var nextID: UInt64 = 1
    private var outgoing: [PeerRequestID: (purpose: Outgoing, deadline: UInt64)] = [:]
    private var storageWaits: [StorageToken: StorageWait] = [:]
    var gets: [RunID: GetRun] = [:]
    var puts: [RunID: PutRun] = [:]

    /// What an answer from a peer is for.
    enum Outgoing {
        case replica(run: RunID, node: NodeName)
        case gossip(target: NodeName?)
        /// `failedHere`: this node could not store the write itself, so when no candidate
        /// takes it the write fails instead of coming back here.
        case forward(
            requester: Requester, put: ForwardedPut, remaining: [NodeName], target: NodeName, failedHere: String?)
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
        case coordinate(requester: Requester, put: ForwardedPut, replicas: [HintedReplica])
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

    struct GetRun {
        var coordinator: GetCoordinator
        var client: ClientRequestID
    }

    struct PutRun {
        var coordinator: PutCoordinator
        var requester: Requester
        var version: Version
        var deadline: UInt64
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

    /// Client id of reads the node makes for itself (tombstone sweeps): no one gets a reply.
    static let internalClient = ClientRequestID(0)

    public var name: NodeName { settings.name }
    public var membership: Membership { gossip.membership }
    public var dropped: Set<NodeName> { gossip.dropped }
    public var hintsDelivered: [NodeName: Int] { hints.delivered }
    public var tombstonesReaped: Int { reaper.reaped }
    public var trees: [KeyRange: AntiEntropy.RangeTree] { antiEntropy.trees }
    public var exchanges: [String: AntiEntropy.ExchangeRecord] { antiEntropy.exchanges }
    public var exchangeCount: Int { antiEntropy.exchangeCount }
    public var keysRepairedByExchange: Int { antiEntropy.keysRepaired }

    public func isReachable(_ node: NodeName, at now: UInt64) -> Bool { gossip.isReachable(node, at: now) }
    public func status(of node: NodeName, at now: UInt64) -> MemberStatus? { gossip.status(of: node, at: now) }

    /// How many requests and coordinations are in flight (for tests and status).
    public var inFlight: Int { outgoing.count + storageWaits.count + gets.count + puts.count }

    // MARK: Input

    public mutating func handle(_ input: Input, now: Now) -> [Action] {
        switch input {
        case .clientGet(let id, let key, let r):
            return startRead(client: id, key: key, r: r, now: now)
        case .clientWrite(let id, let key, let value, let context, let w):
            return routeWrite(.client(id), ForwardedPut(key: key, value: value, context: context, w: w), now: now)
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
            guard membership.local.status != .leaving else { return [] }
            gossip.membership.setLocalStatus(.leaving, now: now.monotonicMs)
            handoff.hurry()
            hints.hurry()
            return [.event(.leaving)]
        case .setFaults(let drop):
            return gossip.setFaults(drop: drop).map(Action.event)
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
    mutating func send(_ request: PeerRequest, to node: NodeName, purpose: Outgoing, timeoutMs: UInt64, now: Now)
        -> [Action]
    {
        let id: PeerRequestID = newID()
        outgoing[id] = (purpose, now.monotonicMs + timeoutMs)
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
        switch purpose {
        case .replica(let run, let node):
            var actions = noteAnswer(from: node, answered: response != nil, now: now)
            let reply: ReplicaReply
            switch response {
            case .replica(let value): reply = value
            case .error(let reason): reply = .failed(reason)
            case nil: reply = .failed("no answer from \(node)")
            default: reply = .failed("unexpected answer from \(node)")
            }
            actions += replicaReplied(run: run, node: node, reply, now: now)
            return actions
        case .gossip(let target):
            var actions: [Action] = []
            if case .gossip(let members) = response { actions += receiveGossip(members, now: now) }
            if let target { actions += noteAnswer(from: target, answered: response != nil, now: now) }
            return actions
        case .forward(let requester, let put, let remaining, let target, let failedHere):
            var actions = noteAnswer(from: target, answered: response != nil, now: now)
            if case .coordinated(let result) = response {
                actions += answer(requester, .write(result))
            } else {
                actions += forward(requester, put, candidates: remaining, failedHere: failedHere, now: now)
            }
            return actions
        case .pull(let node):
            var batch: (entries: [KeyedObject], next: [UInt8]?)?
            if case .transfer(let entries, let next) = response { batch = (entries, next) }
            let up = membership.member(node)?.status == .up
            return noteAnswer(from: node, answered: response != nil, now: now)
                + run(join.received(from: node, batch, sourceIsUp: up, now: now.monotonicMs), now: now)
        case .tree(let range, let peer):
            return noteAnswer(from: peer, answered: response != nil, now: now)
                + run(antiEntropy.answered(range: range, peer: peer, response), now: now)
        case .treeFetch(let range, let peer, let key):
            var object: VersionedObject?
            if case .replica(.object(let found?)) = response { object = found }
            return noteAnswer(from: peer, answered: response != nil, now: now)
                + run(antiEntropy.fetched(key: key, range: range, peer: peer, object), now: now)
        case .handoff(let key, let node):
            var stored = false
            if case .replica(.stored) = response { stored = true }
            return noteAnswer(from: node, answered: response != nil, now: now)
                + run(handoff.acked(key: key, by: node, stored: stored, now: now.monotonicMs), now: now)
        case .hint(let hint):
            var actions: [Action] = []
            if isReachable(hint.target, at: now.monotonicMs) {
                actions += noteAnswer(from: hint.target, answered: response != nil, now: now)
            }
            var accepted = false
            if case .replica(.stored) = response { accepted = true }
            return actions + run(hints.offered(hint, accepted: accepted), now: now)
        }
    }

    /// Answers a write that was not coordinated (nothing stored, no acks) with why.
    func writeFailed(_ requester: Requester, _ put: ForwardedPut, _ error: String, refusal: ObjectLimitRefusal? = nil)
        -> [Action]
    {
        answer(
            requester,
            .write(
                WriteResult(
                    succeeded: false, coordinator: name, acks: [], required: put.w ?? settings.quorum.w,
                    context: .empty, error: error, refusal: refusal)))
    }

    func answer(_ requester: Requester, _ reply: ClientReply) -> [Action] {
        switch (requester, reply) {
        case (.client(let id), .read(let outcome)): [.readReply(client: id, outcome)]
        case (.client(let id), .write(let result)): [.writeReply(client: id, result)]
        case (.peer(let handle), .write(let result)): [.respond(handle: handle, .coordinated(result))]
        case (.peer(let handle), .read): [.respond(handle: handle, .error("reads are not forwarded"))]
        }
    }

    // MARK: Serving peers

    /// Why this node's own copy must not answer reads yet: it is new, or refilling after
    /// losing data, and has not pulled its ranges (its copy would say "not found" for keys
    /// the cluster holds). Writes it still takes: they are new data to keep.
    var refilling: String? {
        guard settings.freshIdentity, membership.local.status == .joining else { return nil }
        return "\(name) is still pulling its ranges (new, or refilling after losing data)"
    }

    private mutating func serve(handle: PeerHandle, from peer: NodeName, _ request: PeerRequest, now: Now) -> [Action] {
        // A cut-off peer's requests vanish, as if the network lost them.
        if dropped.contains(peer) { return [.ignore(handle: handle)] }
        switch request {
        case .replica(.get(let key)):
            if let refilling { return [.respond(handle: handle, .replica(.failed(refilling)))] }
            return storage(.read(key: key), wait: .serve(handle: handle, isPut: false))
        case .replica(.reap(let key, let object)):
            return storage(.forget(key: key, ifStill: object), wait: .serve(handle: handle, isPut: true))
        case .replica(.put(let key, let object, let hintFor)):
            let target = hintFor == name ? nil : hintFor
            // Hints are always synced: the holder is the only copy for the node it stands in
            // for. So is a copy handed over to this node as its home (`hintFor` this node: a
            // delivered hint, an ownership handoff): the sender deletes its own once this
            // answers, so an unsynced copy here would turn a durable write into one a power
            // loss can take (found by the simulator: a delivered hint lost with the target's
            // unsynced log tail).
            let sync = hintFor != nil || settings.durability.syncsReplicaWrites
            return hintKept(key, for: target)
                + storage(
                    .merge(key: key, object: object, hintFor: target, sync: sync),
                    wait: .serve(handle: handle, isPut: true))
        case .gossip(let members):
            let actions = receiveGossip(members, now: now)
            return actions + [.respond(handle: handle, .gossip(gossip.announced(membership.table)))]
        case .treeChildren, .treeSegments:
            return [.respond(handle: handle, antiEntropy.serve(request))]
        case .pull(let requester, let after):
            // Only a node asks for its own ranges, with a row a holder of the secret made.
            guard requester.name == peer, settings.clusterKey?.admits(requester) ?? true else {
                return [
                    .respond(handle: handle, .error("a pull names its sender, in a row signed with the cluster secret"))
                ]
            }
            return storage(
                .scanOwn(after: after, limit: OwnershipHandoff.batch),
                wait: .serveTransfer(handle: handle, requester: requester))
        case .coordinatePut(let put):
            // A forwarded write is coordinated here, never forwarded again, so differing
            // views of the cluster cannot bounce it around.
            return coordinateHere(.peer(handle), put, now: now)
        }
    }

    // MARK: Timers

    private mutating func tick(now: Now) -> [Action] {
        var actions: [Action] = []
        let t = now.monotonicMs
        // Requests whose deadline passed count as unanswered.
        for (id, entry) in outgoing.sorted(by: { $0.key < $1.key }) where entry.deadline <= t {
            actions += received(requestID: id, nil, now: now)
        }
        for id in gets.keys.sorted() {
            actions += runGet(id, now: now) { $0.tick(now: t) }
        }
        for id in puts.keys.sorted() {
            actions += runPut(id, now: now) { $0.tick(now: t) }
        }
        let (rounds, events) = gossip.tick(now: t, rng: &rng)
        for round in rounds {
            let id: PeerRequestID = newID()
            outgoing[id] = (.gossip(target: round.target), t + settings.quorum.requestTimeoutMs)
            actions.append(.send(requestID: id, toAddress: round.address, .gossip(round.members)))
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
                        $0.name != me && (leaving || $0.status == .leaving || view.isReachable($0.name, at: t))
                    }.map(\.name))
            }
            actions += run(steps, now: now)
        }
        let exchange = antiEntropy.tick(now: now, isUp: membership.local.status == .up) { view.isReachable($0, at: t) }
        actions += run(exchange, now: now)
        if membership.local.status == .joining, settings.freshIdentity, membership.hasJoined {
            let joinView = JoinTransfer.View(
                now: t, upSources: membership.members.values.filter { $0.name != name && $0.status == .up }.map(\.name),
                memberCount: membership.members.count, lastChange: membership.lastChange,
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

    private mutating func receiveGossip(_ members: [Member], now: Now) -> [Action] {
        let heard = gossip.receive(members, now: now.monotonicMs)
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
            let wasClean = handoff.lastPassClean == true
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
        if case .removed(true) = result, case .serve = wait { reaper.forgot() }
        if case .removed(true) = result, case .localReplica = wait { reaper.forgot() }
        switch wait {
        case .serve(let handle, let isPut):
            switch result {
            case .object(let object) where !isPut: return [.respond(handle: handle, .replica(.object(object)))]
            case .stored where isPut, .removed where isPut: return [.respond(handle: handle, .replica(.stored))]
            case .failed(let reason): return [.respond(handle: handle, .replica(.failed(reason)))]
            case .refused(let refusal): return [.respond(handle: handle, .replica(.failed(refusal.description)))]
            default: return [.respond(handle: handle, .replica(.failed("unexpected storage result")))]
            }
        case .localReplica(let run):
            let reply: ReplicaReply
            switch result {
            case .object(let object): reply = .object(object)
            case .stored, .removed: reply = .stored
            case .failed(let reason): reply = .failed(reason)
            case .refused(let refusal): reply = .failed(refusal.description)
            default: reply = .failed("unexpected storage result")
            }
            return replicaReplied(run: run, node: name, reply, now: now)
        case .coordinate(let requester, let put, let replicas):
            return coordinated(requester, put, replicas: replicas, result, now: now)
        case .loadHints:
            guard case .hints(let loaded, let total) = result else {
                hints.loadFailed()
                return []
            }
            let steps = hints.loaded(loaded.map { ($0, destination(of: $0, now: now)) }, total: total)
            updateSettled()
            return run(steps, now: now)
        case .removeHint(let hint):
            var removed = false
            if case .removed(true) = result { removed = true }
            return run(hints.removed(hint, removed), now: now)
        case .handoffScan:
            var entries: [KeyedObject]?
            if case .entries(let scanned) = result { entries = scanned }
            let t = now.monotonicMs
            let passes = handoff.passesCompleted
            let view = gossip
            let n = settings.quorum.n
            let steps = handoff.scanned(
                entries, me: name, home: { view.membership.routingRing.preferenceList(forKey: $0).home(n) },
                reachable: { view.isReachable($0, at: t) }, now: t)
            if handoff.passesCompleted != passes { updateSettled() }
            return run(steps, now: now)
        case .handedOff:
            var removed = false
            if case .removed(true) = result { removed = true }
            return run(handoff.forgot(removed: removed, now: now.monotonicMs), now: now)
        case .serveTransfer(let handle, let requester):
            guard case .entries(let entries) = result else {
                return [.respond(handle: handle, .error("cannot scan for a transfer"))]
            }
            let (selected, next) = JoinTransfer.transfer(
                entries, scanLimit: OwnershipHandoff.batch, for: requester, on: membership.ring, n: settings.quorum.n)
            return [.respond(handle: handle, .transfer(entries: selected, next: next))]
        case .pulled(let source):
            var failure: String?
            if case .failed(let reason) = result { failure = reason }
            return run(join.stored(from: source, failure: failure), now: now)
        case .buildTree(let range):
            if case .keyHashes(let hashes, let seq) = result { antiEntropy.built(range, hashes: hashes, seq: seq) }
            return []
        case .treeRepaired(let range, let peer):
            var stored = false
            if case .stored = result { stored = true }
            return run(antiEntropy.repaired(range: range, peer: peer, stored: stored), now: now)
        case .sweep:
            guard case .keys(let keys) = result else { return [] }
            return run(reaper.found(keys), now: now)
        }
    }

    /// Where a loaded hint goes this round (nil: nowhere reachable).
    private func destination(of hint: Hint, now: Now) -> HintDelivery.Destination? {
        let t = now.monotonicMs
        let targetLeft = membership.member(hint.target)?.status == .leaving && !isReachable(hint.target, at: t)
        if targetLeft, let home = standIn(for: hint, now: now) {
            // The intended node left the cluster: its ranges belong to others now. Handed
            // over (`hintFor` the receiver itself): stored synced, as the hint it replaces
            // was, since the hint is deleted once it is taken.
            return .init(node: home, hintFor: home)
        }
        if isReachable(hint.target, at: t) { return .init(node: hint.target, hintFor: hint.target) }
        // Leaving with the target still away: another node keeps the hint for it.
        return standIn(for: hint, now: now).map { .init(node: $0, hintFor: hint.target) }
    }

    // MARK: Settledness (safe tombstone reaping)

    /// Whether tombstones may be reaped now (see `TombstoneReaper.clusterSettled`).
    func clusterSettled(now: Now) -> Bool {
        TombstoneReaper.clusterSettled(membership.members.values) { isReachable($0, at: now.monotonicMs) }
    }

    private mutating func updateSettled() {
        gossip.membership.setLocalSettled(
            TombstoneReaper.isSettled(
                hintsHeld: hints.held, lastPassClean: handoff.lastPassClean,
                joining: membership.local.status == .joining))
    }

    // MARK: Carrying out the components' steps

    private mutating func run(_ steps: [HintDelivery.Step], now: Now) -> [Action] {
        var actions: [Action] = []
        for step in steps {
            switch step {
            case .load(let limit, let targets):
                actions += storage(.loadHints(limit: limit, targets: targets), wait: .loadHints)
            case .offer(let hint, let node, let hintFor):
                actions += send(
                    .replica(.put(key: hint.key, object: hint.object, hintFor: hintFor)), to: node,
                    purpose: .hint(hint), timeoutMs: settings.quorum.requestTimeoutMs, now: now)
            case .remove(let hint):
                actions += storage(.removeHint(hint), wait: .removeHint(hint))
            case .event(let event):
                actions.append(.event(event))
            }
        }
        return actions
    }

    private mutating func run(_ steps: [OwnershipHandoff.Step], now: Now) -> [Action] {
        var actions: [Action] = []
        for step in steps {
            switch step {
            case .scan(let after, let limit):
                actions += storage(.scanOwn(after: after, limit: limit), wait: .handoffScan)
            case .send(let key, let object, let node):
                actions += send(
                    .replica(.put(key: key, object: object, hintFor: node)), to: node,
                    purpose: .handoff(key: key, node: node), timeoutMs: settings.quorum.requestTimeoutMs, now: now)
            case .forget(let key, let object):
                actions += storage(.forget(key: key, ifStill: object), wait: .handedOff)
            case .event(let event):
                actions.append(.event(event))
            }
        }
        return actions
    }

    private mutating func run(_ steps: [JoinTransfer.Step], now: Now) -> [Action] {
        var actions: [Action] = []
        for step in steps {
            switch step {
            case .pull(let source, let after):
                actions += send(
                    .pull(requester: membership.local, after: after), to: source, purpose: .pull(from: source),
                    timeoutMs: settings.quorum.requestTimeoutMs * 2, now: now)
            case .store(let entry, let source):
                actions += storage(
                    .merge(key: entry.key, object: entry.object, hintFor: nil, sync: false),
                    wait: .pulled(from: source))
            case .joined:
                gossip.membership.setLocalStatus(.up, now: now.monotonicMs)
                actions.append(.joined(dotFloor: dotFloor))
            case .event(let event):
                actions.append(.event(event))
            }
        }
        return actions
    }

    private mutating func run(_ steps: [AntiEntropy.Step], now: Now) -> [Action] {
        var actions: [Action] = []
        for step in steps {
            switch step {
            case .build(let range):
                actions += storage(.rangeHashes(start: range.start, end: range.end), wait: .buildTree(range: range))
            case .ask(let request, let peer, let range):
                actions += send(
                    request, to: peer, purpose: .tree(range: range, peer: peer),
                    timeoutMs: settings.quorum.requestTimeoutMs, now: now)
            case .fetch(let key, let peer, let range):
                actions += send(
                    .replica(.get(key: key)), to: peer, purpose: .treeFetch(range: range, peer: peer, key: key),
                    timeoutMs: settings.quorum.requestTimeoutMs, now: now)
            case .repair(let key, let object, let range, let peer):
                actions += storage(
                    .merge(key: key, object: object, hintFor: nil, sync: settings.durability.syncsReplicaWrites),
                    wait: .treeRepaired(range: range, peer: peer))
            case .event(let event):
                actions.append(.event(event))
            }
        }
        return actions
    }

    private mutating func run(_ steps: [TombstoneReaper.Step], now: Now) -> [Action] {
        var actions: [Action] = []
        for step in steps {
            switch step {
            case .find(let before, let limit):
                actions += storage(.findTombstones(before: before, limit: limit), wait: .sweep)
            case .read(let key):
                actions += startRead(client: Self.internalClient, key: key, r: settings.quorum.n, now: now)
            }
        }
        return actions
    }
}
