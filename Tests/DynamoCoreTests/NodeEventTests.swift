import DynamoCore
import Testing

@Suite struct NodeEventTests {
    /// Every kind has its own stable name.
    @Test func kindsAreDistinct() {
        let key = Array("k".utf8)
        let all: [NodeEvent] = [
            .leaving, .faults(dropped: []), .hintKept(key: key, target: "n2"), .hintDelivered(target: "n2"),
            .reachability(peer: "n2", reachable: true), .marked(peer: "n2", status: .up, why: nil),
            .gossipRefused(peer: "n2"), .outlivedEarlierSelf(generation: 2), .learned(members: ["n2"]),
            .rejoined(members: 3), .readRepair(key: key, peer: "n2"), .tombstoneReaped(key: key, peer: "n2"),
            .siblingsRead(key: key, count: 2),
            .nearLimit(key: key, size: ObjectSize(siblings: 1, bytes: 1), limits: ObjectLimits(), refused: false),
            .pullFailed(source: "n2", reason: "x"), .joined(keys: 1), .handingOff(keys: 1),
            .antiEntropy(peer: "n2", range: KeyRange(start: RingPosition(0), end: RingPosition(.max)), differing: 1, repaired: 1),
            .storeLost, .storage(degraded: nil),
        ]
        #expect(Set(all.map(\.kind)).count == all.count)
        #expect(all.allSatisfy { $0.text(node: "n1").hasPrefix("n1 ") })
    }
}
