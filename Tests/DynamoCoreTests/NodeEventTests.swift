import DynamoCore
import Foundation
import Testing

@Suite struct NodeEventTests {
    /// The events API carries each event's facts as fields next to its sentence, and they
    /// survive JSON (what the console reads).
    @Test func anEventsDocumentCarriesTheFieldsOfEachEvent() throws {
        let events: [NodeEvent] = [
            .marked(peer: "n3", status: .down, why: .phi(9.1)),
            .hintKept(key: Array("cart:ann".utf8), target: "n3"),
            .antiEntropy(peer: "n2", range: KeyRange(start: RingPosition(0), end: RingPosition(.max)), differing: 4, repaired: 3),
            .faults(dropped: ["n2", "n3"]),
            .storage(degraded: "disk full"),
        ]
        let document = EventsDocument(
            node: "n1", events: events.enumerated().map { .init(seq: UInt64($0 + 1), timeMs: 7, node: "n1", $1) })
        let back = try JSONDecoder().decode(EventsDocument.self, from: JSONEncoder().encode(document))
        #expect(back == document)
        let marked = back.events[0]
        #expect(marked.kind == "marked" && marked.node == "n1" && marked.peer == "n3" && marked.status == "down")
        #expect(marked.detail == "phi 9.1" && marked.text == "n1 marks n3 down (phi 9.1)")
        #expect(back.events[1].key == "cart:ann" && back.events[1].peer == "n3" && back.events[1].kind == "hint-kept")
        #expect(back.events[2].count == 3 && back.events[2].peer == "n2")
        #expect(back.events[3].peers == ["n2", "n3"] && back.events[3].count == 2)
        #expect(back.events[4].detail == "disk full" && back.events[4].text == "n1 storage degraded (disk full)")
    }

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
