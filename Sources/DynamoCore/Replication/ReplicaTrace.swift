/// What one request did with each replica, timed, for a client that asks (`trace on`), as
/// cqlsh's TRACING lists a query's steps: who was sent what, who answered when, who failed
/// or was never waited for. Microseconds since the coordinator took the request.
public struct ReplicaTrace: Hashable, Sendable {
    public struct Replica: Hashable, Sendable {
        public var node: NodeName
        /// The home node a fallback stands in for (it keeps a hint for it).
        public var hintFor: NodeName?
        public var sentUs: UInt64
        /// When its answer came (nil: none by the time the client was answered).
        public var answeredUs: UInt64?
        /// Its answer was a failure (a storage error, a refusal), with the reason.
        public var failure: String?

        public init(
            node: NodeName, hintFor: NodeName?, sentUs: UInt64, answeredUs: UInt64? = nil, failure: String? = nil
        ) {
            self.node = node
            self.hintFor = hintFor
            self.sentUs = sentUs
            self.answeredUs = answeredUs
            self.failure = failure
        }
    }

    /// When the coordinator took the request (monotonic µs).
    var startUs: UInt64
    public private(set) var replicas: [Replica] = []
    /// When the client was answered, µs after the start.
    public private(set) var repliedUs: UInt64?

    public init(startUs: UInt64) { self.startUs = startUs }

    private func since(_ nowUs: UInt64) -> UInt64 { nowUs >= startUs ? nowUs - startUs : 0 }

    mutating func sent(to node: NodeName, hintFor: NodeName?, nowUs: UInt64) {
        guard !replicas.contains(where: { $0.node == node }) else { return }
        replicas.append(Replica(node: node, hintFor: hintFor, sentUs: since(nowUs)))
    }

    mutating func answered(_ node: NodeName, failure: String?, nowUs: UInt64) {
        guard let index = replicas.firstIndex(where: { $0.node == node }), replicas[index].answeredUs == nil else {
            return
        }
        replicas[index].answeredUs = since(nowUs)
        replicas[index].failure = failure
    }

    mutating func replied(nowUs: UInt64) {
        if repliedUs == nil { repliedUs = since(nowUs) }
    }
}
