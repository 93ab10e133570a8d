import Testing

@testable import DynamoCore

/// The digest exchange (SYN, ACK, ACK2): after one exchange both sides hold the newer row
/// of every member either held, and a member's tokens travel only to a side that lacked
/// its identity.
@Suite struct GossipDigestTests {
    func member(_ name: String, generation: UInt64 = 1, heartbeat: UInt64 = 0, status: MemberStatus = .up) -> Member {
        Member(
            name: name, peerAddress: "\(name):1", httpAddress: "\(name):2",
            tokens: Token.defaultPositions(for: name, count: 4), status: status, heartbeat: heartbeat,
            generation: generation)
    }

    /// One exchange from `a` to `b`, as two nodes run it.
    func exchange(_ a: inout Membership, _ b: inout Membership) -> (ack: [GossipRow], ack2: [GossipRow]) {
        let (rows, wanted) = GossipDigest.answer(to: GossipDigest.digests(of: a.table), from: b.table)
        _ = a.receive(a.resolve(rows), now: 1)
        let asked = GossipDigest.rows(wanted, from: a.table)
        _ = b.receive(b.resolve(asked), now: 1)
        return (rows, asked)
    }

    @Test func newerRowsGoAsStatesToAHolderOfTheIdentityAndWholeToOthers() {
        var a = Membership(me: member("a"), seeds: [])
        var b = Membership(me: member("b"), seeds: [])
        _ = a.receive([member("c", heartbeat: 5), member("d", generation: 1, heartbeat: 9)], now: 0)
        _ = b.receive([member("c", heartbeat: 7), member("d", generation: 2), member("e")], now: 0)
        let (ack, ack2) = exchange(&a, &b)
        // b holds c newer in the same generation (state), d in a later one and e that a
        // lacks (whole), and b's own row a lacks (whole).
        let c = member("c", heartbeat: 7)
        #expect(ack.contains(.state(MemberState(c, identity: c.fingerprint))))
        #expect(ack.contains(.full(member("d", generation: 2))))
        #expect(ack.contains(.full(member("e"))))
        #expect(ack.contains { $0.name == "b" })
        // a sends what b asked for: a's own row, which b lacked, whole.
        #expect(ack2.map(\.name) == ["a"])
        #expect(a.table == b.table)
    }

    @Test func aStatusChangeWithinAGenerationTravelsWithoutTokens() {
        var a = Membership(me: member("a"), seeds: [])
        var b = Membership(me: member("b"), seeds: [])
        _ = exchange(&a, &b)
        b.setLocalStatus(.leaving, now: 2)
        let (ack, _) = exchange(&a, &b)
        guard case .state(let state)? = ack.first(where: { $0.name == "b" }) else {
            Issue.record("b's row should travel as a state: \(ack)")
            return
        }
        #expect(state.status == .leaving)
        #expect(a.member("b")?.status == .leaving)
        #expect(a.member("b")?.tokens == member("b").tokens)
    }

    @Test func aStateOfAnIdentityTheReceiverLacksTellsItNothing() {
        let a = Membership(me: member("a"), seeds: [])
        let x3 = member("x", generation: 3)
        let forged = GossipRow.state(
            MemberState(name: "x", generation: 3, heartbeat: 1, status: .up, settled: true, identity: x3.fingerprint))
        #expect(a.resolve([forged]).isEmpty)
        var b = a
        _ = b.receive([member("x", generation: 2)], now: 1)
        #expect(b.resolve([forged]).isEmpty, "generation 2 held, not 3")
        var moved = member("x", generation: 3)
        moved.peerAddress = "x:9"
        _ = b.receive([moved], now: 2)
        #expect(b.resolve([forged]).isEmpty, "generation 3 held, but another identity")
        #expect(b.resolve([.state(MemberState(x3, identity: moved.fingerprint))]).first?.peerAddress == "x:9")
    }

    /// Found by a helper on real processes: a node that lost its data dir starts again at
    /// generation 1, here on new ports with other tokens, while the cluster remembers an
    /// earlier generation 1 of it. Its new row must reach the others whole, whichever side
    /// starts the exchange (a state row would leave them its dead address for ever).
    @Test(arguments: [false, true]) func aNewIdentityAtTheSameGenerationTravelsWhole(newLifeStarts: Bool) {
        var old = member("x", heartbeat: 3)
        old.tokens = Token.defaultPositions(for: "x", count: 8)
        var cluster = Membership(me: member("a"), seeds: [])
        _ = cluster.receive([old], now: 0)
        var life = member("x", heartbeat: 0)
        life.peerAddress = "x:17117"
        life.tokens = Token.defaultPositions(for: "x", count: 16)
        var x = Membership(me: life, seeds: [])
        var rng = SeededRandom(seed: 1)
        for _ in 0..<10 { _ = x.tick(now: 1, rng: &rng) }  // the new life's heartbeat passes the old one's
        if newLifeStarts { _ = exchange(&x, &cluster) } else { _ = exchange(&cluster, &x) }
        #expect(cluster.member("x")?.peerAddress == "x:17117")
        #expect(cluster.member("x")?.tokens.count == 16)
    }

    @Test func aSynNamingAMemberTwiceCountsItsHighestVersion() {
        let b = Membership(me: member("b"), seeds: [])
        let digests = [
            MemberDigest(name: "b", generation: 1, heartbeat: 0, identity: 7),
            MemberDigest(name: "b", generation: 9, heartbeat: 9, identity: 7),
            MemberDigest(name: "z", generation: 1, heartbeat: 1, identity: 7),
            MemberDigest(name: "z", generation: 0, heartbeat: 0, identity: 0),
        ]
        let (rows, wanted) = GossipDigest.answer(to: digests, from: b.table)
        #expect(rows.isEmpty, "the SYN's b is newer than b's own row")
        #expect(wanted.map(\.name) == ["b", "z"])
    }

    /// Random tables on both sides: after one exchange both hold, for every member either
    /// held, the row with the larger version.
    @Test(arguments: 0..<100) func oneExchangeLeavesBothWithTheNewerOfEveryRow(seed: Int) {
        var rng = SeededRandom(seed: UInt64(seed))
        func randomRows() -> [Member] {
            (0..<8).compactMap { i in
                guard Bool.random(using: &rng) else { return nil }
                // (One version, one row: a member says one thing per heartbeat.)
                let heartbeat = UInt64.random(in: 0...4, using: &rng)
                let status = [MemberStatus.up, .joining, .leaving][Int(heartbeat % 3)]
                var row = member(
                    "m\(i)", generation: UInt64.random(in: 1...3, using: &rng), heartbeat: heartbeat, status: status)
                // Two lives may share a generation (a node that lost its data dir).
                row.peerAddress = "m\(i):\(1 + heartbeat % 2)"
                return row
            }
        }
        var a = Membership(me: member("a"), seeds: [])
        var b = Membership(me: member("b"), seeds: [])
        let (rowsA, rowsB) = (randomRows(), randomRows())
        _ = a.receive(rowsA, now: 0)
        _ = b.receive(rowsB, now: 0)
        let expected = Dictionary((a.table + b.table).map { ($0.name, $0) }) { $1.isNewer(than: $0) ? $1 : $0 }
        _ = exchange(&a, &b)
        let newest = expected.values.sorted { $0.name < $1.name }
        #expect(a.table == newest, "seed \(seed)")
        #expect(b.table == newest, "seed \(seed)")
    }
}
