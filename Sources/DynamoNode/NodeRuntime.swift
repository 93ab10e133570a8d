import DynamoCore
import DynamoStorage
import DynamoWire
import Foundation
import Logging
import NIOCore
import NIOPosix

/// The shell around the pure core for one node.
///
/// All protocol state (membership, running coordinators, peer links, pending requests)
/// lives here and is touched only on `loop`, the node's single event loop; every network
/// handler of the node runs on that loop too, so no locks or actor hops are needed on the
/// hot path. Storage calls block, so they run on `pool` and report back to the loop.
final class NodeRuntime: @unchecked Sendable {
    let config: NodeConfig
    let loop: any EventLoop
    let pool: NIOThreadPool
    let store: ReplicaStore
    let logger: Logger
    let name: NodeName
    /// The actor stamped into the dots of versions this node coordinates.
    let actor: Actor

    var membership: Membership
    var links: [String: PeerLink] = [:]
    /// Nodes whose messages this node drops (fault injection), both directions.
    var dropped: Set<NodeName> = []
    /// A hinted-handoff round is running.
    var deliveringHints = false
    /// Hints delivered since start, per target (for status and the console).
    var hintsDelivered: [NodeName: Int] = [:]

    private var rng = SystemRandomNumberGenerator()
    private var nextRequestID: UInt64 = 1
    private var pending: [UInt64: (link: PeerLink, callback: @Sendable (PeerResponse?) -> Void)] = [:]
    private var nextRunID: UInt64 = 1
    private var gets: [UInt64: (coordinator: GetCoordinator, promise: EventLoopPromise<GetCoordinator.Outcome>)] = [:]
    private var puts: [UInt64: (coordinator: PutCoordinator, promise: EventLoopPromise<PutCoordinator.Outcome>)] = [:]

    init(
        config: NodeConfig, identity: NodeIdentity, loop: any EventLoop, pool: NIOThreadPool, store: ReplicaStore,
        logger: Logger
    ) {
        self.config = config
        self.loop = loop
        self.pool = pool
        self.store = store
        self.logger = logger
        self.name = config.name
        self.actor = config.name
        let me = Member(
            name: config.name, peerAddress: config.peerAddress, httpAddress: config.httpAddress,
            tokens: identity.tokens, status: config.seeds.isEmpty ? .up : .joining, generation: identity.generation)
        self.membership = Membership(me: me, seeds: config.seeds, gossipIntervalMs: config.gossipIntervalMs)
    }

    // MARK: Time

    /// Monotonic milliseconds, for deadlines.
    var monotonicMs: UInt64 { NIODeadline.now().uptimeNanoseconds / 1_000_000 }

    /// Wall-clock milliseconds, for version timestamps.
    var wallMs: UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

    // MARK: Peer requests

    /// Sends `request` to the peer at `address`; `callback` gets the response, or nil on
    /// timeout or a lost connection. Runs on the loop.
    func send(
        _ request: PeerRequest, toAddress address: String, timeoutMs: UInt64,
        callback: @escaping @Sendable (PeerResponse?) -> Void
    ) {
        loop.preconditionInEventLoop()
        let link = links[address] ?? openLink(to: address)
        let id = nextRequestID
        nextRequestID += 1
        pending[id] = (link, callback)
        link.inflight.insert(id)
        link.send(.request(id: id, request))
        loop.scheduleTask(in: .milliseconds(Int64(timeoutMs))) { self.complete(requestID: id, with: nil) }
    }

    /// Sends to a member by name, honouring injected faults (a dropped peer just never answers).
    func send(
        _ request: PeerRequest, to node: NodeName, timeoutMs: UInt64,
        callback: @escaping @Sendable (PeerResponse?) -> Void
    ) {
        guard let member = membership.member(node) else {
            callback(nil)
            return
        }
        if dropped.contains(node) {
            loop.scheduleTask(in: .milliseconds(Int64(timeoutMs))) { callback(nil) }
            return
        }
        send(request, toAddress: member.peerAddress, timeoutMs: timeoutMs, callback: callback)
    }

    func complete(requestID id: UInt64, with response: PeerResponse?) {
        loop.preconditionInEventLoop()
        guard let entry = pending.removeValue(forKey: id) else { return }
        entry.link.inflight.remove(id)
        entry.callback(response)
    }

