/// Membership and failure detection as this node runs them: gossip rounds with seeds and
/// random members, what each answer tells (new members, a later life of this node, its own
/// rejoin), every request's answer fed to the failure detector, and injected faults that
/// cut peers off. It turns changes of its view into events, each told once.
///
/// Pure: `NodeMachine` sends the rounds and feeds the answers back.
public struct Gossip: Sendable {
    /// A gossip message to send: to a member, or to a seed known only by its address.
    public struct Round: Hashable, Sendable {
        public var address: String
        public var target: NodeName?
        public var request: PeerRequest
    }

    /// What a gossip message told this node.
    public struct Heard: Hashable, Sendable {
        /// Members whose rows were refused (each reported once).
        public var refused: [NodeName] = []
        /// The cluster remembers a later life of this node: it took a new generation.
        public var outlivedEarlierSelf = false
        /// The ring changed (nil: it did not); the members it did not know before.
        public var learned: [NodeName]?
        /// This restarted node heard from the cluster: it may be up again (`rejoin`).
        public var mayRejoin = false
    }

    public internal(set) var membership: Membership
    /// Peers cut off by an injected fault.
    public private(set) var dropped: Set<NodeName> = []
    /// Each member's status as last reported in an event, so changes are told once.
    private var observed: [NodeName: MemberStatus] = [:]
    private var refused: Set<NodeName> = []
    /// A departed node's last word (nil until it departs).
    private var farewell: Farewell?
    private var nextRoundAt: UInt64 = 0
    private let intervalMs: UInt64
    private let freshIdentity: Bool

    public init(membership: Membership, intervalMs: UInt64, freshIdentity: Bool) {
        self.membership = membership
        self.intervalMs = intervalMs
        self.freshIdentity = freshIdentity
    }

    private var me: NodeName { membership.local.name }

    /// Whether requests may go to `node` now: this node, or a member the failure detector
    /// does not suspect and no injected fault cuts off.
    public func isReachable(_ node: NodeName, at now: UInt64) -> Bool {
        node == me || (membership.isAvailable(node, at: now) && !dropped.contains(node))
    }

    /// The member's status as this node sees it (`down` when cut off by a fault too).
    public func status(of node: NodeName, at now: UInt64) -> MemberStatus? {
        if node != me, dropped.contains(node), membership.member(node) != nil { return .down }
        return membership.status(of: node, at: now)
    }

    /// Drops all traffic with `drop` (fault injection); an event when that changed.
    public mutating func setFaults(drop: Set<NodeName>) -> [NodeEvent] {
        let previous = dropped
        dropped = drop.subtracting([me])
        return dropped == previous ? [] : [.faults(dropped: dropped.sorted())]
    }

    /// Records whether `node` answered this node, and says so when that changes its view.
    public mutating func noteAnswer(from node: NodeName, answered: Bool, now: UInt64) -> [NodeEvent] {
        guard node != me, membership.member(node) != nil else { return [] }
        let before = membership.isAvailable(node, at: now)
        if answered {
            membership.requestSucceeded(to: node)
        } else {
            membership.requestFailed(to: node, at: now)
        }
        let after = membership.isAvailable(node, at: now)
        return before == after ? [] : [.reachability(peer: node, reachable: after)]
    }

    /// When a round is due: the messages to send, and events for members whose status
    /// changed since last told.
    public mutating func tick(now: UInt64, rng: inout SeededRandom) -> (rounds: [Round], events: [NodeEvent]) {
        guard now >= nextRoundAt else { return ([], []) }
        nextRoundAt = now + intervalMs
        var rounds: [Round] = []
        for case .gossip(let address, let digests) in membership.tick(now: now, rng: &rng) {
            let target = membership.member(atAddress: address)?.name
            if let target, dropped.contains(target) { continue }
            rounds.append(Round(address: address, target: target, request: .gossipDigest(digests)))
        }
        return (rounds, statusChanges(now: now))
    }

    /// The table as told to peers. A known node that restarts (not a fresh identity) is
    /// `joining` for itself only until its first gossip exchange, but it never left the
    /// ring: it tells the others it is `up`, so they do not route its ranges elsewhere for
    /// that moment (and move data back and forth).
    public func announced(_ members: [Member]) -> [Member] {
        guard membership.local.status == .joining, !freshIdentity else { return members }
        return members.map { member in
            var member = member
            if member.name == me { member.status = .up }
            return member
        }
    }

