/// Drives one write: the coordinator has already stored the new version locally; this
/// sends it to the other replicas and answers once W replicas (counting itself) acked.
///
/// A pure state machine: the runtime feeds it replies and clock ticks and executes the
/// actions it returns, so the same code runs over TCP and inside the simulator.
public struct PutCoordinator: Sendable {
    public enum Action: Hashable, Sendable {
        case send(to: NodeName, ReplicaRequest)
        case respond(Outcome)
    }

    public struct Outcome: Hashable, Sendable {
        public var succeeded: Bool
        /// Replicas that acknowledged in time (the coordinator first).
        public var acks: [NodeName]
        public var required: Int
    }

    public let key: [UInt8]
    /// The new version as a one-version object: merging it into a replica applies the write.
    public let object: VersionedObject
    /// Every replica asked so far: the first ones, then fallbacks that stood in for failures.
    public private(set) var replicas: [HintedReplica]
    public let coordinator: NodeName
    public let w: Int
    private let deadline: UInt64
    /// Further healthy nodes of the preference list, in order (sloppy quorum only).
    private var fallbacks: [NodeName]
    private var acks: [NodeName] = []
    private var failures: Set<NodeName> = []
    private var answered = false

    /// - Parameters:
    ///   - localStored: whether the coordinator's own write succeeded (it counts as an ack).
    ///   - fallbacks: nodes to send a failed replica's write to instead (with a hint for the
    ///     node it was meant for), in preference-list order: a replica that refuses the
    ///     connection or fails is replaced within the same request, while the deadline
    ///     allows, so a crash does not cost writes the sloppy quorum can take (the paper's
    ///     "always writeable").
    public init(
        key: [UInt8], object: VersionedObject, replicas: [HintedReplica], coordinator: NodeName,
        localStored: Bool, w: Int, now: UInt64, timeoutMs: UInt64, fallbacks: [NodeName] = []
    ) {
        self.key = key
        self.object = object
        self.replicas = replicas
        self.coordinator = coordinator
        self.w = w
        self.deadline = now + timeoutMs
        self.fallbacks = fallbacks.filter { node in !replicas.contains { $0.node == node } }
        if localStored { acks.append(coordinator) } else { failures.insert(coordinator) }
    }

    /// Sends the version to every other replica, and answers at once if W is already met.
    public mutating func start() -> [Action] {
        var actions: [Action] = replicas.filter { $0.node != coordinator }.map {
            .send(to: $0.node, .put(key: key, object: object, hintFor: $0.hintFor))
        }
        actions += decide()
        return actions
    }

    public mutating func receive(from node: NodeName, _ reply: ReplicaReply, now: UInt64 = 0) -> [Action] {
        guard let replica = replicas.first(where: { $0.node == node }), !acks.contains(node), !failures.contains(node)
        else {
            return []
        }
        if case .stored = reply {
            acks.append(node)
            return decide()
        }
        failures.insert(node)
        if now >= deadline { fallbacks = [] }
        // Send its copy to the next fallback, as a hint for the node it was meant for.
        var actions: [Action] = []
        if !answered, now < deadline, !fallbacks.isEmpty {
            let standIn = fallbacks.removeFirst()
            let home = replica.hintFor ?? replica.node
            replicas.append(HintedReplica(node: standIn, hintFor: home))
            actions.append(.send(to: standIn, .put(key: key, object: object, hintFor: home)))
        }
        return actions + decide()
    }

    public mutating func tick(now: UInt64) -> [Action] {
        guard !answered, now >= deadline else { return [] }
        answered = true
        return [.respond(outcome(succeeded: false))]
    }

    /// True once answered and every replica has replied (or the deadline passed).
    public func isFinished(now: UInt64) -> Bool {
        answered && (acks.count + failures.count == replicas.count || now >= deadline)
    }

    private mutating func decide() -> [Action] {
        guard !answered else { return [] }
        if acks.count >= w {
            answered = true
            return [.respond(outcome(succeeded: true))]
        }
        // Give up only once W cannot be reached with the replies and fallbacks left.
        if replicas.count - failures.count + fallbacks.count < w {
            answered = true
            return [.respond(outcome(succeeded: false))]
        }
        return []
    }

    private func outcome(succeeded: Bool) -> Outcome {
        Outcome(succeeded: succeeded, acks: acks, required: w)
    }
}
