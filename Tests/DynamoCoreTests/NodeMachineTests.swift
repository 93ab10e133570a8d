import Testing

@testable import DynamoCore

/// How a node introduces itself when it starts.
@Suite struct NodeMachineStartTests {
    /// The status a node's first gossip message gives for itself.
    static func announcedStatus(freshIdentity: Bool) -> MemberStatus? {
        let settings = NodeSettings(
            name: "n3", peerAddress: "127.0.0.1:7003", httpAddress: "127.0.0.1:8003",
            tokens: Token.defaultPositions(for: "n3", count: 8), generation: 2, seeds: ["127.0.0.1:7001"],
            freshIdentity: freshIdentity)
        var machine = NodeMachine(settings: settings, seed: 1)
        for action in machine.handle(.tick, now: .init(monotonicMs: 10, wallMs: 10)) {
            if case .send(_, _, .gossip(let members)) = action {
                return members.first { $0.name == "n3" }?.status
            }
        }
        return nil
    }

    /// A known node that restarts never left the ring: peers must not route its ranges
    /// elsewhere while it waits for its first gossip answer (the console's event log showed
    /// ranges moving away and back on every restart).
    @Test func aRestartedNodeAnnouncesItselfUp() {
        #expect(Self.announcedStatus(freshIdentity: false) == .up)
    }

    /// A new node (or one that lost its disk) must pull its ranges before it takes any.
    @Test func aFreshNodeAnnouncesItselfJoining() {
        #expect(Self.announcedStatus(freshIdentity: true) == .joining)
    }
}
