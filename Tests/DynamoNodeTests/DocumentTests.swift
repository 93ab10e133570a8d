import DynamoAPI
import DynamoCore
import DynamoNode
import Foundation
import Testing

@Suite struct EventDocumentTests {
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
}

@Suite struct ObservabilityTests {
    @Test func eventLogKeepsTheNewestAndAnswersSince() {
        var log = EventLog(capacity: 3)
        for i in 1...5 { log.append(.joined(keys: i), on: "n1", wallMs: UInt64(i)) }
        #expect(log.entries.map(\.count) == [3, 4, 5])
        #expect(log.since(4).map(\.seq) == [5])
        #expect(log.since(0).count == 3)
        // Past twice the capacity the old ones are dropped; still only the newest show.
        for i in 6...20 { log.append(.joined(keys: i), on: "n1", wallMs: UInt64(i)) }
        #expect(log.entries.map(\.count) == [18, 19, 20])
        #expect(log.since(0).map(\.seq) == [18, 19, 20])
    }

    @Test func requestStatsQuantiles() {
        var stats = RequestStats(window: 100)
        for i in 1...100 {
            stats.record(i % 2 == 0 ? .get : i % 4 == 1 ? .put : .delete, i == 7 ? .unavailable : .ok, micros: UInt64(i * 1000))
        }
        // Bad requests count by their outcome, not as served, and not in the quantiles.
        stats.record(.put, .badRequest, micros: 1_000_000)
        let document = stats.document
        #expect(document.gets == 50 && document.writes == 50)
        #expect(document.p50Ms == 50)
        #expect(document.p99Ms == 99)
        #expect(stats.counts[.put]?[.badRequest] == 1)
        #expect(stats.counts[.put]?[.ok] == 25 && stats.counts[.delete]?[.ok] == 24)
        #expect(stats.counts[.delete]?[.unavailable] == 1)
    }
}

/// A context header the node refuses is refused by one of its two layers: the text
/// (`ContextHeader`) or the sealed bytes (`CausalContext`), never accepted and never a crash.
@Suite struct ContextHeaderOpeningTests {
    @Test(arguments: [
        "", "!!!", "not base64 at all", "AAAA", "3AEBAm4yAauJpYSgNA==x", "3AEC", String(repeating: "A", count: 20_000),
    ])
    func garbageIsRefused(text: String) {
        let opened = (try? ContextHeader.decode(text)).flatMap {
            try? CausalContext(opening: $0, forKey: [1], with: .development)
        }
        #expect(opened == nil)
    }

    @Test func aSealedContextOpensFromItsHeader() throws {
        let clock = CausalHistory().inserting(Dot(actor: "n1", counter: 3), timestamp: 9)
        let header = ContextHeader.encode(CausalContext(clock).sealed(forKey: [7], with: .development))
        #expect(try CausalContext(opening: ContextHeader.decode(header), forKey: [7], with: .development).clock == clock)
    }
}
