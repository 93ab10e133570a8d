/// Carrying out the request coordinator's steps, and the views it decides on.
extension NodeMachine {
    /// Where requests go as this node sees the cluster now.
    func routing(now: Now) -> Routing {
        let view = gossip
        let t = now.monotonicMs
        return Routing(
            me: name, n: settings.quorum.n, sloppyQuorum: settings.sloppyQuorum, routingRing: membership.routingRing,
            ring: membership.ring, isReachable: { view.isReachable($0, at: t) })
    }

    func coordinationView(now: Now) -> RequestCoordination.View {
        // A starting node coordinates nothing until it has heard from the cluster (see
        // `RequestCoordination.View.starting`).
        let alone = settings.awaitPeers && membership.current.count == 1 && membership.local.status == .joining
        return .init(
            routing: routing(now: now), dotFloor: dotFloor, starting: !membership.hasJoined || alone,
            departed: membership.local.status == .left)
    }

    mutating func startRead(client: ClientRequestID, key: [UInt8], r: Int?, trace: String? = nil, now: Now) -> [Action] {
        let steps = requests.read(
            client: client, key: key, r: r, routing: routing(now: now), mayReap: clusterSettled(now: now), now: now,
            trace: trace)
        return run(steps, now: now)
    }

    mutating func run(_ steps: [RequestCoordination.Step], now: Now) -> [Action] {
        var actions: [Action] = []
        for step in steps {
            switch step {
            case .replica(let request, let node, let run, let tag):
                actions += replicaRequest(request, to: node, run: run, trace: tag, now: now)
            case .forward(let put, let target, let write):
                actions += send(
                    .coordinatePut(put), to: target, purpose: .forward(write: write, target: target),
                    timeoutMs: settings.quorum.requestTimeoutMs * 2, now: now,
                    trace: put.trace.map { TraceTag(id: $0, message: .forward) })
            case .store(let op, let write):
                let store = storage(op, wait: .coordinate(write: write))
                if !traced.clients.isEmpty || !traced.inbound.isEmpty, case .storage(let token, _)? = store.first,
                    let id = requests.trace(ofWrite: write)
                {
                    traced.storage[token] = TraceTag(id: id, message: .put)
                    if case .coordinateWrite(_, _, _, _, _, let hintFor?, _, _, _) = op {
                        trace(id, .hint, peer: hintFor, now: now)
                    }
                }
                actions += store
            case .readReply(let client, let outcome):
                actions.append(.readReply(client: client, outcome))
            case .writeReply(.client(let id), let result):
                actions.append(.writeReply(client: id, result))
            case .writeReply(.peer(let handle), let result):
                actions.append(.respond(handle: handle, .coordinated(result)))
            case .refuse(let handle, let reason):
                actions.append(.respond(handle: handle, .error(reason)))
            case .watch(let key, let size, let sighting):
                actions += watch(key, size, sighting, now: now)
            case .event(let event):
                actions.append(.event(event))
            }
        }
        return actions
    }

    /// A replica request of a running get or put: served by the local store when `node` is
    /// this node, else sent over the network.
    private mutating func replicaRequest(
        _ request: ReplicaRequest, to node: NodeName, run: RunID, trace tag: TraceTag?, now: Now
    ) -> [Action] {
        guard node == name else {
            return send(
                .replica(request), to: node, purpose: .replica(run: run, node: node),
                timeoutMs: settings.quorum.requestTimeoutMs, now: now, trace: tag)
        }
        let actions = localReplica(request, run: run, now: now)
        if let tag, case .storage(let token, _)? = actions.first { traced.storage[token] = tag }
        return actions
    }

    /// This node's own replica's part of a run.
    private mutating func localReplica(_ request: ReplicaRequest, run: RunID, now: Now) -> [Action] {
        switch request {
        case .get(let key):
            if let refilling {
                return self.run(requests.replied(run: run, from: name, .failed(refilling), now: now), now: now)
            }
            return storage(.read(key: key), wait: .localReplica(run: run))
        case .put(let key, let object, let hintFor):
            return storage(
                .merge(key: key, object: object, hintFor: hintFor == name ? nil : hintFor, sync: true),
                wait: .localReplica(run: run))
        case .reap(let key, let object):
            return storage(.forget(key: key, ifStill: object), wait: .localReplica(run: run))
        }
    }

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
            actions.append(.event(.nearLimit(key: key, size: size, limits: limits, refused: sighting == .refused)))
        }
        return actions
    }
}