    /// Answers a request from peer `from`; `respond` is called on the loop.
    func handlePeerRequest(
        from peer: NodeName, _ request: PeerRequest, respond: @escaping @Sendable (PeerResponse) -> Void
    ) {
        loop.preconditionInEventLoop()
        if dropped.contains(peer) { return }
        switch request {
        case .replica(let replicaRequest):
            serveReplica(replicaRequest) { respond(.replica($0)) }
        case .gossip(let members):
            receiveGossip(members)
            respond(.gossip(membership.table))
        case .coordinatePut(let put):
            coordinateWriteLocally(key: put.key, value: put.value, context: put.context, w: put.w).whenSuccess {
                respond(.coordinated($0))
            }
        }
    }

    /// Serves a replica read or merge against the local store.
    func serveReplica(_ request: ReplicaRequest, reply: @escaping @Sendable (ReplicaReply) -> Void) {
        let store = self.store
        let policy = config.clocks
        let sync = config.durability == .all
        let me = name
        pool.runIfActive(eventLoop: loop) { () throws -> ReplicaReply in
            switch request {
            case .get(let key):
                // A fallback answers with what it holds for others too: that is why it holds it.
                let own = try store.object(for: key)
                guard let hinted = try store.hintedObject(for: key, policy: policy) else { return .object(own) }
                return .object((own ?? VersionedObject()).merged(with: hinted, policy: policy))
            case .put(let key, let object, let hintFor?) where hintFor != me:
                // Sloppy quorum: keep it apart, durably, until `hintFor` can take it.
                try store.storeHint(target: hintFor, key: key, object, policy: policy, sync: true)
                return .stored
            case .put(let key, let object, _):
                try store.merge(key, object, policy: policy, sync: sync)
                return .stored
            }
        }.whenComplete { result in
            switch result {
            case .success(let value): reply(value)
            case .failure(let error):
                self.logger.error("replica request failed: \(error)")
                reply(.failed("\(error)"))
            }
        }
    }

    /// A replica request to `node`, served locally when it is this node.
    func replicaRequest(_ request: ReplicaRequest, to node: NodeName, reply: @escaping @Sendable (ReplicaReply) -> Void)
    {
        if node == name {
            serveReplica(request, reply: reply)
            return
        }
        send(.replica(request), to: node, timeoutMs: config.quorum.requestTimeoutMs) { response in
            self.noteAnswer(from: node, answered: response != nil)
            switch response {
            case .replica(let value): reply(value)
            case .error(let reason): reply(.failed(reason))
            case nil: reply(.failed("no answer from \(node)"))
            default: reply(.failed("unexpected answer from \(node)"))
            }
        }
    }

    /// Feeds this node's own view of a peer: an answer clears suspicion, silence raises it.
    func noteAnswer(from node: NodeName, answered: Bool) {
        let wasAvailable = membership.isAvailable(node, at: monotonicMs)
        if answered {
            membership.requestSucceeded(to: node)
        } else {
            membership.requestFailed(to: node, at: monotonicMs)
        }
        let isAvailable = membership.isAvailable(node, at: monotonicMs)
        if wasAvailable != isAvailable {
            logger.notice(
                "\(node) is \(isAvailable ? "reachable again" : "unreachable from here"); routing \(isAvailable ? "to" : "around") it"
            )
        }
    }

    // MARK: Gossip

    func gossipRound() {
        loop.preconditionInEventLoop()
        for action in membership.tick(now: monotonicMs, rng: &rng) {
            guard case .gossip(let address, let members) = action else { continue }
            let target = membership.member(atAddress: address)?.name
            if let target, dropped.contains(target) { continue }
            send(.gossip(members), toAddress: address, timeoutMs: config.quorum.requestTimeoutMs) { response in
                if case .gossip(let theirs) = response { self.receiveGossip(theirs) }
                if let target { self.noteAnswer(from: target, answered: response != nil) }
            }
        }
    }

    func receiveGossip(_ members: [Member]) {
        let before = Set(membership.members.keys)
        for action in membership.receive(members, now: monotonicMs) where action == .ringChanged {
            let added = Set(membership.members.keys).subtracting(before).sorted()
            if !added.isEmpty { logger.info("ring changed: learned of \(added.joined(separator: ", "))") }
        }
        if membership.local.status == .joining, membership.hasJoined {
            membership.setLocalStatus(.up)
            logger.info("joined the cluster (\(membership.members.count) members known)")
        }
    }

    // MARK: Coordination

    /// Whether this node would send a request to `node` now: a known member that its
    /// failure detector does not suspect and that no injected fault cuts off.
    func isReachable(_ node: NodeName) -> Bool {
        node == name || (membership.isAvailable(node, at: monotonicMs) && !dropped.contains(node))
    }

