import Testing

@testable import DynamoCore

@Suite struct MembershipTests {
    func member(_ name: String) -> Member {
        Member(
            name: name, peerAddress: "\(name):1", httpAddress: "\(name):2",
            tokens: Token.defaultPositions(for: name, count: 4), status: .joining)
    }

    /// Runs gossip rounds in a random node order; every exchange is delivered.
    func converge(names: [String], seeds: (Int) -> [String], seed: Int, rounds: Int = 30) -> [Membership] {
        var rng = SeededRandom(seed: UInt64(seed))
        var nodes = names.enumerated().map { Membership(me: member($0.element), seeds: seeds($0.offset)) }
        var index: [String: Int] = [:]
        for (i, name) in names.enumerated() { index["\(name):1"] = i }
        for round in 1...rounds {
            for i in nodes.indices.shuffled(using: &rng) {
                for action in nodes[i].tick(now: UInt64(round), rng: &rng) {
                    guard case .gossip(let address, let digests) = action, let j = index[address] else { continue }
                    let (rows, wanted) = GossipDigest.answer(to: digests, from: nodes[j].table)
                    _ = nodes[i].receive(nodes[i].resolve(rows), now: UInt64(round))
                    let asked = GossipDigest.rows(wanted, from: nodes[i].table)
                    _ = nodes[j].receive(nodes[j].resolve(asked), now: UInt64(round))
                }
            }
        }
        return nodes
    }

    @Test(arguments: 0..<50) func gossipConvergesFromOneSeed(seed: Int) {
        let names = (1...6).map { "n\($0)" }
        let nodes = converge(names: names, seeds: { _ in ["n1:1"] }, seed: seed)
        for node in nodes {
            #expect(Set(node.members.keys) == Set(names), "seed \(seed)")
            #expect(node.ring == nodes[0].ring)
        }
    }

    /// Each node seeded with two others (as the launcher does): nodes that meet each other
    /// first must still reach the rest through their seeds, not form islands.
    @Test(arguments: 0..<200) func nodesThatMeetFirstDoNotFormIslands(seed: Int) {
        let names = (1...5).map { "n\($0)" }
        let nodes = converge(
            names: names, seeds: { i in names.indices.filter { $0 != i }.prefix(2).map { "\(names[$0]):1" } },
            seed: seed,
            rounds: 10)
        for node in nodes {
            #expect(
                Set(node.members.keys) == Set(names), "seed \(seed): \(node.me) knows \(node.members.keys.sorted())")
        }
    }

    @Test func newerRowsWinAndAWipedNodeOutranksItsOldLife() {
        var a = Membership(me: member("a"), seeds: [])
        var oldB = member("b")
        oldB.heartbeat = 50
        _ = a.receive([oldB], now: 1)
        var staleB = oldB
        staleB.heartbeat = 10
        _ = a.receive([staleB], now: 2)
        #expect(a.member("b")?.heartbeat == 50)
        // b restarts with an empty disk (generation 1, heartbeat 0) and hears of its old life.
        var b = Membership(me: member("b"), seeds: ["a:1"])
        _ = b.receive(a.table, now: 3)
        #expect(b.local.generation == 2)
        _ = a.receive(b.table, now: 4)
        #expect(a.member("b")?.generation == 2)
    }
}

@Suite struct FailureDetectorTests {
    @Test func phiStaysLowWhileHeartbeatsArriveAndClimbsWhenTheyStop() {
        var detector = PhiAccrualDetector(expectedIntervalMs: 100)
        var now: UInt64 = 0
        var rng = SeededRandom(seed: 1)
        for _ in 0..<50 {
            now += UInt64.random(in: 60...180, using: &rng)
            detector.heartbeat(at: now)
            #expect(detector.phi(at: now + 50) < 1)
        }
        #expect(detector.phi(at: now + 200) < 1)
        #expect(detector.phi(at: now + 2_000) > 8)
        // Suspicion only grows with silence.
        var previous = 0.0
        for gap in stride(from: 0, through: 3_000, by: 100) {
            let phi = detector.phi(at: now + UInt64(gap))
            #expect(phi >= previous)
            previous = phi
        }
    }

