/// Replica requests this node sent as a coordinator, per peer: how many went out, how many
/// the peer answered (a failure it reports counts: it answered), and how many got no answer
/// in time (a timeout, a refused connection, a cut link). Totals since the node started,
/// for `/metrics` (`dynamo_replica_requests_total`).
public struct PeerTraffic: Hashable, Sendable {
    public struct Counts: Hashable, Sendable {
        public var sent: UInt64 = 0
        public var answered: UInt64 = 0
        public var unanswered: UInt64 = 0
    }

    public private(set) var replicaRequests: [NodeName: Counts] = [:]
    /// Gossip rounds this node started (each one exchange with one peer or seed).
    public private(set) var gossipRounds: UInt64 = 0

    mutating func sent(to node: NodeName) { replicaRequests[node, default: Counts()].sent += 1 }

    mutating func settled(from node: NodeName, answered: Bool) {
        if answered {
            replicaRequests[node, default: Counts()].answered += 1
        } else {
            replicaRequests[node, default: Counts()].unanswered += 1
        }
    }

    mutating func gossipRoundStarted() { gossipRounds += 1 }
}
