/// Carrying out the components' steps: each becomes storage operations, peer requests
/// and events of the machine.
extension NodeMachine {

    mutating func run(_ steps: [HintDelivery.Step], now: Now) -> [Action] {
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

    mutating func run(_ steps: [OwnershipHandoff.Step], now: Now) -> [Action] {
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

    mutating func run(_ steps: [JoinTransfer.Step], now: Now) -> [Action] {
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

    mutating func run(_ steps: [AntiEntropy.Step], now: Now) -> [Action] {
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

    mutating func run(_ steps: [TombstoneReaper.Step], now: Now) -> [Action] {
        var actions: [Action] = []
        for step in steps {
            switch step {
            case .find(let before, let limit):
                actions += storage(.findTombstones(before: before, limit: limit), wait: .sweep)
            case .read(let key):
                actions += startRead(client: RequestCoordination.internalClient, key: key, r: settings.quorum.n, now: now)
            }
        }
        return actions
    }

    // MARK: Answers and storage results for the components

    /// A batch of a join's pull (nil: the source did not answer).
    mutating func pulled(from node: NodeName, _ response: PeerResponse?, sourceWasUp: Bool, now: Now) -> [Action] {
        var batch: (entries: [KeyedObject], next: [UInt8]?)?
        if case .transfer(let entries, let next) = response { batch = (entries, next) }
        return run(join.received(from: node, batch, sourceIsUp: sourceWasUp, now: now.monotonicMs), now: now)
    }

    /// A key an exchange fetched from its peer (nil: not there, or no answer).
    mutating func fetched(_ key: [UInt8], range: KeyRange, peer: NodeName, _ response: PeerResponse?, now: Now)
        -> [Action]
    {
        var object: VersionedObject?
        if case .replica(.object(let found?)) = response { object = found }
        return run(antiEntropy.fetched(key: key, range: range, peer: peer, object), now: now)
    }

    mutating func hintsLoaded(_ result: StorageResult, now: Now) -> [Action] {
        guard case .hints(let loaded, let total) = result else {
            hints.loadFailed()
            return []
        }
        let steps = hints.loaded(loaded.map { ($0, destination(of: $0, now: now)) }, total: total)
        updateSettled()
        return run(steps, now: now)
    }

    mutating func handoffScanned(_ result: StorageResult, now: Now) -> [Action] {
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
    }

    /// Where a loaded hint goes this round (nil: nowhere reachable).
    func destination(of hint: Hint, now: Now) -> HintDelivery.Destination? {
        let t = now.monotonicMs
        let status = membership.member(hint.target)?.status
        let targetLeft = status == .left || (status == .leaving && !isReachable(hint.target, at: t))
        if targetLeft, let home = routing(now: now).standIn(for: hint) {
            // The intended node left the cluster: its ranges belong to others now. Handed
            // over (`hintFor` the receiver itself): stored synced, as the hint it replaces
            // was, since the hint is deleted once it is taken.
            return .init(node: home, hintFor: home)
        }
        if isReachable(hint.target, at: t) { return .init(node: hint.target, hintFor: hint.target) }
        // Leaving with the target still away: another node keeps the hint for it.
        return routing(now: now).standIn(for: hint).map { .init(node: $0, hintFor: hint.target) }
    }

    // MARK: Settledness (safe tombstone reaping)

    /// Whether tombstones may be reaped now (see `TombstoneReaper.clusterSettled`).
    func clusterSettled(now: Now) -> Bool {
        TombstoneReaper.clusterSettled(membership.members.values)
    }

    mutating func updateSettled() {
        gossip.membership.setLocalSettled(
            TombstoneReaper.isSettled(
                hintsHeld: hints.held, lastPass: handoff.lastPass,
                joining: membership.local.status == .joining))
    }
}
