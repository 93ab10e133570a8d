/// Hinted handoff, the holder's side: every interval (at once after a full batch) a round
/// loads a batch of the hints this node holds for nodes it can reach and offers each to its
/// destination. A hint is deleted only after the destination acknowledged storing it, and
/// only if it did not change meanwhile (then it waits for the next round).
///
/// Pure: `NodeMachine` carries out its steps (storage, messages) and feeds the answers back.
public struct HintDelivery: Sendable {
    /// Where the current round stands.
    public enum State: Hashable, Sendable {
        case idle
        /// Waiting for the store to load a batch.
        case loading
        /// Offers and removals still unanswered; `batchFull`: more hints wait for the next round.
        case delivering(outstanding: Int, batchFull: Bool)
    }

    /// What the node does for the component.
    public enum Step: Hashable, Sendable {
        /// Load up to `limit` hints held for any of `targets` (answer: `loaded`).
        case load(limit: Int, targets: Set<NodeName>)
        /// Send `hint` to `node`, to be kept there for `hintFor` (the node itself: as its own
        /// data; answer: `offered`).
        case offer(Hint, to: NodeName, hintFor: NodeName)
        /// Delete the delivered hint unless it changed (answer: `removed`).
        case remove(Hint)
        case event(NodeEvent)
    }

    /// Where a loaded hint goes: its target, or (when the target left the cluster, or this
    /// node leaves without it) another node of the key's preference list.
    public struct Destination: Hashable, Sendable {
        public var node: NodeName
        public var hintFor: NodeName

        public init(node: NodeName, hintFor: NodeName) {
            self.node = node
            self.hintFor = hintFor
        }
    }

    /// Hints loaded per round.
    public static let batch = 64

    public private(set) var state: State = .idle
    /// Monotonic ms of the next round.
    public private(set) var nextRoundAt: UInt64
    /// Hints delivered, per target.
    public private(set) var delivered: [NodeName: Int] = [:]
    /// Hints held in all, as of the last load (nil: not known yet).
    public private(set) var held: Int?
    private let intervalMs: UInt64

    public init(intervalMs: UInt64) {
        self.intervalMs = intervalMs
        self.nextRoundAt = intervalMs
    }

    /// Starts a round when one is due and none runs; `targets` are the nodes hints may go to.
    public mutating func tick(now: UInt64, targets: () -> Set<NodeName>) -> [Step] {
        guard now >= nextRoundAt else { return [] }
        nextRoundAt = now + intervalMs
        guard state == .idle else { return [] }
        state = .loading
        return [.load(limit: Self.batch, targets: targets())]
    }

    /// The next round starts at the next tick (the node is leaving).
    public mutating func hurry() { nextRoundAt = 0 }

    /// The store loaded a batch, each hint with where it goes this round (nil: nowhere
    /// reachable), and counted every hint held.
    public mutating func loaded(_ hints: [(hint: Hint, destination: Destination?)], total: Int) -> [Step] {
        guard state == .loading else { return [] }
        held = total
        var steps: [Step] = []
        for case (let hint, let destination?) in hints {
            steps.append(.offer(hint, to: destination.node, hintFor: destination.hintFor))
        }
        state = .delivering(outstanding: steps.count, batchFull: hints.count == Self.batch)
        return steps + finishIfDone()
    }

    /// The store could not load: the round ends (what is held stays as last counted).
    public mutating func loadFailed() {
        if state == .loading { state = .idle }
    }

    /// A destination answered an offer (or did not: `accepted` false).
    public mutating func offered(_ hint: Hint, accepted: Bool) -> [Step] {
        guard case .delivering = state else { return [] }
        if accepted { return [.remove(hint)] }
        return answered()
    }

    /// The store deleted a delivered hint, or kept it because it changed meanwhile.
    public mutating func removed(_ hint: Hint, _ removed: Bool) -> [Step] {
        guard case .delivering = state else { return [] }
        var steps: [Step] = []
        if removed {
            delivered[hint.target, default: 0] += 1
            steps.append(.event(.hintDelivered(target: hint.target)))
        }
        return steps + answered()
    }

    private mutating func answered() -> [Step] {
        guard case .delivering(let outstanding, let batchFull) = state else { return [] }
        state = .delivering(outstanding: max(0, outstanding - 1), batchFull: batchFull)
        return finishIfDone()
    }

    private mutating func finishIfDone() -> [Step] {
        guard case .delivering(0, let batchFull) = state else { return [] }
        state = .idle
        // A full batch means more are waiting: go on at the next tick, not an interval later.
        if batchFull { nextRoundAt = 0 }
        return []
    }
}
