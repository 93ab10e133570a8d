/// Serving peers: replica reads and writes, tree questions, pulls and forwarded writes.
extension NodeMachine {

    /// Why this node's own copy must not answer reads yet: it is new, or refilling after
    /// losing data, and has not pulled its ranges (its copy would say "not found" for keys
    /// the cluster holds). Writes it still takes: they are new data to keep.
    var refilling: String? {
        guard settings.freshIdentity, membership.local.status == .joining else { return nil }
        return "\(name) is still pulling its ranges (new, or refilling after losing data)"
    }

    mutating func serve(handle: PeerHandle, from peer: NodeName, _ request: PeerRequest, now: Now) -> [Action] {
        // A cut-off peer's requests vanish, as if the network lost them.
        if dropped.contains(peer) { return [.ignore(handle: handle)] }
        // A node that left takes no data any more: the sender's next replica or fallback
        // does (it exits as soon as a member heard it left). A forwarded write is refused
        // by `RequestCoordination`, as a client's is.
        if membership.local.status == .left, case .replica = request {
            return [.respond(handle: handle, .replica(.failed("\(name) left the cluster")))]
        }
        switch request {
        case .traced(let tag, let inner):
            // Only a well-formed, single wrapper is traced (the codec refuses others).
            guard TraceTag.isValid(id: tag.id) else { return serve(handle: handle, from: peer, inner, now: now) }
            traced.inbound[handle] = (tag, peer)
            trace(tag.id, .receive, peer: peer, message: tag.message, now: now)
            var inner = inner
            switch inner {
            case .replica(.put(_, _, let hintFor?)) where hintFor != name:
                trace(tag.id, .hint, peer: hintFor, now: now)
            case .coordinatePut(var put):
                put.trace = tag.id
                inner = .coordinatePut(put)
            default:
                break
            }
            return serve(handle: handle, from: peer, inner, now: now)
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
        case .gossipDigest(let digests):
            return [.respond(handle: handle, gossip.answer(to: digests))]
        case .gossipRows(let rows):
            return receiveGossip(rows, now: now) + [.respond(handle: handle, .gossipDelta(rows: [], wanted: []))]
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
            return run(requests.coordinate(.peer(handle), put, view: coordinationView(now: now), now: now), now: now)
        }
    }

    /// What a replica request expects of its storage result.
    enum ReplicaKind { case get, put }

    /// A replica's answer from its storage result: an object for a get, stored for a put
    /// (`serving` nil: this node's own replica of a run, which takes either).
    static func replicaReply(to serving: ReplicaKind?, _ result: StorageResult) -> ReplicaReply {
        switch result {
        case .object(let object) where serving != .put: .object(object)
        case .stored where serving != .get, .removed where serving != .get: .stored
        case .failed(let reason): .failed(reason)
        case .refused(let refusal): .failed(refusal.description)
        default: .failed("unexpected storage result")
        }
    }

    /// The batch a joining node pulls, from a scan of this node's own keys.
    func transfer(_ result: StorageResult, for requester: Member) -> PeerResponse {
        guard case .entries(let entries) = result else { return .error("cannot scan for a transfer") }
        let (selected, next) = JoinTransfer.transfer(
            entries, scanLimit: OwnershipHandoff.batch, for: requester, on: membership.ring, n: settings.quorum.n)
        return .transfer(entries: selected, next: next)
    }
}
