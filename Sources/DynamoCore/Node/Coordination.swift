/// Coordinating client requests: reads over the key's replicas (with read repair), and
/// writes routed to a coordinator among the key's first N healthy nodes, stored there and
/// replicated with a sloppy quorum.
extension NodeMachine {
    // MARK: Reads

    /// The first N healthy nodes of the key's preference list on the routing ring. Without
    /// hinted handoff a fallback's copy could never reach its home node, so the quorum is
    /// strict: healthy home nodes only.
    func replicas(for key: [UInt8], now: Now) -> [HintedReplica] {
        let sloppy = membership.routingRing.preferenceList(forKey: key).sloppyReplicas(n: settings.quorum.n) {
            isReachable($0, at: now.monotonicMs)
        }
        return settings.sloppyQuorum ? sloppy : sloppy.filter { $0.hintFor == nil }
    }

    /// Reads also ask the key's home nodes counting joining and leaving members, so while
    /// ranges move, the data is found on its old and its new owners alike.
    func readReplicas(for key: [UInt8], now: Now) -> [HintedReplica] {
        var replicas = replicas(for: key, now: now)
        for node in membership.ring.preferenceList(forKey: key).home(settings.quorum.n)
        where isReachable(node, at: now.monotonicMs) && !replicas.contains(where: { $0.node == node }) {
            replicas.append(HintedReplica(node: node, hintFor: nil))
        }
        return replicas
    }

    mutating func startRead(client: ClientRequestID, key: [UInt8], r: Int?, now: Now) -> [Action] {
        let coordinator = GetCoordinator(
            key: key, replicas: readReplicas(for: key, now: now), r: r ?? settings.quorum.r, policy: settings.clocks,
            now: now.monotonicMs, config: settings.quorum, wallNow: now.wallMs, mayReap: clusterSettled(now: now))
        let id: RunID = newID()
        gets[id] = GetRun(coordinator: coordinator, client: client)
        return runGet(id, now: now) { $0.start() }
    }

