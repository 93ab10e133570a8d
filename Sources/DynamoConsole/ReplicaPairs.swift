public import DynamoAPI

extension DashboardModel {
    /// What two replicas' Merkle comparisons say about the ranges they share.
    public struct ReplicaPair: Sendable, Equatable {
        public var a: String
        public var b: String
        /// Ranges the two both hold, by either node's list of its current ranges.
        public var ranges = 0
        /// Of those, ranges compared at least once since they became the pair's.
        public var compared = 0
        public var inSync = 0
        /// Keys that differed in the last comparison of each range not in sync.
        public var differing = 0
        /// Of those, keys the comparing node copied from the other since.
        public var repaired = 0
        /// How long ago the oldest of the last comparisons was: every compared range was
        /// compared within this (nil: none compared).
        public var oldestMsAgo: UInt64?
        /// How long ago the latest comparison of a range not in sync was.
        public var differingMsAgo: UInt64?
        /// A node of the pair that is down (does not answer): nothing it says is current.
        public var down: String?
        public var differingRanges: [StatusDocument.AntiEntropy.Exchange] = []

        /// Every shared range was compared and found equal, with both nodes up.
        public var allInSync: Bool { down == nil && ranges > 0 && inSync == ranges }
    }

    /// Each replica pair's latest comparison of every range they share now, from both
    /// sides. Ranges are those the nodes list as theirs (`tracked`); a comparison of a range
    /// no longer listed is not counted.
    public var replicaPairs: [ReplicaPair] {
        var shared: [String: Set<String>] = [:]
        var latest: [String: [String: StatusDocument.AntiEntropy.Exchange]] = [:]
        let answering = Set(nodes.filter(\.answering).map(\.name))
        func key(_ x: String, _ y: String) -> String { [x, y].sorted().joined(separator: "|") }
        for node in nodes where node.answering {
            guard let ae = node.status?.antiEntropy else { continue }
            for tracked in ae.tracked ?? [] {
                for peer in tracked.peers { shared[key(node.name, peer), default: []].insert(tracked.range) }
            }
            for exchange in ae.ranges {
                let pair = key(node.name, exchange.peer)
                // A node before `tracked` lists only what it compared.
                if ae.tracked == nil { shared[pair, default: []].insert(exchange.range) }
                if let seen = latest[pair]?[exchange.range], seen.lastComparedMsAgo <= exchange.lastComparedMsAgo {
                    continue
                }
                latest[pair, default: [:]][exchange.range] = exchange
            }
        }
        return shared.keys.sorted().map { pair in
            let sides = pair.split(separator: "|").map(String.init)
            var summary = ReplicaPair(a: sides[0], b: sides.count > 1 ? sides[1] : "?")
            summary.down = sides.first { !answering.contains($0) }
            let ranges = shared[pair]!
            summary.ranges = ranges.count
            for range in ranges.sorted() {
                guard let exchange = latest[pair]?[range] else { continue }
                summary.compared += 1
                summary.oldestMsAgo = max(summary.oldestMsAgo ?? 0, exchange.lastComparedMsAgo)
                if exchange.inSync {
                    summary.inSync += 1
                } else {
                    summary.differing += exchange.keysDiffering
                    summary.repaired += exchange.keysRepaired
                    summary.differingRanges.append(exchange)
                    summary.differingMsAgo = min(summary.differingMsAgo ?? .max, exchange.lastComparedMsAgo)
                }
            }
            return summary
        }
    }
}
