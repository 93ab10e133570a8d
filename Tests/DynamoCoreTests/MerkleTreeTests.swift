import Testing

@testable import DynamoCore

@Suite struct MerkleTreeTests {
    static func entries(_ count: Int, seed: UInt64) -> [(key: [UInt8], hash: UInt64)] {
        var rng = SeededRandom(seed: seed)
        return (0..<count).map { i in (Array("key-\(i)".utf8), rng.next() | 1) }
    }

    @Test func updatesInAnyOrderMatchARebuildFromScratch() {
        var rng = SeededRandom(seed: 1)
        for round in 0..<20 {
            let all = Self.entries(300, seed: UInt64(round))
            // Build incrementally through a messy history: inserts, rewrites, deletes, re-inserts.
            var incremental = MerkleTree()
            var seq: UInt64 = 0
            var final: [[UInt8]: UInt64] = [:]
            for _ in 0..<900 {
                let entry = all.randomElement(using: &rng)!
                seq += 1
                if Bool.random(using: &rng) {
                    let hash = rng.next() | 1
                    incremental.set(entry.key, hash: hash, seq: seq)
                    final[entry.key] = hash
                } else {
                    incremental.set(entry.key, hash: nil, seq: seq)
                    final[entry.key] = nil
                }
            }
            var rebuilt = MerkleTree()
            for (key, hash) in final.shuffled(using: &rng) { rebuilt.set(key, hash: hash, seq: 1) }
            #expect(incremental == rebuilt)
            #expect(incremental.root == rebuilt.root)
            #expect(incremental.root == final.values.reduce(0, ^))
        }
    }

    @Test func staleNewsNeverOverwritesNewerState() {
        var tree = MerkleTree()
        tree.set([1], hash: 10, seq: 5)
        tree.set([1], hash: 99, seq: 3)  // an older storage result arriving late
        #expect(tree.keys[[1]]?.hash == 10)
        tree.set([1], hash: nil, seq: 7)
        tree.set([1], hash: 10, seq: 6)
        #expect(tree.count == 0)
        #expect(tree.root == 0)
    }

    /// Walks the comparison between two trees the way two nodes do over the network.
    static func compare(_ a: MerkleTree, _ b: MerkleTree) -> (keys: [[UInt8]], bytes: Int) {
        var bytes = 8  // the root
        guard a.root != b.root else { return ([], bytes) }
        var walk = MerkleComparison()
        while !walk.frontier.isEmpty {
            let answers = walk.frontier.map { b.children(level: $0.level, id: $0.id) }
            bytes += answers.reduce(0) { $0 + $1.count * 8 } + walk.frontier.count * 5
            walk.receive(children: answers, local: a)
        }
        let listing = walk.differingSegments.flatMap { b.entries(inSegment: $0) }
        bytes += walk.differingSegments.count * 4 + listing.reduce(0) { $0 + $1.key.count + 8 }
        return (MerkleComparison.differingKeys(local: a, remote: listing, segments: walk.differingSegments), bytes)
    }

    @Test(arguments: 0..<30) func comparisonFindsExactlyTheDifferingKeys(seed: Int) {
        var rng = SeededRandom(seed: UInt64(seed))
        let all = Self.entries(Int.random(in: 0...2000, using: &rng), seed: UInt64(seed))
        var a = MerkleTree()
        var b = MerkleTree()
        var expected: Set<[UInt8]> = []
        for entry in all {
            switch Int.random(in: 0..<20, using: &rng) {
            case 0: a.set(entry.key, hash: entry.hash, seq: 1); expected.insert(entry.key)  // only on a
            case 1: b.set(entry.key, hash: entry.hash, seq: 1); expected.insert(entry.key)  // only on b
            case 2:  // on both, different versions (independent hashes, as MD5 gives)
                a.set(entry.key, hash: entry.hash, seq: 1)
                b.set(entry.key, hash: rng.next() | 1, seq: 1)
                expected.insert(entry.key)
            default:
                a.set(entry.key, hash: entry.hash, seq: 1)
                b.set(entry.key, hash: entry.hash, seq: 1)
            }
        }
        #expect(Set(Self.compare(a, b).keys) == expected)
        #expect(Set(Self.compare(b, a).keys) == expected)
        #expect(Self.compare(a, a).keys.isEmpty)
    }

    @Test func oneDifferingKeyCostsLogarithmicallyFewBytes() {
        var costs: [Int: Int] = [:]
        for size in [1_000, 10_000, 100_000] {
            var a = MerkleTree()
            var b = MerkleTree()
            for entry in Self.entries(size, seed: 9) {
                a.set(entry.key, hash: entry.hash, seq: 1)
                b.set(entry.key, hash: entry.hash, seq: 1)
            }
            b.set(Array("key-7".utf8), hash: 12345, seq: 2)
            let result = Self.compare(a, b)
            #expect(result.keys == [Array("key-7".utf8)])
            costs[size] = result.bytes
        }
        // 100x more keys: the walk costs the same few levels of 16 hashes, not 100x more.
        #expect(costs[100_000]! < 1_000)
        #expect(costs[100_000]! < costs[1_000]! * 2)
        // Whereas shipping the key list of the range would cost megabytes.
        #expect(costs[100_000]! * 1_000 < 100_000 * 16)
    }
}
