/// Drives one read: asks the key's replicas, answers with the merge of the first R
/// replies, then keeps collecting late replies and read-repairs every replica that
/// answered with stale or missing data.
public struct GetCoordinator: Sendable {
    public enum Action: Hashable, Sendable {
        case send(to: NodeName, ReplicaRequest)
        case respond(Outcome)
    }

    public struct Outcome: Hashable, Sendable {
        public var succeeded: Bool
        /// The merge of every reply so far (empty when no replica has the key).
        public var object: VersionedObject
        /// Replicas whose replies were used.
        public var replies: [NodeName]
        public var required: Int
        /// Every replica asked, fallbacks with the home node they stand in for (for tracing).
        public var asked: [HintedReplica] = []
        /// Replicas that answered with a failure (a storage error, say), with its reason:
        /// a read that fails for that is not reported as a timeout.
        public var failed: [NodeName: String] = [:]
        /// Each replica asked, and when it answered (set by `RequestCoordination`).
        public var trace: ReplicaTrace?
    }

    public let key: [UInt8]
    /// The replicas asked; a fallback's `hintFor` is where its repairs go.
    public let replicas: [HintedReplica]
    public let r: Int
    private let policy: ClockPolicy
    private let deadline: UInt64
    private let repairDeadline: UInt64
    private let n: Int
    /// Tombstones written before this wall-clock time may be reaped (0: none may).
    private let reapBefore: UInt64
    private var replies: [(node: NodeName, object: VersionedObject?)] = []
    private var failures: Set<NodeName> = []
    private var reasons: [NodeName: String] = [:]
    private var answered = false
    private var repaired = false

    public init(
        key: [UInt8], replicas: [HintedReplica], r: Int, policy: ClockPolicy, now: UInt64, config: QuorumConfig,
        wallNow: UInt64 = 0, mayReap: Bool = true
    ) {
        self.n = config.n
        self.reapBefore = mayReap && wallNow > config.tombstoneGraceMs ? wallNow - config.tombstoneGraceMs : 0
        self.key = key
        self.replicas = replicas
        self.r = r
        self.policy = policy
        self.deadline = now + config.requestTimeoutMs
        self.repairDeadline = now + config.requestTimeoutMs + config.readRepairWindowMs
    }

    public mutating func start() -> [Action] {
        replicas.map { .send(to: $0.node, .get(key: key)) } + decide()
    }

    public mutating func receive(from node: NodeName, _ reply: ReplicaReply) -> [Action] {
        guard replicas.contains(where: { $0.node == node }), !failures.contains(node),
            !replies.contains(where: { $0.node == node })
        else {
            return []
        }
        switch reply {
        case .object(let object): replies.append((node, object))
        case .stored: failures.insert(node)
        case .failed(let reason):
            failures.insert(node)
            reasons[node] = reason
        }
        return decide() + repairIfComplete()
    }

    public mutating func tick(now: UInt64) -> [Action] {
        var actions: [Action] = []
        if !answered, now >= deadline {
            answered = true
            actions.append(.respond(outcome(succeeded: false)))
        }
        if now >= repairDeadline { actions += repair() }
        return actions
    }

    public var isFinished: Bool { answered && repaired }

    /// The merge of every reply received so far.
    public var merged: VersionedObject {
        replies.reduce(VersionedObject()) { $0.merged(with: $1.object ?? VersionedObject(), policy: policy) }
    }

    private mutating func decide() -> [Action] {
        guard !answered else { return [] }
        if replies.count >= r {
            answered = true
            return [.respond(outcome(succeeded: true))]
        }
        if replicas.count - failures.count < r {
            answered = true
            return [.respond(outcome(succeeded: false))]
        }
        return []
    }

    private mutating func repairIfComplete() -> [Action] {
        replies.count + failures.count == replicas.count ? repair() : []
    }

    /// Pushes the reconciled object to each replica that answered without it; or, when
    /// every home replica answered with the same old tombstone (or with nothing: it reaped
    /// already, or never had the key), tells the holders to reap it.
    private mutating func repair() -> [Action] {
        guard !repaired else { return [] }
        repaired = true
        let merged = self.merged
        guard !merged.isEmpty else { return [] }
        let oldTombstone = merged.isDeleted && merged.versions.allSatisfy { $0.timestamp < reapBefore }
        if oldTombstone, replies.count == n, replicas.count == n, replicas.allSatisfy({ $0.hintFor == nil }),
            replies.allSatisfy({ $0.object == nil || $0.object == merged })
        {
            return replies.filter { $0.object != nil }.map { .send(to: $0.node, .reap(key: key, object: merged)) }
        }
        return replies.compactMap { reply in
            guard reply.object != merged else { return nil }
            // An empty replica cannot bring an old deleted value back, and may have just
            // reaped it: spreading the tombstone again would only undo the reaping.
            if reply.object == nil, oldTombstone { return nil }
            let hintFor = replicas.first { $0.node == reply.node }?.hintFor
            return .send(to: reply.node, .put(key: key, object: merged, hintFor: hintFor))
        }
    }

    private func outcome(succeeded: Bool) -> Outcome {
        Outcome(
            succeeded: succeeded, object: merged, replies: replies.map(\.node), required: r, asked: replicas,
            failed: reasons)
    }
}
