import Testing

@testable import DynamoCore

@Suite struct MD5Tests {
    @Test(arguments: [
        ("", "d41d8cd98f00b204e9800998ecf8427e"),
        ("a", "0cc175b9c0f1b6a831c399e269772661"),
        ("abc", "900150983cd24fb0d6963f7d28e17f72"),
        ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
        (
            "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            "57edf4a22be3c955ac49da2e2107b67a"
        ),
    ])
    func rfc1321Vectors(input: String, expected: String) {
        #expect(RingPosition.of(key: Array(input.utf8)).hex == expected)
        #expect(RingPosition(hex: expected) == RingPosition.of(key: Array(input.utf8)), "hex reads back")
    }

    @Test func hexThatIsNotAPositionIsRefused() {
        #expect(RingPosition(hex: "abc") == nil)
        #expect(RingPosition(hex: "+" + String(repeating: "0", count: 31)) == nil)
        #expect(RingPosition(hex: String(repeating: "g", count: 32)) == nil)
        #expect(RingPosition(hex: String(repeating: "f", count: 32))?.value == .max)
    }
}

@Suite struct RingTests {
    let ring = Ring(
        nodes: Dictionary(
            uniqueKeysWithValues: (1...5).map { ("n\($0)", Token.defaultPositions(for: "n\($0)", count: 8)) }))

    /// The home share is the share of keys a node stores: checked against the preference
    /// lists of 20,000 random keys, it sums to N, and no node's is below its primary share.
    @Test func theHomeShareIsTheShareOfKeysANodeIsAHomeNodeOf() {
        let share = ring.homeShare(n: 3)
        #expect(abs(share.values.reduce(0, +) - 3) < 1e-9)
        let primary = ring.ownership()
        for (node, home) in share { #expect(home >= primary[node]! - 1e-9) }
        var rng = SeededRandom(seed: 9)
        var counts: [NodeName: Int] = [:]
        let samples = 20_000
        for _ in 0..<samples {
            let key = (0..<8).map { _ in UInt8.random(in: 0...255, using: &rng) }
            for node in ring.preferenceList(forKey: key).home(3) { counts[node, default: 0] += 1 }
        }
        for (node, home) in share {
            #expect(abs(Double(counts[node] ?? 0) / Double(samples) - home) < 0.02, "\(node)")
        }
        #expect(Ring(tokens: []).homeShare(n: 3).isEmpty)
    }

    @Test func preferenceListHoldsEveryNodeOnceInRingOrder() {
        var rng = SeededRandom(seed: 1)
        for _ in 0..<500 {
            let key = (0..<8).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let list = ring.preferenceList(forKey: key)
            #expect(list.nodes.count == 5)
            #expect(Set(list.nodes).count == 5)
            // The first node owns the first token clockwise from the key.
            let position = RingPosition.of(key: key)
            let first = ring.tokens.first { $0.position >= position } ?? ring.tokens[0]
            #expect(list.nodes[0] == first.owner)
        }
    }

    @Test func everyNodeBuildsTheSameRingWhateverOrderItLearnsMembers() {
        let tokens = ring.tokens.shuffled()
        #expect(Ring(tokens: tokens) == ring)
    }

    @Test func ownershipCoversTheWholeRingAndFollowsTokenCounts() {
        let share = ring.ownership()
        #expect(abs(share.values.reduce(0, +) - 1.0) < 1e-9)
        // Heterogeneity: a node with 4x the tokens owns clearly more of the ring.
        var nodes = Dictionary(
            uniqueKeysWithValues: (1...4).map { ("n\($0)", Token.defaultPositions(for: "n\($0)", count: 16)) })
        nodes["big"] = Token.defaultPositions(for: "big", count: 64)
        let weighted = Ring(nodes: nodes).ownership()
        #expect(weighted["big"]! > 0.35)
        #expect(weighted["n1"]! < weighted["big"]!)
    }

    @Test func defaultTokensAreStablePerName() {
        #expect(Token.defaultPositions(for: "n1", count: 8) == Token.defaultPositions(for: "n1", count: 8))
        #expect(Token.defaultPositions(for: "n1", count: 8) != Token.defaultPositions(for: "n2", count: 8))
    }

    @Test func sloppyReplicasSkipUnhealthyHomeNodesAndNameThemInHints() {
        let list = PreferenceList(nodes: ["a", "b", "c", "d", "e"])
        #expect(list.sloppyReplicas(n: 3, isHealthy: { _ in true }).map(\.node) == ["a", "b", "c"])
        let sloppy = list.sloppyReplicas(n: 3, isHealthy: { $0 != "b" })
        #expect(
            sloppy == [.init(node: "a", hintFor: nil), .init(node: "c", hintFor: nil), .init(node: "d", hintFor: "b")])
        #expect(list.sloppyReplicas(n: 3, isHealthy: { $0 == "a" }).map(\.node) == ["a"])
    }

    @Test func ringPositionBytesRoundTripInOrder() {
        var rng = SeededRandom(seed: 7)
        for _ in 0..<200 {
            let a = RingPosition(UInt128(rng.next()) << 64 | UInt128(rng.next()))
            let b = RingPosition(UInt128(rng.next()) << 64 | UInt128(rng.next()))
            #expect(RingPosition(bytes: a.bytes) == a)
            #expect((a < b) == a.bytes.lexicographicallyPrecedes(b.bytes))
        }
    }
}