    func preferenceList(for key: [UInt8]) -> PreferenceList {
        membership.ring.preferenceList(forKey: key)
    }

    /// Coordinates a read: asks the first N reachable nodes of the preference list.
    func coordinateRead(key: [UInt8], r: Int?) -> EventLoopFuture<GetCoordinator.Outcome> {
        loop.preconditionInEventLoop()
        let replicas = preferenceList(for: key).sloppyReplicas(n: config.quorum.n, isHealthy: isReachable)
        let coordinator = GetCoordinator(
            key: key, replicas: replicas, r: r ?? config.quorum.r, policy: config.clocks, now: monotonicMs,
            config: config.quorum)
        let promise = loop.makePromise(of: GetCoordinator.Outcome.self)
        let id = nextRunID
        nextRunID += 1
        gets[id] = (coordinator, promise)
        runGet(id) { $0.start() }
        loop.scheduleTask(in: .milliseconds(Int64(config.quorum.requestTimeoutMs))) { self.tickGet(id) }
        loop.scheduleTask(in: .milliseconds(Int64(config.quorum.requestTimeoutMs + config.quorum.readRepairWindowMs))) {
            self.tickGet(id)
        }
        return promise.futureResult
    }

    private func tickGet(_ id: UInt64) {
        let now = monotonicMs
        runGet(id) { $0.tick(now: now) }
    }

    private func runGet(_ id: UInt64, _ event: (inout GetCoordinator) -> [GetCoordinator.Action]) {
        guard var run = gets[id] else { return }
        let actions = event(&run.coordinator)
        gets[id] = run.coordinator.isFinished ? nil : run
        for action in actions {
            switch action {
            case .send(let node, let request):
                if case .put = request { logger.debug("read repair of a key on \(node)") }
                replicaRequest(request, to: node) { reply in self.runGet(id) { $0.receive(from: node, reply) } }
            case .respond(let outcome):
                run.promise.succeed(outcome)
            }
        }
    }

    /// Coordinates a write (value nil: delete) arriving from a client. The write belongs to
    /// the first N healthy nodes of the key's preference list (home nodes first, then
    /// fallbacks: sloppy quorum); if this node is not one of them it forwards the write to
    /// the first that answers.
    func coordinateWrite(key: [UInt8], value: [UInt8]?, context: CausalHistory?, w: Int?)
        -> EventLoopFuture<WriteResult>
    {
        loop.preconditionInEventLoop()
        let replicas = preferenceList(for: key).sloppyReplicas(n: config.quorum.n, isHealthy: isReachable)
        if replicas.isEmpty || replicas.contains(where: { $0.node == name }) {
            return coordinateWriteLocally(key: key, value: value, context: context, w: w)
        }
        let promise = loop.makePromise(of: WriteResult.self)
        forwardWrite(
            ForwardedPut(key: key, value: value, context: context, w: w), candidates: replicas.map(\.node),
            promise: promise)
        return promise.futureResult
    }

    private func forwardWrite(_ put: ForwardedPut, candidates: [NodeName], promise: EventLoopPromise<WriteResult>) {
        guard let target = candidates.first else {
            // Nobody we forwarded to answered: coordinate here rather than refuse the write.
            coordinateWriteLocally(key: put.key, value: put.value, context: put.context, w: put.w).cascade(to: promise)
            return
        }
        send(.coordinatePut(put), to: target, timeoutMs: config.quorum.requestTimeoutMs * 2) { response in
            self.noteAnswer(from: target, answered: response != nil)
            if case .coordinated(let result) = response {
                promise.succeed(result)
            } else {
                self.forwardWrite(put, candidates: Array(candidates.dropFirst()), promise: promise)
            }
        }
    }