    @Test func aRestartAfterALongSilenceDoesNotSkewTheHistory() {
        var detector = PhiAccrualDetector(expectedIntervalMs: 100)
        var now: UInt64 = 0
        for _ in 0..<20 {
            now += 100
            detector.heartbeat(at: now)
        }
        now += 60_000  // down for a minute, then back
        detector.heartbeat(at: now)
        #expect(detector.phi(at: now + 100) < 1)
        #expect(detector.phi(at: now + 2_000) > 8)
    }

    @Test func aPeerThatFailedToAnswerIsAvoidedUntilItAnswers() {
        var detector = FailureDetector(expectedIntervalMs: 100)
        detector.heartbeat(from: "b", at: 0)
        #expect(detector.isAvailable("b", at: 10))
        detector.requestFailed(to: "b", at: 10)
        detector.heartbeat(from: "b", at: 20)  // others still hear from it
        #expect(!detector.isAvailable("b", at: 30))
        detector.requestSucceeded(to: "b")
        #expect(detector.isAvailable("b", at: 40))
    }

    @Test func membershipReportsSilentMembersAsDown() {
        var a = Membership(
            me: Member(name: "a", peerAddress: "a:1", httpAddress: "a:2", tokens: [], status: .up), seeds: [],
            gossipIntervalMs: 100)
        var b = Member(name: "b", peerAddress: "b:1", httpAddress: "b:2", tokens: [], status: .up)
        for t in stride(from: UInt64(0), to: 2_000, by: 100) {
            b.heartbeat += 1
            _ = a.receive([b], now: t)
        }
        #expect(a.status(of: "b", at: 2_000) == .up)
        #expect(a.status(of: "b", at: 6_000) == .down)
        b.heartbeat += 1
        _ = a.receive([b], now: 6_000)
        #expect(a.status(of: "b", at: 6_050) == .up)
        #expect(a.status(of: "a", at: 6_050) == .up)
    }

    /// A member that left is in no ring, no gossip round and no view; an older row of it
    /// (some node still holding it `leaving`) cannot bring it back; a new life of it can.
    func member(_ name: String) -> Member {
        Member(
            name: name, peerAddress: "\(name):1", httpAddress: "\(name):2",
            tokens: Token.defaultPositions(for: name, count: 4), status: .joining)
    }

    @Test func aMemberThatLeftIsGoneUntilANewLifeOfItJoins() {
        var a = Membership(me: member("a"), seeds: [])
        var b = member("b")
        b.status = .leaving
        b.heartbeat = 40
        _ = a.receive([b], now: 1)
        #expect(a.ring.tokens.contains { $0.owner == "b" })
        var left = b
        left.status = .left
        left.heartbeat = 41
        #expect(a.receive([left], now: 2).contains(Membership.Action.ringChanged))
        #expect(!a.ring.tokens.contains { $0.owner == "b" })
        #expect(a.status(of: "b", at: 2) == .left && !a.isAvailable("b", at: 2))
        #expect(a.current.map(\.name) == ["a"])
        var rng = SeededRandom(seed: 1)
        #expect(a.tick(now: 3, rng: &rng).isEmpty, "no gossip to a member that left")
        _ = a.receive([b], now: 4)
        #expect(a.status(of: "b", at: 4) == .left, "the older leaving row does not bring it back")
        var again = member("b")
        again.generation = 2
        _ = a.receive([again], now: 5)
        #expect(a.status(of: "b", at: 5) == .joining && a.ring.tokens.contains { $0.owner == "b" })
    }

    /// Rows of departed members are a bounded tombstone list: past the limit, those heard
    /// of first are forgotten.
    @Test func leftRowsAreBounded() {
        var a = Membership(me: member("a"), seeds: [])
        for i in 0..<(Membership.leftRowLimit + 5) {
            var gone = member("gone\(i)")
            gone.status = .left
            _ = a.receive([gone], now: UInt64(i))
        }
        #expect(a.members.count == Membership.leftRowLimit + 1)
        #expect(a.member("gone0") == nil && a.member("gone\(Membership.leftRowLimit + 4)") != nil)
    }
}
