/// Settings the node protocol needs (a subset of the `dynamo-node` flags).
public struct NodeSettings: Sendable, Hashable {
    public var name: NodeName
    public var peerAddress: String
    public var httpAddress: String
    public var tokens: [RingPosition]
    public var generation: UInt64
    public var seeds: [String]
    public var quorum: QuorumConfig
    public var clocks: ClockPolicy
    public var gossipIntervalMs: UInt64
    public var hintIntervalMs: UInt64
    /// How often a node looks for old tombstones it holds, to reap them.
    public var tombstoneSweepIntervalMs: UInt64
    /// Each range's Merkle tree is compared with a replica about once per this interval.
    public var antiEntropyIntervalMs: UInt64
    /// Read repair and hinted handoff can be switched off (to show anti-entropy alone).
    public var readRepair: Bool
    public var hintedHandoff: Bool
    /// The data dir had no identity: this node is new (or lost its disk) and must pull the
    /// data of the ranges it will own before it takes requests (`joining` until then).
    public var freshIdentity: Bool
    /// fsync the coordinator's own replica write / every replica write.
    public var syncCoordinatorWrites: Bool
    public var syncReplicaWrites: Bool
    /// The cluster secret: member rows are signed with it and only verified rows are taken
    /// from gossip. nil in a development cluster on loopback (nothing is checked).
    public var clusterKey: ClusterKey?
    /// Counters of dots this node makes start above this (see `NodeMachine.dotFloor`).
    public var dotFloor: UInt64
    /// The node lost its data and has no seeds to ask: rather than come up empty at once,
    /// it stays `joining` until a member that knows it gets in touch (then pulls its ranges
    /// from the cluster), or, if none does within 10 gossip intervals, it is alone.
    public var awaitPeers: Bool
    /// What one key may hold; writes past it are refused, keys near it reported.
    public var objectLimits: ObjectLimits

    public init(
        name: NodeName, peerAddress: String, httpAddress: String, tokens: [RingPosition], generation: UInt64 = 1,
        seeds: [String] = [], quorum: QuorumConfig = QuorumConfig(), clocks: ClockPolicy = ClockPolicy(),
        gossipIntervalMs: UInt64 = 1000, hintIntervalMs: UInt64 = 1000, tombstoneSweepIntervalMs: UInt64 = 10_000,
        syncCoordinatorWrites: Bool = true, syncReplicaWrites: Bool = false, freshIdentity: Bool = false,
        antiEntropyIntervalMs: UInt64 = 10_000, readRepair: Bool = true, hintedHandoff: Bool = true,
        clusterKey: ClusterKey? = nil, dotFloor: UInt64 = 0, objectLimits: ObjectLimits = ObjectLimits(),
        awaitPeers: Bool = false
    ) {
        self.awaitPeers = awaitPeers
        self.objectLimits = objectLimits
        self.dotFloor = dotFloor
        self.clusterKey = clusterKey
        self.antiEntropyIntervalMs = antiEntropyIntervalMs
        self.readRepair = readRepair
        self.hintedHandoff = hintedHandoff
        self.freshIdentity = freshIdentity
        self.tombstoneSweepIntervalMs = tombstoneSweepIntervalMs
        self.name = name
        self.peerAddress = peerAddress
        self.httpAddress = httpAddress
        self.tokens = tokens
        self.generation = generation
        self.seeds = seeds
        self.quorum = quorum
        self.clocks = clocks
        self.gossipIntervalMs = gossipIntervalMs
        self.hintIntervalMs = hintIntervalMs
        self.syncCoordinatorWrites = syncCoordinatorWrites
        self.syncReplicaWrites = syncReplicaWrites
    }
}

/// Who is waiting for an answer: a client of this node's HTTP API, or a peer that sent a
/// request (identified by a handle the shell chose, so it can find the connection).
public enum Requester: Hashable, Sendable {
    case client(UInt64)
    case peer(UInt64)
}