    /// Coordinates a write here, whatever this node's place in the preference list: a
    /// forwarded write is never forwarded again, so differing views cannot bounce it around.
    func coordinateWriteLocally(key: [UInt8], value: [UInt8]?, context: CausalHistory?, w: Int?)
        -> EventLoopFuture<WriteResult>
    {
        let preference = preferenceList(for: key)
        var replicas = preference.sloppyReplicas(n: config.quorum.n, isHealthy: isReachable)
        if !replicas.contains(where: { $0.node == name }) {
            // Not a home node, nor a fallback in this node's own view: hold the version for the
            // first home node the write cannot reach directly.
            let home = preference.home(config.quorum.n)
            let standIn =
                home.contains(name) ? nil : home.first { h in !replicas.contains { $0.node == h } } ?? home.first
            replicas.insert(HintedReplica(node: name, hintFor: standIn), at: 0)
        }
        let hintFor = replicas.first { $0.node == name }?.hintFor
        let targets = replicas
        let store = self.store
        let actor = self.actor
        let now = wallMs
        let policy = config.clocks
        let sync = config.durability != .none
        let required = w ?? config.quorum.w
        return pool.runIfActive(eventLoop: loop) {
            if let hintFor {
                return try store.coordinateHintedWrite(
                    key, target: hintFor, value: value, context: context, actor: actor, now: now, policy: policy)
            }
            return try store.coordinateWrite(
                key, value: value, context: context, actor: actor, now: now, policy: policy, sync: sync)
        }.flatMap { version in
            self.replicate(key: key, version: version, replicas: targets, w: required)
        }.flatMapErrorThrowing { error in
            self.logger.error("local write failed: \(error)")
            return WriteResult(
                succeeded: false, coordinator: self.name, acks: [], required: required, context: .empty,
                error: "\(error)")
        }
    }

    private func replicate(key: [UInt8], version: Version, replicas: [HintedReplica], w: Int)
        -> EventLoopFuture<WriteResult>
    {
        let coordinator = PutCoordinator(
            key: key, object: VersionedObject(versions: [version]), replicas: replicas, coordinator: name,
            localStored: true, w: w, now: monotonicMs,
            timeoutMs: config.quorum.requestTimeoutMs)
        let promise = loop.makePromise(of: PutCoordinator.Outcome.self)
        let id = nextRunID
        nextRunID += 1
        puts[id] = (coordinator, promise)
        runPut(id) { $0.start() }
        loop.scheduleTask(in: .milliseconds(Int64(config.quorum.requestTimeoutMs))) {
            let now = self.monotonicMs
            self.runPut(id) { $0.tick(now: now) }
            self.puts[id] = nil
        }
        let name = self.name
        return promise.futureResult.map { outcome in
            WriteResult(
                succeeded: outcome.succeeded, coordinator: name, acks: outcome.acks, required: outcome.required,
                context: version.clock)
        }
    }

    private func runPut(_ id: UInt64, _ event: (inout PutCoordinator) -> [PutCoordinator.Action]) {
        guard var run = puts[id] else { return }
        let actions = event(&run.coordinator)
        puts[id] = run.coordinator.isFinished(now: monotonicMs) ? nil : run
        for action in actions {
            switch action {
            case .send(let node, let request):
                replicaRequest(request, to: node) { reply in self.runPut(id) { $0.receive(from: node, reply) } }
            case .respond(let outcome):
                run.promise.succeed(outcome)
            }
        }
    }

    // MARK: Hinted handoff

    private static let hintBatch = 64

    /// One round of hinted handoff: offer held hints to intended nodes that are reachable
    /// again; a hint is deleted only after its node acknowledged storing it.
    func deliverHints() {
        loop.preconditionInEventLoop()
        guard !deliveringHints, store.hintCounts.keys.contains(where: isReachable) else { return }
        deliveringHints = true
        let reachable = Set(store.hintCounts.keys.filter(isReachable))
        let store = self.store
        pool.runIfActive(eventLoop: loop) {
            try store.pendingHints(limit: Self.hintBatch) { reachable.contains($0) }
        }.whenComplete { result in
            guard case .success(let hints) = result, !hints.isEmpty else {
                self.deliveringHints = false
                return
            }
            let deliveries = hints.map { hint in
                let promise = self.loop.makePromise(of: Void.self)
                self.replicaRequest(.put(key: hint.key, object: hint.object, hintFor: nil), to: hint.target) { reply in
                    guard case .stored = reply else { return promise.succeed() }
                    self.pool.runIfActive(eventLoop: self.loop) { try store.removeHint(hint) }.whenComplete { removed in
                        if case .success(true) = removed {
                            self.logger.debug("delivered a hint to \(hint.target)")
                            self.hintsDelivered[hint.target, default: 0] += 1
                        }
                        promise.succeed()
                    }
                }
                return promise.futureResult
            }
            EventLoopFuture.andAllComplete(deliveries, on: self.loop).whenComplete { _ in
                self.deliveringHints = false
                // More waiting: go on at once rather than a whole interval later.
                if hints.count == Self.hintBatch { self.deliverHints() }
            }
        }
    }

    /// Drops every link and fails what waits on them (shutdown).
    func closeAllLinks() {
        for link in Array(links.values) { linkClosed(link) }
    }
}
