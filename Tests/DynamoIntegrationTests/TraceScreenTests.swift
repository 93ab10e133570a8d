import DynamoAPI
import DynamoConsole
import DynamoLauncher
import Foundation
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Traced requests drawn in the console at 80x24, as a class on a projector sees them.
@Suite(.serialized) struct TraceScreenTests {
    typealias Screen = ConsoleScreenTests.Screen

    /// The diagram's rows on screen: from its title to its legend.
    static func diagram(in text: String) -> [String] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = lines.lastIndex(where: { $0.hasPrefix("trace ") }) else { return [] }
        let end = lines[start...].firstIndex { $0.contains("●send ▶arrive") } ?? lines.count - 1
        return Array(lines[start...end])
    }

    @Test(.timeLimit(.minutes(4))) func aTracedPutWithANodeDownShowsTheFallbackAndItsHint() async throws {
        let screen = try Screen.start(width: 80, height: 24)
        defer { screen.close() }
        try await screen.waitFor("ring converged", timeout: .seconds(60))
        // A key one of whose home nodes goes down, written through another node.
        let key = try ConsoleScreenTests.key("trace", homedOn: "n4")
        try screen.enter("kill n4")
        try await screen.wait("n4 seen down") { Screen.nodeRow("n4", in: $0)?.contains("DOWN") == true }
        try screen.enter("slow n2 5ms")
        try await screen.waitFor("slow/lossy n2 +5ms")
        try screen.enter("trace on")
        try await screen.waitFor("trace on: each get")
        try screen.enter("put \(key) book")
        try await screen.wait("the diagram of the put", timeout: .seconds(20)) { text in
            let rows = Self.diagram(in: text)
            return rows.contains { $0.contains("keeps a hint for n4") } && rows.last?.contains("●send") == true
        }
        let text = try screen.text()
        let rows = Self.diagram(in: text)
        // Everything at once on the 80x24 screen: title, lanes, the hint, the quorum, the legend.
        #expect(rows.first?.hasPrefix("trace put \(key)") == true, "\(text)")
        #expect(rows.count >= 8, "\(text)")
        let header = rows[1]
        for lane in ["n1", "n4"] { #expect(header.contains(lane), "lanes: \(header)") }
        let hint = try #require(rows.first { $0.contains("keeps a hint for n4") })
        #expect(hint.contains("H"), "the hint's mark on its lane: \(hint)")
        #expect(rows.contains { $0.contains("◆") && $0.contains("answers: ok") }, "the quorum moment\n\(text)")
        #expect(rows.contains { $0.contains("no part from n4 (down?)") }, "\(text)")
        #expect(rows.contains { $0.contains("▶") || $0.contains("◀") }, "arrows")
        #expect(text.split(separator: "\n").first?.contains("slow/lossy n2 +5ms") == true, "the header says it")
        // The same diagram again on demand, and as an SVG for slides.
        try screen.enter("trace save \(screen.directory)/put.svg")
        try await screen.waitFor("saved the diagram of put \(key)")
        let svg = try String(contentsOfFile: "\(screen.directory)/put.svg", encoding: .utf8)
        let parsed = try SVGCount(svg)
        #expect(parsed.lanes.contains("n4") && parsed.arrows >= 4)
        try screen.enter("heal")
        try await screen.wait("the header clear of slow links") { !($0.split(separator: "\n").first ?? "").contains("slow") }
        try await screen.quitStoppingItsNodes()
    }

    @Test(.timeLimit(.minutes(4))) func aTracedGetShowsItsReadRepairAndSavesAMatchingSVG() async throws {
        // Hints held back for an hour and no anti-entropy exchange: only a read repairs.
        try await withCluster(configure: {
            $0.extraArguments += ["--hint-interval-ms", "3600000", "--anti-entropy-interval-ms", "3600000"]
        }) { cluster in
            let key = "repair-me"
            let homes = try await cluster.client("n1").preferenceList(Array(key.utf8)).preferenceList
            let victim = homes[2]
            let entry = homes[0]
            cluster.stop(victim, .kill)
            #expect(try await cluster.client(entry).put(Array(key.utf8), value: Array("fresh".utf8), w: 2).succeeded)
            try cluster.launch(victim)
            try await cluster.waitUntilReady(victim)
            let address = try #require(cluster.spec(entry)).httpAddress
            let screen = try Screen.launch(
                width: 80, height: 24, environment: ["DYNAMO_CLUSTER_SECRET=\(try cluster.secret())"],
                arguments: { _ in ["console", "--attach", address] })
            defer { screen.close() }
            try await screen.waitFor("dynamo>", timeout: .seconds(30))
            try screen.enter("use \(entry)")
            try screen.enter("trace on")
            try await screen.waitFor("trace on: each get")
            // The victim is asked once the entry sees it up again; the read then repairs it.
            try await LocalCluster.waitFor("a traced read that repairs \(victim)", timeout: .seconds(40)) {
                try screen.enter("get \(key)")
                try await Task.sleep(for: .milliseconds(1500))
                return Self.diagram(in: try screen.text()).contains { $0.contains("repair \(entry)→\(victim)") }
            }
            let text = try screen.text()
            let rows = Self.diagram(in: text)
            let answered = try #require(rows.firstIndex { $0.contains("◆") }, "\(text)")
            let repair = try #require(rows.firstIndex { $0.contains("repair \(entry)→\(victim)") })
            #expect(answered < repair, "the repair follows the answer\n\(text)")
            #expect(rows[repair].contains("●") && rows[repair].contains("▶"), "an arrow: \(rows[repair])")
            #expect(rows.contains { $0.contains("\(victim): stored") }, "the repair stored\n\(text)")
            // The SVG of that trace: one lane per node, one arrow per message, from the
            // nodes' own parts.
            try screen.enter("trace save \(screen.directory)/get.svg")
            try await screen.waitFor("saved the diagram of get \(key)")
            let svg = try String(contentsOfFile: "\(screen.directory)/get.svg", encoding: .utf8)
            let parsed = try SVGCount(svg)
            let id = try #require(
                try JSONDecoder().decode(
                    TraceListDocument.self, from: Data(try await cluster.client(entry).raw(.GET, "/admin/trace").body)
                ).ids.first)
            var parts: [TraceDocument] = []
            for name in cluster.names { if let part = try await cluster.client(name).trace(id) { parts.append(part) } }
            let nodes = Set(parts.map(\.node)).union(parts.flatMap { $0.steps.compactMap(\.peer) })
            #expect(Set(parsed.lanes) == nodes, "one lane per node: \(parsed.lanes)")
            #expect(parsed.lanes.count == nodes.count)
            let messages = parts.flatMap(\.steps).filter { $0.kind == "send" || $0.kind == "answer" }.count
            #expect(parsed.arrows == messages, "one arrow per message")
            #expect(parts.flatMap(\.steps).contains { $0.message == "repair" })
        }
    }
}

/// The lanes and arrows of an SVG diagram, read with Foundation's XML parser (which also
/// proves it well-formed).
final class SVGCount: NSObject, XMLParserDelegate {
    private(set) var lanes: [String] = []
    private(set) var arrows = 0

    init(_ svg: String) throws {
        super.init()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = self
        guard parser.parse() else {
            throw LauncherError("the SVG is not well-formed XML: \(String(describing: parser.parserError))")
        }
    }

    func parser(
        _ parser: XMLParser, didStartElement element: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        if element == "g", attributes["class"] == "lane" { lanes.append(attributes["data-node"] ?? "") }
        if element == "g", attributes["class"] == "arrow" { arrows += 1 }
    }
}
