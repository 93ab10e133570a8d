import Testing

@testable import DynamoCore

/// The digest exchange (SYN, ACK, ACK2): after one exchange both sides hold the newer row
/// of every member either held, and a member's tokens travel only to a side that lacked
/// its generation.
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

    @Test func newerRowsGoAsStatesToAHolderOfTheGenerationAndWholeToOthers() {
        var a = Membership(me: member("a"), seeds: [])
        var b = Membership(me: member("b"), seeds: [])
        _ = a.receive([member("c", heartbeat: 5), member("d", generation: 1, heartbeat: 9)], now: 0)
        _ = b.receive([member("c", heartbeat: 7), member("d", generation: 2), member("e")], now: 0)
        let (ack, ack2) = exchange(&a, &b)
        // b holds c newer in the same generation (state), d in a later one and e that a
        // lacks (whole), and b's own row a lacks (whole).
        #expect(ack.contains(.state(MemberState(name: "c", generation: 1, heartbeat: 7, status: .up, settled: false))))
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

    @Test func aStateOfAGenerationTheReceiverLacksTellsItNothing() {
        let a = Membership(me: member("a"), seeds: [])
        let forged = GossipRow.state(MemberState(name: "x", generation: 3, heartbeat: 1, status: .up, settled: true))
        #expect(a.resolve([forged]).isEmpty)
        var b = a
        _ = b.receive([member("x", generation: 2)], now: 1)
        #expect(b.resolve([forged]).isEmpty, "generation 2 held, not 3")
    }

    @Test func aSynNamingAMemberTwiceCountsItsHighestVersion() {
        let b = Membership(me: member("b"), seeds: [])
        let digests = [
            MemberDigest(name: "b", generation: 1, heartbeat: 0), MemberDigest(name: "b", generation: 9, heartbeat: 9),
            MemberDigest(name: "z", generation: 1, heartbeat: 1), MemberDigest(name: "z", generation: 0, heartbeat: 0),
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
                return member(
                    "m\(i)", generation: UInt64.random(in: 1...3, using: &rng), heartbeat: heartbeat, status: status)
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