/// What a client of the node gets back.
public enum ClientReply: Hashable, Sendable {
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
        case clientGet(id: UInt64, key: [UInt8], r: Int?)
        /// value nil: delete.
        case clientWrite(id: UInt64, key: [UInt8], value: [UInt8]?, context: CausalHistory?, w: Int?)
        case peerRequest(handle: UInt64, from: NodeName, PeerRequest)
        /// nil: the request failed or its connection broke.
        case peerResponse(requestID: UInt64, PeerResponse?)
        case storageResult(token: UInt64, StorageResult)
        /// Time passed: run due timers (gossip, hints, deadlines).
        case tick
        /// Drop all traffic with these nodes (fault injection).
        case setFaults(drop: Set<NodeName>)
        /// Leave the cluster: hand every range and hint to others (the shell exits when
        /// nothing is held any more).
        case leave
        /// Own data changed (taken from the store after storage operations).
        case treeUpdates([TreeUpdate])
    }

    public enum Action: Hashable, Sendable {
        /// Send a request to the peer at `address`; its answer comes back as `.peerResponse`.
        case send(requestID: UInt64, toAddress: String, PeerRequest)
        /// Answer a peer's request.
        case respond(handle: UInt64, PeerResponse)
        case storage(token: UInt64, StorageOp)
        case reply(client: UInt64, ClientReply)
        /// A peer request that gets no answer (its sender is cut off): forget its handle.
        case ignore(handle: UInt64)
        /// A new node has all the data of its ranges: persist that, so a restart does not
        /// join again (until then, a restart resumes the join), and its dot floor.
        case joined(dotFloor: UInt64)
        /// The node took a new generation and dot floor (the cluster remembered a later life
        /// of it): persist them, so a restart starts above them.
        case identityChanged(generation: UInt64, dotFloor: UInt64)
        /// Something a person watching would want to know (failures seen, hints delivered...).
        case event(String)
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
    public private(set) var membership: Membership
    public private(set) var dropped: Set<NodeName> = []
    public private(set) var hintsDelivered: [NodeName: Int] = [:]
    /// Tombstones this node forgot because every home replica had them.
    public private(set) var tombstonesReaped = 0
    /// Keys recently seen near or over the object limits, and writes refused by them.
    public private(set) var hotKeys = HotKeys()
    private var rng: SeededRandom

    private enum Outgoing {
        case replica(run: UInt64, node: NodeName)
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

    private enum StorageWait {
        case serve(handle: UInt64, isPut: Bool)
        case localReplica(run: UInt64)
        case coordinate(requester: Requester, put: ForwardedPut, replicas: [HintedReplica])
        case loadHints
        case removeHint(Hint)
        case sweep
        case handoffScan(full: Bool)
        case handedOff
        case serveTransfer(handle: UInt64, requester: Member)
        case pulled(from: NodeName)
        case buildTree(range: KeyRange)
        case treeRepaired(range: KeyRange, peer: NodeName)
    }

    private struct GetRun {
        var coordinator: GetCoordinator
        var client: UInt64
    }

    private struct PutRun {
        var coordinator: PutCoordinator
        var requester: Requester
        var version: Version
        var deadline: UInt64
    }

    private var nextID: UInt64 = 1
    private var outgoing: [UInt64: (purpose: Outgoing, deadline: UInt64)] = [:]
    private var storageWaits: [UInt64: StorageWait] = [:]
    private var gets: [UInt64: GetRun] = [:]
    private var puts: [UInt64: PutRun] = [:]
    private var nextGossipAt: UInt64 = 0
    /// Each member's status as last reported in an event, so changes are told once.
    private var observed: [NodeName: MemberStatus] = [:]
    private var nextHintsAt: UInt64
    private var nextSweepAt: UInt64
    private var deliveringHints = false
    /// Members whose forged rows were refused (each reported once).
    private var refusedMembers: Set<NodeName> = []

    /// Hints loaded per handoff round.
    public static let hintBatch = 64

    public init(settings: NodeSettings, seed: UInt64) {
        self.settings = settings
        let me = Member(
            name: settings.name, peerAddress: settings.peerAddress, httpAddress: settings.httpAddress,
            tokens: settings.tokens, status: settings.seeds.isEmpty && !settings.awaitPeers ? .up : .joining,
            generation: settings.generation)
        // (A known node that restarts is `joining` only until its first gossip exchange.)
        self.membership = Membership(
            me: me, seeds: settings.seeds, gossipIntervalMs: settings.gossipIntervalMs, key: settings.clusterKey)
        self.rng = SeededRandom(seed: seed)
        self.nextHintsAt = settings.hintIntervalMs
        self.nextSweepAt = settings.tombstoneSweepIntervalMs
        self.dotFloor = settings.dotFloor
    }

    /// Counters of the dots this node makes start above this. Zero until the node learns it
    /// lost data (its store went back, or peers remember a later life of it): its new dots
    /// are then numbered from its clock in ms, above any it made before, since versions it
    /// made then may live on in other nodes' hints where no refill reaches.
    public private(set) var dotFloor: UInt64

    /// Client id of reads the node makes for itself (tombstone sweeps): no one gets a reply.
    static let internalClient: UInt64 = 0

    public var name: NodeName { settings.name }

    /// Whether requests may go to `node` now: itself, or a member the failure detector does
    /// not suspect and no injected fault cuts off.
    public func isReachable(_ node: NodeName, at now: UInt64) -> Bool {
        node == name || (membership.isAvailable(node, at: now) && !dropped.contains(node))
    }

    /// The member's status as this node sees it (`down` when cut off by a fault too).
    public func status(of node: NodeName, at now: UInt64) -> MemberStatus? {
        if node != name, dropped.contains(node), membership.member(node) != nil { return .down }
        return membership.status(of: node, at: now)
    }

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
        case .storageResult(let token, let result):
            return stored(token: token, result, now: now)
        case .tick:
            return tick(now: now)
        case .treeUpdates(let updates):
            applyTreeUpdates(updates)
            return []
        case .leave:
            guard membership.local.status != .leaving else { return [] }
            membership.setLocalStatus(.leaving, now: now.monotonicMs)
            nextHandoffAt = 0
            nextHintsAt = 0
            return [.event("\(name) is leaving: handing its ranges and hints to other nodes")]
        case .setFaults(let drop):
            let previous = dropped
            dropped = drop.subtracting([name])
            guard dropped != previous else { return [] }
            return [
                .event(
                    dropped.isEmpty
                        ? "\(name) heals: talking to everyone"
                        : "\(name) drops all traffic with \(dropped.sorted().joined(separator: ","))")
            ]
        }
    }

    /// A key as event text: printable UTF-8 up to 24 characters, else a hex prefix.
    public static func describe(_ key: [UInt8]) -> String {
        if let text = String(validating: key, as: UTF8.self),
            text.unicodeScalars.allSatisfy({ $0.value >= 0x21 && $0.value != 0x7f })
        {
            return text.count <= 24 ? text : text.prefix(23) + "…"
        }
        return "0x" + RingPosition.hex(key.prefix(8)) + (key.count > 8 ? "…" : "")
    }

    /// The event for a replica this node stores as a hint for `target` (none without one).
    private func hintKept(_ key: [UInt8], for target: NodeName?) -> [Action] {
        target.map { [.event("\(name) keeps a hint of \(Self.describe(key)) for \($0)")] } ?? []
    }

    private mutating func newID() -> UInt64 {
        defer { nextID += 1 }
        return nextID
    }

    // MARK: Talking to peers

    /// Sends `request` to `node` (by name); a dropped or unknown peer simply never answers,
    /// and the deadline turns that into a failure.
    private mutating func send(
        _ request: PeerRequest, to node: NodeName, purpose: Outgoing, timeoutMs: UInt64, now: Now
    )
        -> [Action]
    {
        let id = newID()
        outgoing[id] = (purpose, now.monotonicMs + timeoutMs)
        guard !dropped.contains(node), let address = membership.member(node)?.peerAddress else { return [] }
        return [.send(requestID: id, toAddress: address, request)]
    }

    /// Records whether `node` answered this node, and says so when that changes its view.
    private mutating func noteAnswer(from node: NodeName, answered: Bool, now: Now) -> [Action] {
        guard node != name, membership.member(node) != nil else { return [] }
        let before = membership.isAvailable(node, at: now.monotonicMs)
        if answered {
            membership.requestSucceeded(to: node)
        } else {
            membership.requestFailed(to: node, at: now.monotonicMs)
        }
        let after = membership.isAvailable(node, at: now.monotonicMs)
        guard before != after else { return [] }
        return [.event(after ? "\(name) reaches \(node) again" : "\(name) cannot reach \(node); routing around it")]
    }

    private mutating func received(requestID: UInt64, _ response: PeerResponse?, now: Now) -> [Action] {
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
            var actions = noteAnswer(from: node, answered: response != nil, now: now)
            actions += pulledBatch(from: node, response, now: now)
            return actions
        case .tree(let range, let peer):
            return noteAnswer(from: peer, answered: response != nil, now: now)
                + exchangeStep(range: range, peer: peer, response, now: now)
        case .treeFetch(let range, let peer, let key):
            var actions = noteAnswer(from: peer, answered: response != nil, now: now)
            if case .replica(.object(let object?)) = response {
                actions += storage(
                    .merge(key: key, object: object, hintFor: nil, sync: settings.syncReplicaWrites),
                    wait: .treeRepaired(range: range, peer: peer))
            } else {
                actions += repairDone(range: range, peer: peer, repaired: false, now: now)
            }
            return actions
        case .handoff(let key, let node):
            var actions = noteAnswer(from: node, answered: response != nil, now: now)
            if case .replica(.stored) = response {
                actions += handoffAcked(key: key, by: node, now: now)
            } else {
                handoffs[key]?.failed = true
                actions += handoffAcked(key: key, by: node, now: now)
            }
            return actions
        case .hint(let hint):
            var actions: [Action] = []
            if isReachable(hint.target, at: now.monotonicMs) {
                actions += noteAnswer(from: hint.target, answered: response != nil, now: now)
            }
            if case .replica(.stored) = response {
                actions += storage(.removeHint(hint), wait: .removeHint(hint))
            } else {
                actions += hintRoundFinished()
            }
            return actions
        }
    }

    private mutating func storage(_ op: StorageOp, wait: StorageWait) -> [Action] {
        let token = newID()
        storageWaits[token] = wait
        return [.storage(token: token, op)]
    }

    /// Answers a write that was not coordinated (nothing stored, no acks) with why.
    private func writeFailed(
        _ requester: Requester, _ put: ForwardedPut, _ error: String, refusal: ObjectLimitRefusal? = nil
    ) -> [Action] {
        answer(
            requester,
            .write(
                WriteResult(
                    succeeded: false, coordinator: name, acks: [], required: put.w ?? settings.quorum.w,
                    context: .empty, error: error, refusal: refusal)))
    }

    private func answer(_ requester: Requester, _ reply: ClientReply) -> [Action] {
        switch (requester, reply) {
        case (.client(let id), _): [.reply(client: id, reply)]
        case (.peer(let handle), .write(let result)): [.respond(handle: handle, .coordinated(result))]
        case (.peer(let handle), .read): [.respond(handle: handle, .error("reads are not forwarded"))]
        }
    }

    // MARK: Serving peers

    /// Why this node's own copy must not answer reads yet: it is new, or refilling after
    /// losing data, and has not pulled its ranges (its copy would say "not found" for keys
    /// the cluster holds). Writes it still takes: they are new data to keep.
    private var refilling: String? {
        guard settings.freshIdentity, membership.local.status == .joining else { return nil }
        return "\(name) is still pulling its ranges (new, or refilling after losing data)"
    }

    private mutating func serve(handle: UInt64, from peer: NodeName, _ request: PeerRequest, now: Now) -> [Action] {
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
            let sync = hintFor != nil || settings.syncReplicaWrites
            return hintKept(key, for: target)
                + storage(
                    .merge(key: key, object: object, hintFor: target, sync: sync),
                    wait: .serve(handle: handle, isPut: true))
        case .gossip(let members):
            let actions = receiveGossip(members, now: now)
            return actions + [.respond(handle: handle, .gossip(announced(membership.table)))]
        case .treeChildren(let range, let nodes):
            guard let tree = trees[range], tree.built else {
                return [.respond(handle: handle, .error("no tree for range \(range)"))]
            }
            return [
                .respond(handle: handle, .treeHashes(nodes.map { tree.tree.children(level: $0.level, id: $0.id) }))
            ]
        case .treeSegments(let range, let segments):
            guard let tree = trees[range], tree.built else {
                return [.respond(handle: handle, .error("no tree for range \(range)"))]
            }
            return [.respond(handle: handle, .treeKeys(segments.flatMap { tree.tree.entries(inSegment: $0) }))]
        case .pull(let requester, let after):
            // Only a node asks for its own ranges, with a row a holder of the secret made.
            guard requester.name == peer, settings.clusterKey?.admits(requester) ?? true else {
                return [
                    .respond(handle: handle, .error("a pull names its sender, in a row signed with the cluster secret"))
                ]
            }
            return storage(
                .scanOwn(after: after, limit: Self.handoffBatch),
                wait: .serveTransfer(handle: handle, requester: requester))
        case .coordinatePut(let put):
            // A forwarded write is coordinated here, never forwarded again, so differing
            // views of the cluster cannot bounce it around.
            return coordinateHere(.peer(handle), put, now: now)
        }
    }

    // MARK: Gossip and failure detection

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
        if t >= nextGossipAt {
            nextGossipAt = t + settings.gossipIntervalMs
            actions += gossipRound(now: now)
            actions += noticeStatusChanges(now: now)
        }
        if t >= nextHintsAt, settings.hintedHandoff {
            nextHintsAt = t + settings.hintIntervalMs
            actions += startHintRound(now: now)
        }
        if t >= nextExchangeAt {
            actions += startExchange(now: now)
        }
        actions += advanceJoin(now: now)
        if treeRing != membership.routingRing { actions += refreshTrees() }
        if t >= nextHandoffAt, !handingOff, membership.local.status != .joining {
            handingOff = true
            actions += storage(
                .scanOwn(after: handoffCursor, limit: Self.handoffBatch), wait: .handoffScan(full: false))
        }
        if t >= nextSweepAt {
            nextSweepAt = t + settings.tombstoneSweepIntervalMs
            let grace = settings.quorum.tombstoneGraceMs
            let before = now.wallMs > grace ? now.wallMs - grace : 0
            actions += storage(.findTombstones(before: before, limit: 32), wait: .sweep)
        }
        return actions
    }

    private mutating func gossipRound(now: Now) -> [Action] {
        var actions: [Action] = []
        for case .gossip(let address, let members) in membership.tick(now: now.monotonicMs, rng: &rng) {
            let target = membership.member(atAddress: address)?.name
            if let target, dropped.contains(target) { continue }
            let id = newID()
            outgoing[id] = (.gossip(target: target), now.monotonicMs + settings.quorum.requestTimeoutMs)
            actions.append(.send(requestID: id, toAddress: address, .gossip(announced(members))))
        }
        return actions
    }

    /// The table as told to peers. A known node that restarts (not a fresh identity) is
    /// `joining` for itself only until its first gossip exchange, but it never left the
    /// ring: it tells the others it is `up`, so they do not route its ranges elsewhere for
    /// that moment (and move data back and forth).
    private func announced(_ members: [Member]) -> [Member] {
        guard membership.local.status == .joining, !settings.freshIdentity else { return members }
        return members.map { member in
            var member = member
            if member.name == name { member.status = .up }
            return member
        }
    }

    /// Events for members whose status, as this node sees it, changed since last told.
    private mutating func noticeStatusChanges(now: Now) -> [Action] {
        var actions: [Action] = []
        for member in membership.table where member.name != name {
            guard let status = status(of: member.name, at: now.monotonicMs) else { continue }
            let before = observed.updateValue(status, forKey: member.name)
            guard let before, before != status else { continue }
            let detail: String
            switch status {
            case .down where dropped.contains(member.name): detail = " (cut off by a partition)"
            case .down:
                let phi = membership.detector.phi(of: member.name, at: now.monotonicMs)
                detail =
                    phi >= membership.detector.threshold && phi.isFinite
                    ? " (phi \((phi * 10).rounded() / 10))" : " (its requests went unanswered)"
            default: detail = ""
            }
            actions.append(.event("\(name) marks \(member.name) \(status.rawValue)\(detail)"))
        }
        return actions
    }

    private mutating func receiveGossip(_ members: [Member], now: Now) -> [Action] {
        let before = Set(membership.members.keys)
        var actions: [Action] = []
        let outcome = membership.receive(members, now: now.monotonicMs)
        for case .refused(let member) in outcome where refusedMembers.insert(member).inserted {
            actions.append(
                .event("\(name) refuses gossip about \(member): its row is not signed with the cluster secret"))
        }
        if outcome.contains(.outlivedEarlierSelf) {
            // Its data dir is older than the cluster's memory of it (deleted, or restored
            // from a backup): dots it made since may live on elsewhere.
            dotFloor = max(dotFloor, now.wallMs)
            actions.append(.identityChanged(generation: membership.local.generation, dotFloor: dotFloor))
            actions.append(
                .event(
                    "\(name) finds the cluster remembers a later life of it (its data dir is older): it takes generation \(membership.local.generation) and numbers new versions from its clock"
                ))
        }
        if outcome.contains(.ringChanged) {
            // Ownership may have moved: look for data to hand off right away, and do not
            // claim to be settled until a pass under the new ring says so.
            nextHandoffAt = 0
            orphansThisPass = true
            actions += refreshTrees()
            if lastPassClean == true {
                lastPassClean = nil
                updateSettled()
            }
            let added = Set(membership.members.keys).subtracting(before).sorted()
            if !added.isEmpty { actions.append(.event("\(name) learns of \(added.joined(separator: ", "))")) }
        }
        if membership.local.status == .joining, membership.hasJoined, !settings.freshIdentity {
            membership.setLocalStatus(.up, now: now.monotonicMs)
            actions.append(.event("\(name) rejoined the cluster (\(membership.members.count) members known)"))
        }
        return actions
    }

    // MARK: Reads

    /// The first N healthy nodes of the key's preference list on the routing ring. Without
    /// hinted handoff a fallback's copy could never reach its home node, so the quorum is
    /// strict: healthy home nodes only.
    private func replicas(for key: [UInt8], now: Now) -> [HintedReplica] {
        let sloppy = membership.routingRing.preferenceList(forKey: key).sloppyReplicas(n: settings.quorum.n) {
            isReachable($0, at: now.monotonicMs)
        }
        return settings.hintedHandoff ? sloppy : sloppy.filter { $0.hintFor == nil }
    }

    /// Reads also ask the key's home nodes counting joining and leaving members, so while
    /// ranges move, the data is found on its old and its new owners alike.
    private func readReplicas(for key: [UInt8], now: Now) -> [HintedReplica] {
        var replicas = replicas(for: key, now: now)
        for node in membership.ring.preferenceList(forKey: key).home(settings.quorum.n)
        where isReachable(node, at: now.monotonicMs) && !replicas.contains(where: { $0.node == node }) {
            replicas.append(HintedReplica(node: node, hintFor: nil))
        }
        return replicas
    }

    private mutating func startRead(client: UInt64, key: [UInt8], r: Int?, now: Now) -> [Action] {
        let coordinator = GetCoordinator(
            key: key, replicas: readReplicas(for: key, now: now), r: r ?? settings.quorum.r, policy: settings.clocks,
            now: now.monotonicMs, config: settings.quorum, wallNow: now.wallMs, mayReap: clusterSettled(now: now))
        let id = newID()
        gets[id] = GetRun(coordinator: coordinator, client: client)
        return runGet(id, now: now) { $0.start() }
    }

    private mutating func runGet(_ id: UInt64, now: Now, _ event: (inout GetCoordinator) -> [GetCoordinator.Action])
        -> [Action]
    {
        guard var run = gets[id] else { return [] }
        let steps = event(&run.coordinator)
        gets[id] = run.coordinator.isFinished ? nil : run
        var actions: [Action] = []
        for step in steps {
            switch step {
            case .send(let node, let request):
                if case .put = request, !settings.readRepair { continue }
                if case .put = request {
                    actions.append(.event("\(name) read-repairs \(Self.describe(run.coordinator.key)) on \(node)"))
                }
                if case .reap = request {
                    actions.append(.event("\(name) reaps a tombstone every replica has, on \(node)"))
                }
                actions += replicaRequest(request, to: node, run: id, now: now)
            case .respond(let outcome):
                if run.client != Self.internalClient, outcome.succeeded {
                    actions += watch(run.coordinator.key, outcome.object.size, .read, now: now)
                }
                if outcome.object.versions.count > 1 {
                    actions.append(
                        .event(
                            "\(name) reads \(outcome.object.versions.count) siblings of \(Self.describe(run.coordinator.key))"
                        ))
                }
                if run.client != Self.internalClient { actions.append(.reply(client: run.client, .read(outcome))) }
            }
        }
        return actions
    }

    /// A replica request of a running get or put: served by the local store when `node` is
    /// this node, else sent over the network.
    private mutating func replicaRequest(_ request: ReplicaRequest, to node: NodeName, run: UInt64, now: Now)
        -> [Action]
    {
        guard node == name else {
            return send(
                .replica(request), to: node, purpose: .replica(run: run, node: node),
                timeoutMs: settings.quorum.requestTimeoutMs, now: now)
        }
        switch request {
        case .get(let key):
            if let refilling { return replicaReplied(run: run, node: name, .failed(refilling), now: now) }
            return storage(.read(key: key), wait: .localReplica(run: run))
        case .put(let key, let object, let hintFor):
            return storage(
                .merge(key: key, object: object, hintFor: hintFor == name ? nil : hintFor, sync: true),
                wait: .localReplica(run: run))
        case .reap(let key, let object):
            return storage(.forget(key: key, ifStill: object), wait: .localReplica(run: run))
        }
    }

    private mutating func replicaReplied(run: UInt64, node: NodeName, _ reply: ReplicaReply, now: Now) -> [Action] {
        if gets[run] != nil { return runGet(run, now: now) { $0.receive(from: node, reply) } }
        if puts[run] != nil { return runPut(run, now: now) { $0.receive(from: node, reply, now: now.monotonicMs) } }
        return []
    }

    // MARK: Object limits

    /// Notes a key's size as seen by a write, a refused write or a read: a key at or past a
    /// warning is listed (and told as an event when it was not), one below leaves the list.
    private mutating func watch(_ key: [UInt8], _ size: ObjectSize, _ sighting: HotKeys.Sighting, now: Now)
        -> [Action]
    {
        let limits = settings.objectLimits
        guard sighting == .refused || limits.isNear(size) else {
            hotKeys.cleared(key)
            return []
        }
        let (report, isNew) = hotKeys.note(key, size, sighting, atMs: now.monotonicMs)
        var actions: [Action] = [.objectNearLimit(report)]
        if isNew {
            let what = sighting == .refused ? "refuses a write to" : "sees"
            actions.append(
                .event(
                    "\(name) \(what) \(Self.describe(key)) with \(size.siblings) siblings, \(size.bytes) bytes (limits \(limits.maxSiblings) siblings, \(limits.maxObjectBytes) bytes)"
                ))
        }
        return actions
    }

    // MARK: Writes

    /// A client write: coordinated here when this node is among the key's first N healthy
    /// nodes (home nodes first, then fallbacks), else forwarded to them in order.
    private mutating func routeWrite(_ requester: Requester, _ put: ForwardedPut, now: Now) -> [Action] {
        let replicas = replicas(for: put.key, now: now)
        if replicas.isEmpty || replicas.contains(where: { $0.node == name }) {
            return coordinateHere(requester, put, now: now)
        }
        return forward(requester, put, candidates: replicas.map(\.node), now: now)
    }

    private mutating func forward(
        _ requester: Requester, _ put: ForwardedPut, candidates: [NodeName], failedHere: String? = nil, now: Now
    ) -> [Action] {
        guard let target = candidates.first else {
            if let failedHere {
                return writeFailed(
                    requester, put,
                    "local write failed (\(failedHere)) and no other replica could coordinate it")
            }
            // Nobody we forwarded to answered: coordinate here rather than refuse the write.
            return coordinateHere(requester, put, now: now)
        }
        return send(
            .coordinatePut(put), to: target,
            purpose: .forward(
                requester: requester, put: put, remaining: Array(candidates.dropFirst()), target: target,
                failedHere: failedHere),
            timeoutMs: settings.quorum.requestTimeoutMs * 2, now: now)
    }

    /// Coordinates a write here: store the new version locally (as a hint if this node is a
    /// fallback), then replicate it.
    private mutating func coordinateHere(_ requester: Requester, _ put: ForwardedPut, now: Now) -> [Action] {
        // A starting node coordinates nothing until it has heard from the cluster: only then
        // does it know whether the cluster remembers a later life of it (a lost or restored
        // data dir), whose dots its new ones must start above (`dotFloor`).
        let alone = settings.awaitPeers && membership.members.count == 1 && membership.local.status == .joining
        if !membership.hasJoined || alone {
            let reason = "\(name) is starting and has not reached the cluster yet; try another node"
            if case .peer(let handle) = requester { return [.respond(handle: handle, .error(reason))] }
            return writeFailed(requester, put, reason)
        }
        let preference = membership.routingRing.preferenceList(forKey: put.key)
        var replicas = replicas(for: put.key, now: now)
        if !replicas.contains(where: { $0.node == name }) {
            // Neither home nor fallback in this node's own view (it was forwarded the write):
            // hold the version for the first home node the write cannot reach directly.
            let home = preference.home(settings.quorum.n)
            let standIn =
                home.contains(name) ? nil : home.first { h in !replicas.contains { $0.node == h } } ?? home.first
            replicas.insert(HintedReplica(node: name, hintFor: standIn), at: 0)
        }
        let hintFor = replicas.first { $0.node == name }?.hintFor
        let op = StorageOp.coordinateWrite(
            key: put.key, value: put.value, context: put.context, actor: name, now: now.wallMs, hintFor: hintFor,
            sync: settings.syncCoordinatorWrites, counterFloor: dotFloor, limits: settings.objectLimits)
        return hintKept(put.key, for: hintFor)
            + storage(
                op,
                wait: .coordinate(requester: requester, put: put, replicas: replicas)
            )
    }

    /// The key's extended preference list, in order, without this node, the `excluded`
    /// ones and those it cannot reach: where a write or hint can go instead.
    private func reachablePreference(forKey key: [UInt8], excluding excluded: Set<NodeName>, now: Now) -> [NodeName] {
        membership.routingRing.preferenceList(forKey: key).nodes.filter { node in
            node != name && !excluded.contains(node) && isReachable(node, at: now.monotonicMs)
        }
    }

    /// Who takes a hint its target cannot: a reachable node of the key's preference list
    /// (not this one, not the target), home nodes first, and among those first one that made
    /// none of its versions. A version's coordinator already holds it: handing the hint there
    /// would leave one copy of a write that was acknowledged with two. (Found by the
    /// simulator: such a copy was then lost with a log tail.)
    private func standIn(for hint: Hint, now: Now) -> NodeName? {
        let candidates = reachablePreference(forKey: hint.key, excluding: [hint.target], now: now)
        let home = Set(membership.routingRing.preferenceList(forKey: hint.key).home(settings.quorum.n))
        let makers = Set(hint.object.versions.map(\.dot.actor))
        return candidates.first { home.contains($0) && !makers.contains($0) } ?? candidates.first
    }

    private mutating func replicate(
        _ requester: Requester, key: [UInt8], version: Version, replicas: [HintedReplica], w: Int, now: Now
    ) -> [Action] {
        // With a sloppy quorum, a replica that fails is replaced by the next healthy node of
        // the preference list within this request (with a hint for it).
        let fallbacks =
            settings.hintedHandoff
            ? reachablePreference(forKey: key, excluding: Set(replicas.map(\.node)), now: now) : []
        let coordinator = PutCoordinator(
            key: key, object: VersionedObject(versions: [version]), replicas: replicas, coordinator: name,
            localStored: true, w: w, now: now.monotonicMs, timeoutMs: settings.quorum.requestTimeoutMs,
            fallbacks: fallbacks)
        let id = newID()
        puts[id] = PutRun(
            coordinator: coordinator, requester: requester, version: version,
            deadline: now.monotonicMs + settings.quorum.requestTimeoutMs)
        return runPut(id, now: now) { $0.start() }
    }

    private mutating func runPut(_ id: UInt64, now: Now, _ event: (inout PutCoordinator) -> [PutCoordinator.Action])
        -> [Action]
    {
        guard var run = puts[id] else { return [] }
        let steps = event(&run.coordinator)
        let done = run.coordinator.isFinished(now: now.monotonicMs) || now.monotonicMs >= run.deadline
        puts[id] = done ? nil : run
        var actions: [Action] = []
        for step in steps {
            switch step {
            case .send(let node, let request):
                actions += replicaRequest(request, to: node, run: id, now: now)
            case .respond(let outcome):
                let result = WriteResult(
                    succeeded: outcome.succeeded, coordinator: name, acks: outcome.acks, required: outcome.required,
                    context: run.version.clock, dot: run.version.dot, asked: run.coordinator.replicas)
                actions += answer(run.requester, .write(result))
            }
        }
        return actions
    }

    // MARK: Storage results

    private mutating func stored(token: UInt64, _ result: StorageResult, now: Now) -> [Action] {
        guard let wait = storageWaits.removeValue(forKey: token) else { return [] }
        if case .removed(true) = result, case .serve = wait { tombstonesReaped += 1 }
        if case .removed(true) = result, case .localReplica = wait { tombstonesReaped += 1 }
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
            let w = put.w ?? settings.quorum.w
            switch result {
            case .version(let version, let size):
                return watch(put.key, size, .written, now: now)
                    + replicate(requester, key: put.key, version: version, replicas: replicas, w: w, now: now)
            case .refused(let refusal):
                // Nothing was stored: the client learns why and how to resolve it.
                return watch(put.key, refusal.current, .refused, now: now)
                    + writeFailed(requester, put, refusal.description, refusal: refusal)
            default:
                let reason: String
                if case .failed(let message) = result { reason = message } else { reason = "unexpected storage result" }
                // This node cannot store the write (a full disk): another replica coordinates
                // it. A forwarded write goes back as an error, so its forwarder tries the next.
                if case .peer(let handle) = requester {
                    return [.respond(handle: handle, .error("\(name) cannot store the write: \(reason)"))]
                }
                // The other replicas first, then (sloppy quorum) the rest of the preference
                // list: with several disks full, a healthy fallback can still take it.
                var others = replicas.map(\.node).filter { $0 != name }
                if settings.hintedHandoff {
                    others += reachablePreference(forKey: put.key, excluding: Set(others), now: now)
                }
                return forward(requester, put, candidates: others, failedHere: reason, now: now)
            }
        case .loadHints:
            guard case .hints(let hints, let total) = result else { return hintRoundFinished() }
            hintsHeld = total
            updateSettled()
            guard !hints.isEmpty else { return hintRoundFinished() }
            hintsOutstanding = hints.count
            lastHintBatchFull = hints.count == Self.hintBatch
            var actions: [Action] = []
            for hint in hints {
                let targetLeft =
                    membership.member(hint.target)?.status == .leaving
                    && !isReachable(hint.target, at: now.monotonicMs)
                if targetLeft, let home = standIn(for: hint, now: now) {
                    // The intended node left the cluster: its ranges belong to others now.
                    // Handed over (`hintFor` the receiver itself): stored synced, as the
                    // hint it replaces was, since the hint is deleted once it is taken.
                    actions += send(
                        .replica(.put(key: hint.key, object: hint.object, hintFor: home)), to: home,
                        purpose: .hint(hint), timeoutMs: settings.quorum.requestTimeoutMs, now: now)
                } else if isReachable(hint.target, at: now.monotonicMs) {
                    actions += send(
                        .replica(.put(key: hint.key, object: hint.object, hintFor: hint.target)), to: hint.target,
                        purpose: .hint(hint), timeoutMs: settings.quorum.requestTimeoutMs, now: now)
                } else if let holder = standIn(for: hint, now: now) {
                    // Leaving with the target still away: another node keeps the hint for it.
                    actions += send(
                        .replica(.put(key: hint.key, object: hint.object, hintFor: hint.target)), to: holder,
                        purpose: .hint(hint), timeoutMs: settings.quorum.requestTimeoutMs, now: now)
                } else {
                    actions += hintRoundFinished()
                }
            }
            return actions
        case .handoffScan(let full):
            return handoffScanned(result, full: full, now: now)
        case .serveTransfer(let handle, let requester):
            return [.respond(handle: handle, transfer(result, for: requester))]
        case .pulled(let source):
            pulledMergesInFlight -= 1
            if case .failed(let reason) = result, pullFailed.insert(source).inserted {
                return [.event("\(name) could not store keys pulled from \(source) (\(reason)): it pulls them again")]
            }
            return []
        case .buildTree(let range):
            guard case .keyHashes(let hashes, let seq) = result, var entry = trees[range] else { return [] }
            for hash in hashes { entry.tree.set(hash.key, hash: hash.hash, seq: seq) }
            entry.built = true
            trees[range] = entry
            return []
        case .treeRepaired(let range, let peer):
            if case .stored = result { return repairDone(range: range, peer: peer, repaired: true, now: now) }
            return repairDone(range: range, peer: peer, repaired: false, now: now)
        case .handedOff:
            if case .removed(true) = result { keysHandedOff += 1 }
            return handoffStepDone(now: now)
        case .sweep:
            guard case .keys(let keys) = result else { return [] }
            var actions: [Action] = []
            // Every holder sweeps its own old tombstones (not just the first home node, which
            // may be the one replica that missed the delete): the read repairs stragglers,
            // and once every home replica has the same tombstone it is reaped.
            for key in keys {
                actions += startRead(client: Self.internalClient, key: key, r: settings.quorum.n, now: now)
            }
            return actions
        case .removeHint(let hint):
            var actions: [Action] = []
            if case .removed(true) = result {
                hintsDelivered[hint.target, default: 0] += 1
                actions.append(.event("\(name) delivered a hint to \(hint.target)"))
            }
            return actions + hintRoundFinished()
        }
    }

    // MARK: Settledness (safe tombstone reaping)

    /// Hints held in all, as of the last hint round (nil: not known yet).
    private var hintsHeld: Int?
    /// Whether the last complete handoff pass found no data this node does not own.
    private var lastPassClean: Bool?
    private var orphansThisPass = false

    /// Every member is settled (a member that left and is gone handed everything off before
    /// it exited), so no hint or stray copy anywhere could bring back what a tombstone
    /// superseded: only then may tombstones be reaped.
    private func clusterSettled(now: Now) -> Bool {
        membership.members.values.allSatisfy { member in
            member.settled || (member.status == .leaving && !isReachable(member.name, at: now.monotonicMs))
        }
    }

    private mutating func updateSettled() {
        membership.setLocalSettled(
            hintsHeld == 0 && lastPassClean == true && membership.local.status != .joining)
    }

    // MARK: Anti-entropy

    /// A Merkle tree of a range this node is a home node of, and who else holds the range.
    public struct RangeTree: Sendable {
        public var range: KeyRange
        public var peers: [NodeName]
        public var tree: MerkleTree
        public var built: Bool
    }

    /// What the last exchange of a range with a peer found (for status and the console).
    public struct ExchangeRecord: Hashable, Sendable {
        public var range: KeyRange
        public var peer: NodeName
        /// Wall-clock ms of the comparison.
        public var at: UInt64
        public var inSync: Bool
        public var keysDiffering: Int
        public var keysRepaired: Int
        /// Hashes and keys received, roughly in bytes.
        public var bytesReceived: Int
    }

    public private(set) var trees: [KeyRange: RangeTree] = [:]
    public private(set) var exchanges: [String: ExchangeRecord] = [:]
    public private(set) var exchangeCount = 0
    public private(set) var keysRepairedByExchange = 0
    private var treeRing = Ring(tokens: [])
    private var rangeIndex: [KeyRange] = []
    private var nextExchangeAt: UInt64 = 0
    private var exchangeCursor = 0
    private var exchange:
        (
            range: KeyRange, peer: NodeName, walk: MerkleComparison, record: ExchangeRecord, pending: Int,
            startedAt: UInt64
        )?

    /// Keys repaired per exchange at most, and tree nodes asked per request: the throttle
    /// that keeps anti-entropy from crowding out client requests (the paper's admission
    /// control); a bigger divergence simply takes several rounds.
    public static let exchangeKeyLimit = 128
    public static let exchangeNodeLimit = 64

    /// Recomputes the ranges this node is a home node of: keeps trees of unchanged ranges,
    /// drops the others, and builds new ones from storage.
    private mutating func refreshTrees() -> [Action] {
        treeRing = membership.routingRing
        let tokens = treeRing.tokens
        var wanted: [KeyRange: [NodeName]] = [:]
        for (index, token) in tokens.enumerated() {
            let start = tokens[(index + tokens.count - 1) % tokens.count].position
            guard start != token.position || tokens.count == 1 else { continue }
            let home = treeRing.preferenceList(for: token.position).home(settings.quorum.n)
            guard home.contains(name) else { continue }
            wanted[KeyRange(start: start, end: token.position)] = home.filter { $0 != name }
        }
        var actions: [Action] = []
        var next: [KeyRange: RangeTree] = [:]
        for (range, peers) in wanted.sorted(by: { $0.key < $1.key }) {
            if var existing = trees[range] {
                existing.peers = peers
                next[range] = existing
            } else {
                next[range] = RangeTree(range: range, peers: peers, tree: MerkleTree(), built: false)
                actions += storage(.rangeHashes(start: range.start, end: range.end), wait: .buildTree(range: range))
            }
        }
        trees = next
        rangeIndex = next.keys.sorted()
        return actions
    }

    private mutating func applyTreeUpdates(_ updates: [TreeUpdate]) {
        guard !rangeIndex.isEmpty else { return }
        for update in updates {
            let position = RingPosition.of(key: update.key)
            guard let range = range(containing: position) else { continue }
            trees[range]?.tree.set(update.key, hash: update.hash, seq: update.seq)
        }
    }

    /// The tracked range containing `position` (ranges are disjoint, sorted by end).
    private func range(containing position: RingPosition) -> KeyRange? {
        var low = 0
        var high = rangeIndex.count
        while low < high {
            let mid = (low + high) / 2
            if rangeIndex[mid].end < position { low = mid + 1 } else { high = mid }
        }
        let candidate = rangeIndex[low == rangeIndex.count ? 0 : low]
        return candidate.contains(position) ? candidate : nil
    }

    /// Starts comparing the next range's tree with one of its replicas (round robin over
    /// ranges and peers), spaced so every range is compared about once per interval.
    private mutating func startExchange(now: Now) -> [Action] {
        let built = rangeIndex.filter { trees[$0]!.built }
        nextExchangeAt = now.monotonicMs + settings.antiEntropyIntervalMs / UInt64(max(1, built.count))
        // Safety net: an exchange that lost track of its answers is abandoned.
        if let current = exchange, now.monotonicMs > current.startedAt + 5 * settings.quorum.requestTimeoutMs {
            exchange = nil
        }
        guard exchange == nil, !built.isEmpty, membership.local.status == .up else { return [] }
        exchangeCursor += 1
        let range = built[exchangeCursor % built.count]
        let peers = trees[range]!.peers.filter { isReachable($0, at: now.monotonicMs) }
        guard !peers.isEmpty else { return [] }
        let peer = peers[(exchangeCursor / built.count) % peers.count]
        let record = ExchangeRecord(
            range: range, peer: peer, at: now.wallMs, inSync: false, keysDiffering: 0, keysRepaired: 0,
            bytesReceived: 0)
        exchange = (range, peer, MerkleComparison(), record, 0, now.monotonicMs)
        exchangeCount += 1
        return send(
            .treeChildren(range: range, nodes: [MerkleNodeID(level: 0, id: 0)]), to: peer,
            purpose: .tree(range: range, peer: peer), timeoutMs: settings.quorum.requestTimeoutMs, now: now)
    }

    /// One answer of the peer during an exchange: descend into differing subtrees, list
    /// differing segments, then pull the differing keys and merge them.
    private mutating func exchangeStep(range: KeyRange, peer: NodeName, _ response: PeerResponse?, now: Now)
        -> [Action]
    {
        guard var current = exchange, current.range == range, current.peer == peer else { return [] }
        guard let tree = trees[range]?.tree else {
            // The range moved (the ring changed): drop this exchange.
            exchange = nil
            return []
        }
        switch response {
        case .treeHashes(let lists):
            current.record.bytesReceived += lists.reduce(0) { $0 + $1.count * 8 }
            if current.walk.hashesReceived == 0 {
                // The root's children: equal children means equal trees.
                current.record.inSync = lists.first == tree.children(level: 0, id: 0)
            }
            current.walk.receive(children: lists, local: tree)
            exchange = current
            if !current.walk.frontier.isEmpty {
                let nodes = current.walk.frontier.prefix(Self.exchangeNodeLimit).map {
                    MerkleNodeID(level: $0.level, id: $0.id)
                }
                current.walk.limitFrontier(to: Self.exchangeNodeLimit)
                exchange = current
                return send(
                    .treeChildren(range: range, nodes: nodes), to: peer, purpose: .tree(range: range, peer: peer),
                    timeoutMs: settings.quorum.requestTimeoutMs, now: now)
            }
            if current.walk.differingSegments.isEmpty { return finishExchange(now: now) }
            return send(
                .treeSegments(
                    range: range, segments: Array(current.walk.differingSegments.prefix(Self.exchangeNodeLimit))),
                to: peer, purpose: .tree(range: range, peer: peer), timeoutMs: settings.quorum.requestTimeoutMs,
                now: now)
        case .treeKeys(let listing):
            current.record.bytesReceived += listing.reduce(0) { $0 + $1.key.count + 8 }
            let segments = Array(current.walk.differingSegments.prefix(Self.exchangeNodeLimit))
            let keys = MerkleComparison.differingKeys(local: tree, remote: listing, segments: segments)
            current.record.keysDiffering = keys.count
            // Pull what the peer has; what only this node has, the peer pulls in its own exchanges.
            let remote = Set(listing.map(\.key))
            let wanted = keys.filter { remote.contains($0) }.prefix(Self.exchangeKeyLimit)
            current.pending = wanted.count
            exchange = current
            if wanted.isEmpty { return finishExchange(now: now) }
            var actions: [Action] = []
            for key in wanted {
                actions += send(
                    .replica(.get(key: key)), to: peer, purpose: .treeFetch(range: range, peer: peer, key: key),
                    timeoutMs: settings.quorum.requestTimeoutMs, now: now)
            }
            return actions
        default:
            // No tree there yet (the peer is building it, or sees other ranges), or no answer.
            exchange = nil
            return []
        }
    }

    private mutating func repairDone(range: KeyRange, peer: NodeName, repaired: Bool, now: Now) -> [Action] {
        guard var current = exchange, current.range == range, current.peer == peer else { return [] }
        current.pending -= 1
        if repaired {
            current.record.keysRepaired += 1
            keysRepairedByExchange += 1
        }
        exchange = current
        return current.pending <= 0 ? finishExchange(now: now) : []
    }

    private mutating func finishExchange(now: Now) -> [Action] {
        guard let current = exchange else { return [] }
        exchange = nil
        exchanges["\(current.range.end.hex)/\(current.peer)"] = current.record
        guard current.record.keysRepaired > 0 else { return [] }
        return [
            .event(
                "\(name) anti-entropy with \(current.peer) on \(current.range): \(current.record.keysDiffering) key(s) differ, \(current.record.keysRepaired) repaired"
            )
        ]
    }

    // MARK: Joining

    private var pullCursors: [NodeName: [UInt8]?] = [:]
    private var pullStarted = false
    private var awaitingPeersSince: UInt64?
    private var pullsInFlight: Set<NodeName> = []
    /// Pulled keys not yet stored, and sources some of whose keys could not be stored (a
    /// full disk): the join is complete only once every pulled key is stored.
    private var pulledMergesInFlight = 0
    private var pullFailed: Set<NodeName> = []
    private var nextPullAt: [NodeName: UInt64] = [:]
    /// Keys received while joining.
    public private(set) var keysPulled = 0

    /// A new node waits until its view of the cluster has settled, then pulls the keys of
    /// the ranges it will own from every member that is up; once all have answered in full
    /// it declares itself `up` and enters the routing ring. (Writes made meanwhile reach it
    /// through the old owners' handoff.)
    private mutating func advanceJoin(now: Now) -> [Action] {
        guard membership.local.status == .joining, settings.freshIdentity, membership.hasJoined else { return [] }
        let t = now.monotonicMs
        if settings.awaitPeers, membership.members.count == 1 {
            let since = awaitingPeersSince ?? t
            awaitingPeersSince = since
            if t < since + 10 * settings.gossipIntervalMs { return [] }
        }
        if !pullStarted {
            guard t >= membership.lastChange + 3 * settings.gossipIntervalMs else { return [] }
            pullStarted = true
            let sources = membership.members.values.filter { $0.name != name && $0.status == .up }.map(\.name)
            for source in sources { pullCursors[source] = .some(nil) }
        }
        var actions: [Action] = []
        for (source, cursor) in pullCursors.sorted(by: { $0.key < $1.key })
        where !pullsInFlight.contains(source) && t >= nextPullAt[source, default: 0] {
            pullsInFlight.insert(source)
            actions += send(
                .pull(requester: membership.local, after: cursor), to: source, purpose: .pull(from: source),
                timeoutMs: settings.quorum.requestTimeoutMs * 2, now: now)
        }
        if pullCursors.isEmpty, pulledMergesInFlight == 0, !pullFailed.isEmpty {
            for source in pullFailed where membership.member(source)?.status == .up {
                pullCursors[source] = .some(nil)
                nextPullAt[source] = t + 5 * settings.gossipIntervalMs
            }
            pullFailed = []
            return actions
        }
        if pullCursors.isEmpty, pulledMergesInFlight == 0 {
            membership.setLocalStatus(.up, now: t)
            actions.append(.joined(dotFloor: dotFloor))
            actions.append(
                .event("\(name) joined the cluster and took \(keysPulled) key(s) for its ranges; now up"))
        }
        return actions
    }

    private mutating func pulledBatch(from source: NodeName, _ response: PeerResponse?, now: Now) -> [Action] {
        pullsInFlight.remove(source)
        guard case .transfer(let entries, let next) = response else {
            // Try again a little later (or give up on a member that left meanwhile).
            if membership.member(source)?.status == .up {
                nextPullAt[source] = now.monotonicMs + settings.gossipIntervalMs
            } else {
                pullCursors[source] = nil
            }
            return []
        }
        var actions: [Action] = []
        for entry in entries {
            keysPulled += 1
            pulledMergesInFlight += 1
            actions += storage(
                .merge(key: entry.key, object: entry.object, hintFor: nil, sync: false), wait: .pulled(from: source))
        }
        if let next { pullCursors[source] = .some(next) } else { pullCursors[source] = nil }
        return actions
    }

    /// Answers a joining node's pull: of a batch of own keys, those it will be a home node
    /// of (judged on the ring with its tokens added).
    private func transfer(_ result: StorageResult, for requester: Member) -> PeerResponse {
        guard case .entries(let entries) = result else { return .error("cannot scan for a transfer") }
        var tokens = membership.ring.tokens.filter { $0.owner != requester.name }
        tokens += requester.tokens.map { Token(position: $0, owner: requester.name) }
        let future = Ring(tokens: tokens)
        var selected: [KeyedObject] = []
        var bytes = 0
        for (index, entry) in entries.enumerated() {
            guard future.preferenceList(forKey: entry.key).home(settings.quorum.n).contains(requester.name) else {
                continue
            }
            // A key an earlier build left past what a peer decodes cannot travel (the whole
            // batch would be refused, and the join would stall on it): it stays here until a
            // client resolves it (see `VersionedObject.storedVersionLimit`).
            guard entry.object.versions.count <= VersionedObject.decodeVersionLimit else { continue }
            let size = entry.key.count + entry.object.encodedByteCount
            // An object up to the frame ceiling goes alone: the batch ends before it.
            if !selected.isEmpty, bytes + size > Self.transferBytes {
                return .transfer(entries: selected, next: entries[index - 1].key)
            }
            selected.append(entry)
            bytes += size
            if bytes > Self.transferBytes {
                let more = index + 1 < entries.count || entries.count == Self.handoffBatch
                return .transfer(entries: selected, next: more ? entry.key : nil)
            }
        }
        return .transfer(entries: selected, next: entries.count == Self.handoffBatch ? entries.last?.key : nil)
    }

    /// Rough bound on the values in one transfer batch (frames are limited to 16 MiB).
    static let transferBytes = 4 << 20

    // MARK: Ownership handoff

    /// Keys scanned per handoff round.
    public static let handoffBatch = 128
    /// Keys this node held without being one of their home nodes, handed to those nodes.
    public private(set) var keysHandedOff = 0
    private var handingOff = false
    private var nextHandoffAt: UInt64 = 0
    private var handoffCursor: [UInt8]?
    private var handoffBatchFull = false
    private var handoffs: [[UInt8]: (object: VersionedObject, pending: Set<NodeName>, failed: Bool)] = [:]

    /// A scan of this node's own data came back: every key it is no longer a home node of
    /// (the ring changed: a node joined or left, or this node stored it while it knew only
    /// part of the ring) goes to all of the key's home nodes, and is forgotten here only
    /// after every one of them acknowledged it.
    private mutating func handoffScanned(_ result: StorageResult, full: Bool, now: Now) -> [Action] {
        guard case .entries(let entries) = result else {
            handingOff = false
            nextHandoffAt = now.monotonicMs + settings.hintIntervalMs
            return []
        }
        handoffBatchFull = entries.count == Self.handoffBatch
        handoffCursor = handoffBatchFull ? entries.last?.key : nil
        var actions: [Action] = []
        for entry in entries {
            let home = membership.routingRing.preferenceList(forKey: entry.key).home(settings.quorum.n)
            if !home.contains(name) { orphansThisPass = true }
            guard !home.contains(name), !home.isEmpty,
                home.allSatisfy({ isReachable($0, at: now.monotonicMs) })
            else { continue }
            handoffs[entry.key] = (entry.object, Set(home), false)
            for node in home {
                actions += send(
                    .replica(.put(key: entry.key, object: entry.object, hintFor: node)), to: node,
                    purpose: .handoff(key: entry.key, node: node), timeoutMs: settings.quorum.requestTimeoutMs,
                    now: now)
            }
        }
        if !actions.isEmpty {
            actions.append(.event("\(name) hands \(handoffs.count) key(s) to their home nodes"))
        }
        if !handoffBatchFull {
            // A full pass over this node's data is complete.
            lastPassClean = !orphansThisPass
            orphansThisPass = false
            updateSettled()
        }
        return actions + handoffStepDone(now: now)
    }

    private mutating func handoffAcked(key: [UInt8], by node: NodeName, now: Now) -> [Action] {
        guard var entry = handoffs[key] else { return [] }
        entry.pending.remove(node)
        handoffs[key] = entry
        guard entry.pending.isEmpty else { return [] }
        handoffs[key] = nil
        if entry.failed { return handoffStepDone(now: now) }
        // Every home node has it now: forget the local copy unless it changed meanwhile.
        return storage(.forget(key: key, ifStill: entry.object), wait: .handedOff)
    }

    private mutating func handoffStepDone(now: Now) -> [Action] {
        guard handoffs.isEmpty,
            !storageWaits.values.contains(where: { if case .handedOff = $0 { true } else { false } })
        else { return [] }
        handingOff = false
        // A full batch means more to look at: go on at the next tick.
        nextHandoffAt = handoffBatchFull ? 0 : now.monotonicMs + settings.hintIntervalMs
        return []
    }

    // MARK: Hinted handoff

    private var hintsOutstanding = 0
    private var lastHintBatchFull = false

    /// Loads hints for intended nodes that are reachable again and offers each to its node;
    /// a hint is deleted only after its node acknowledged storing it.
    private mutating func startHintRound(now: Now) -> [Action] {
        guard !deliveringHints else { return [] }
        let leaving = membership.local.status == .leaving
        // A leaving node must get rid of every hint, reachable target or not; hints for a
        // node that left go to the key's current home.
        let targets = Set(
            membership.members.values.filter {
                $0.name != name && (leaving || $0.status == .leaving || isReachable($0.name, at: now.monotonicMs))
            }.map(\.name))
        deliveringHints = true
        return storage(.loadHints(limit: Self.hintBatch, targets: targets), wait: .loadHints)
    }

    private mutating func hintRoundFinished() -> [Action] {
        if hintsOutstanding > 0 { hintsOutstanding -= 1 }
        guard hintsOutstanding == 0 else { return [] }
        deliveringHints = false
        // A full batch means more are waiting: go on at the next tick rather than an interval later.
        if lastHintBatchFull { nextHintsAt = 0 }
        lastHintBatchFull = false
        return []
    }
}
