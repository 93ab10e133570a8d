public import DynamoCore
import DynamoWire
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What a cluster costs as it grows, measured on the real components: gossip (the real
/// `Membership` of every node, rounds as the product runs them, sizes from the real wire
/// codec) and Merkle trees (the real `MerkleTree`, its heap measured by malloc).
public enum GrowthStudy {
    public struct Gossip: Sendable, CustomStringConvertible {
        public var nodes: Int
        public var tokens: Int
        /// The whole membership table, as the wire codec encodes it (what every gossip
        /// message carried before digest gossip, and what a new node still receives once).
        public var tableBytes: Int
        /// Bytes a node sends per gossip interval, on average: its round's SYN and ACK2 and
        /// its answers (ACKs) to the rounds of others, as the wire codec encodes them.
        public var bytesPerNodePerRound: Int
        /// Rounds until a heartbeat of one node is known to every node (the worst of `trials`).
        public var roundsToReachAll: Int

        public var description: String {
            "\(nodes) nodes x \(tokens) tokens: \(bytesPerNodePerRound) bytes per node per round (a whole table: \(tableBytes) bytes), \(roundsToReachAll) rounds to reach every node"
        }
    }

    /// A converged cluster of `nodes` members with `tokens` tokens each, gossiping as the
    /// product does (each round every node runs a digest exchange with one random member:
    /// SYN, ACK, ACK2; see `GossipDigest`). A heartbeat of n1 made at round 0 spreads; the
    /// rounds until every node knows it are counted, and the bytes every message took.
    public static func gossip(nodes count: Int, tokens: Int, seed: UInt64 = 1) -> Gossip {
        let names = (1...count).map { "n\($0)" }
        let rows = names.map { name in
            Member(
                name: name, peerAddress: "\(name):7000", httpAddress: "\(name):8000",
                tokens: Token.defaultPositions(for: name, count: tokens), status: .up)
        }
        var views = rows.map { Membership(me: $0, seeds: [], gossipIntervalMs: 1000) }
        for index in views.indices { _ = views[index].receive(rows, now: 0) }
        let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        let addressed = Dictionary(uniqueKeysWithValues: rows.map { ($0.peerAddress, $0.name) })
        let tableBytes = PeerCodec.encode(.response(id: 1, .gossipDelta(rows: views[0].table.map { .full($0) }, wanted: []))).count

        var rng = SeededRandom(seed: seed)
        // The heartbeat n1 has after its first tick below: the change to spread.
        let target = views[0].local.heartbeat + 1
        var round = 0
        var now: UInt64 = 0
        var sent = 0
        func size(_ message: PeerMessage) -> Int { PeerCodec.encode(message).count }
        while true {
            round += 1
            now += 1000
            for sender in views.indices {
                for case .gossip(let address, let digests) in views[sender].tick(now: now, rng: &rng) {
                    guard let name = addressed[address], let receiver = index[name] else { continue }
                    sent += size(.request(id: 1, .gossipDigest(digests)))
                    let (answer, wanted) = GossipDigest.answer(to: digests, from: views[receiver].table)
                    sent += size(.response(id: 1, .gossipDelta(rows: answer, wanted: wanted)))
                    _ = views[sender].receive(views[sender].resolve(answer), now: now)
                    let rows = GossipDigest.rows(wanted, from: views[sender].table)
                    guard !rows.isEmpty else { continue }
                    sent += size(.request(id: 2, .gossipRows(rows))) + size(.response(id: 2, .gossipDelta(rows: [], wanted: [])))
                    _ = views[receiver].receive(views[receiver].resolve(rows), now: now)
                }
            }
            let reached = views.allSatisfy { ($0.member("n1")?.heartbeat ?? 0) >= target }
            if reached || round >= 10 * count { break }
        }
        return Gossip(
            nodes: count, tokens: tokens, tableBytes: tableBytes, bytesPerNodePerRound: sent / (count * round),
            roundsToReachAll: round)
    }

    /// Memory a Merkle tree of `keys` keys takes (12-byte keys; `MerkleTree` keeps each key
    /// with its hash, in its segment's set, and a hash per node of each level).
    public static func merkleBytes(keys: Int) -> Int {
        let before = heapInUse()
        var tree = MerkleTree()
        for i in 0..<keys { tree.set(Array("key-\(100_000_000 + i)".utf8), hash: UInt64(i) | 1, seq: 1) }
        let after = heapInUse()
        withExtendedLifetime(tree) {}
        return after - before
    }

    /// Resident bytes of this process (from /proc/self/statm): the tree's pages are new
    /// ones, so the difference around building it is its size, to a page or so.
    private static func heapInUse() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
            let resident = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { return 0 }
        return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