    mutating func runGet(_ id: RunID, now: Now, _ event: (inout GetCoordinator) -> [GetCoordinator.Action])
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
                    actions.append(.event(.readRepair(key: run.coordinator.key, peer: node)))
                }
                if case .reap = request {
                    actions.append(.event(.tombstoneReaped(key: run.coordinator.key, peer: node)))
                }
                actions += replicaRequest(request, to: node, run: id, now: now)
            case .respond(let outcome):
                if run.client != Self.internalClient, outcome.succeeded {
                    actions += watch(run.coordinator.key, outcome.object.size, .read, now: now)
                }
                if outcome.object.versions.count > 1 {
                    actions.append(
                        .event(.siblingsRead(key: run.coordinator.key, count: outcome.object.versions.count)))
                }
                if run.client != Self.internalClient { actions.append(.readReply(client: run.client, outcome)) }
            }
        }
        return actions
    }

    /// A replica request of a running get or put: served by the local store when `node` is
    /// this node, else sent over the network.
    mutating func replicaRequest(_ request: ReplicaRequest, to node: NodeName, run: RunID, now: Now)
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

    mutating func replicaReplied(run: RunID, node: NodeName, _ reply: ReplicaReply, now: Now) -> [Action] {
        if gets[run] != nil { return runGet(run, now: now) { $0.receive(from: node, reply) } }
        if puts[run] != nil { return runPut(run, now: now) { $0.receive(from: node, reply, now: now.monotonicMs) } }
        return []
    }

    // MARK: Object limits

    /// Notes a key's size as seen by a write, a refused write or a read: a key at or past a
    /// warning is listed (and told as an event when it was not), one below leaves the list.
    mutating func watch(_ key: [UInt8], _ size: ObjectSize, _ sighting: HotKeys.Sighting, now: Now)
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
            actions.append(.event(.nearLimit(key: key, size: size, limits: limits, refused: sighting == .refused)))
        }
        return actions
    }

    // MARK: Writes

    /// A client write: coordinated here when this node is among the key's first N healthy
    /// nodes (home nodes first, then fallbacks), else forwarded to them in order.
    mutating func routeWrite(_ requester: Requester, _ put: ForwardedPut, now: Now) -> [Action] {
        let replicas = replicas(for: put.key, now: now)
        if replicas.isEmpty || replicas.contains(where: { $0.node == name }) {
            return coordinateHere(requester, put, now: now)
        }
        return forward(requester, put, candidates: replicas.map(\.node), now: now)
    }

    mutating func forward(
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
    mutating func coordinateHere(_ requester: Requester, _ put: ForwardedPut, now: Now) -> [Action] {
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
            sync: settings.durability.syncsCoordinatorWrites, counterFloor: dotFloor, limits: settings.objectLimits)
        return hintKept(put.key, for: hintFor)
            + storage(
                op,
                wait: .coordinate(requester: requester, put: put, replicas: replicas)
            )
    }

    /// The key's extended preference list, in order, without this node, the `excluded`
    /// ones and those it cannot reach: where a write or hint can go instead.
    func reachablePreference(forKey key: [UInt8], excluding excluded: Set<NodeName>, now: Now) -> [NodeName] {
        membership.routingRing.preferenceList(forKey: key).nodes.filter { node in
            node != name && !excluded.contains(node) && isReachable(node, at: now.monotonicMs)
        }
    }

    /// Who takes a hint its target cannot: a reachable node of the key's preference list
    /// (not this one, not the target), home nodes first, and among those first one that made
    /// none of its versions. A version's coordinator already holds it: handing the hint there
    /// would leave one copy of a write that was acknowledged with two. (Found by the
    /// simulator: such a copy was then lost with a log tail.)
    func standIn(for hint: Hint, now: Now) -> NodeName? {
        let candidates = reachablePreference(forKey: hint.key, excluding: [hint.target], now: now)
        let home = Set(membership.routingRing.preferenceList(forKey: hint.key).home(settings.quorum.n))
        let makers = Set(hint.object.versions.map(\.dot.actor))
        return candidates.first { home.contains($0) && !makers.contains($0) } ?? candidates.first
    }

    mutating func replicate(
        _ requester: Requester, key: [UInt8], version: Version, replicas: [HintedReplica], w: Int, now: Now
    ) -> [Action] {
        // With a sloppy quorum, a replica that fails is replaced by the next healthy node of
        // the preference list within this request (with a hint for it).
        let fallbacks =
            settings.sloppyQuorum
            ? reachablePreference(forKey: key, excluding: Set(replicas.map(\.node)), now: now) : []
        let coordinator = PutCoordinator(
            key: key, object: VersionedObject(versions: [version]), replicas: replicas, coordinator: name,
            localStored: true, w: w, now: now.monotonicMs, timeoutMs: settings.quorum.requestTimeoutMs,
            fallbacks: fallbacks)
        let id: RunID = newID()
        puts[id] = PutRun(coordinator: coordinator, requester: requester, version: version)
        return runPut(id, now: now) { $0.start() }
    }

    mutating func runPut(_ id: RunID, now: Now, _ event: (inout PutCoordinator) -> [PutCoordinator.Action])
        -> [Action]
    {
        guard var run = puts[id] else { return [] }
        let steps = event(&run.coordinator)
        // Only the coordinator says when a run is over: it answers first (at the latest on
        // the tick after its deadline). Dropping a run once the deadline passed, before the
        // tick, lost the answer of a write whose last reply came in between: its client
        // waited for ever (found by an attack review; the simulator now checks every request
        // is answered).
        puts[id] = run.coordinator.isFinished(now: now.monotonicMs) ? nil : run
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

    /// The store answered a write coordinated here: replicate the new version, or tell the
    /// client why not, or (this node cannot store it) let another replica coordinate it.
    mutating func coordinated(
        _ requester: Requester, _ put: ForwardedPut, replicas: [HintedReplica], _ result: StorageResult, now: Now
    ) -> [Action] {
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
            if settings.sloppyQuorum {
                others += reachablePreference(forKey: put.key, excluding: Set(others), now: now)
            }
            return forward(requester, put, candidates: others, failedHere: reason, now: now)
        }
    }

    /// A replica's answer (nil: none in time) to a request of run `run`.
    mutating func replicaAnswered(run: RunID, node: NodeName, _ response: PeerResponse?, now: Now) -> [Action] {
        let reply: ReplicaReply
        switch response {
        case .replica(let value): reply = value
        case .error(let reason): reply = .failed(reason)
        case nil: reply = .failed("no answer from \(node)")
        default: reply = .failed("unexpected answer from \(node)")
        }
        return replicaReplied(run: run, node: node, reply, now: now)
    }

    /// A forwarded write was coordinated there, or goes to the next candidate.
    mutating func forwardAnswered(
        _ requester: Requester, _ put: ForwardedPut, remaining: [NodeName], failedHere: String?,
        _ response: PeerResponse?, now: Now
    ) -> [Action] {
        if case .coordinated(let result) = response { return answer(requester, .write(result)) }
        return forward(requester, put, candidates: remaining, failedHere: failedHere, now: now)
    }

    // MARK: Runs and answers

    struct GetRun {
        var coordinator: GetCoordinator
        var client: ClientRequestID
    }

    struct PutRun {
        var coordinator: PutCoordinator
        var requester: Requester
        var version: Version
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
}