    /// The ACK to a peer's SYN: our rows newer than its, and the versions we want.
    public func answer(to digests: [MemberDigest]) -> PeerResponse {
        let (rows, wanted) = GossipDigest.answer(to: digests, from: announced(membership.table))
        return .gossipDelta(rows: rows, wanted: wanted)
    }

    /// The ACK2 to a peer's ACK: the rows it asked for (nil: it asked for none).
    public func rows(for wanted: [MemberDigest]) -> PeerRequest? {
        let rows = GossipDigest.rows(wanted, from: announced(membership.table))
        return rows.isEmpty ? nil : .gossipRows(rows)
    }

    private mutating func statusChanges(now: UInt64) -> [NodeEvent] {
        var events: [NodeEvent] = []
        for member in membership.table where member.name != me {
            guard let status = status(of: member.name, at: now) else { continue }
            let before = observed.updateValue(status, forKey: member.name)
            guard let before, before != status else { continue }
            let why: NodeEvent.MarkReason?
            switch status {
            case .down where dropped.contains(member.name): why = .partition
            case .down:
                let phi = membership.detector.phi(of: member.name, at: now)
                why =
                    phi >= membership.detector.threshold && phi.isFinite ? .phi((phi * 10).rounded() / 10) : .unanswered
            default: why = nil
            }
            events.append(.marked(peer: member.name, status: status, why: why))
        }
        return events
    }

    /// Merges a peer's rows into the view (state rows take the identity we hold).
    public mutating func receive(_ rows: [GossipRow], now: UInt64) -> Heard {
        receive(membership.resolve(rows), now: now)
    }

    /// Merges a peer's gossip into the view.
    public mutating func receive(_ members: [Member], now: UInt64) -> Heard {
        let before = Set(membership.members.keys)
        var heard = Heard()
        let outcome = membership.receive(members, now: now)
        for case .refused(let member) in outcome where refused.insert(member).inserted {
            heard.refused.append(member)
        }
        heard.outlivedEarlierSelf = outcome.contains(.outlivedEarlierSelf)
        if outcome.contains(.ringChanged) {
            heard.learned = Set(membership.members.keys).subtracting(before).sorted()
        }
        heard.mayRejoin = membership.local.status == .joining && membership.hasJoined && !freshIdentity
        return heard
    }

    // MARK: Departing

    /// A departing node pushes its `left` row to every member, and again while none has
    /// taken it: once it exits nobody else can say it left, and the others would see it
    /// `leaving`, then `down`, for ever (which also holds up tombstone reaping). It holds
    /// nothing by then, so waiting costs nothing.
    struct Farewell: Sendable {
        var waiting: Set<NodeName>
        var heard = false
    }

    /// The node handed everything off: it declares itself `left` and says so to every member.
    public mutating func depart(now: UInt64) -> [Round] {
        guard membership.local.status == .leaving else { return [] }
        membership.setLocalStatus(.left, now: now)
        return farewellRound()
    }

    private mutating func farewellRound() -> [Round] {
        let targets = membership.current.filter { $0.name != me && !dropped.contains($0.name) }.sorted { $0.name < $1.name }
        var next = farewell ?? Farewell(waiting: [])
        next.waiting = Set(targets.map(\.name))
        // (With nobody to tell, there is nothing to wait for.)
        next.heard = next.heard || targets.isEmpty
        farewell = next
        // Its own row is all it has to say (whole: a member that missed its generation
        // still takes it).
        let farewell = PeerRequest.gossipRows([.full(membership.local)])
        return targets.map { Round(address: $0.peerAddress, target: $0.name, request: farewell) }
    }

    /// A member answered the farewell (or did not): another round when none took it.
    public mutating func farewellAnswered(by node: NodeName, answered: Bool) -> [Round] {
        guard var current = farewell, current.waiting.remove(node) != nil else { return [] }
        current.heard = current.heard || answered
        farewell = current
        guard current.waiting.isEmpty, !current.heard else { return [] }
        return farewellRound()
    }

    /// Whether a departed node has said farewell (a member took its `left` row): the shell
    /// may exit.
    public var hasDeparted: Bool { farewell.map { $0.waiting.isEmpty && $0.heard } ?? false }

    /// A restarted node heard from the cluster (`Heard.mayRejoin`): it is up again. (Kept
    /// apart from `receive`, so trees planned on the new ring see it still joining, as a
    /// node replanning them on its next tick expects.)
    public mutating func rejoin(now: UInt64) -> NodeEvent {
        membership.setLocalStatus(.up, now: now)
        return .rejoined(members: membership.members.count)
    }
}
