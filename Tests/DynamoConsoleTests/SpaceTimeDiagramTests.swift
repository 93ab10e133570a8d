import DynamoAPI
import Foundation
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

@testable import DynamoConsole

/// The space-time diagram of a traced request, from every node's part: as text at 80
/// columns (Unicode and ASCII) and as SVG.
@Suite struct SpaceTimeDiagramTests {
    typealias Step = TraceDocument.Step

    static let base: UInt64 = 1_800_000_000_000_000

    static func step(_ kind: String, _ ms: Double, peer: String? = nil, message: String? = nil, detail: String? = nil)
        -> Step
    {
        let us = base + UInt64(ms * 1000)
        return Step(kind: kind, peer: peer, message: message, detail: detail, monotonicUs: us - base + 5, wallUs: us)
    }

    /// A 5-node put with n5 down: entry n1 forwards to n2, which stores, writes to n4 and to
    /// n3 as a fallback keeping a hint for n5; n3 answers late.
    static let putWithNodeDown: [TraceDocument] = [
        TraceDocument(
            node: "n1", id: "t1",
            steps: [
                step("request", 0, detail: "put cart"), step("send", 0.1, peer: "n2", message: "forward"),
                step("reply", 3.0, peer: "n2", message: "forward", detail: "ok, 2 acks, W=2"),
                step("answered", 3.0, detail: "ok, 2 acks, W=2"),
            ]),
        TraceDocument(
            node: "n2", id: "t1",
            steps: [
                step("receive", 0.3, peer: "n1", message: "forward"), step("local", 1.0, message: "put", detail: "stored"),
                step("send", 1.1, peer: "n4", message: "put"), step("send", 1.1, peer: "n3", message: "put"),
                step("reply", 2.5, peer: "n4", message: "put", detail: "stored"),
                step("answer", 2.6, peer: "n1", message: "forward", detail: "ok, 2 acks, W=2"),
                step("reply", 40, peer: "n3", message: "put", detail: "stored"),
            ]),
        TraceDocument(
            node: "n3", id: "t1",
            steps: [
                step("receive", 1.5, peer: "n2", message: "put"), step("hint", 1.5, peer: "n5"),
                step("answer", 2.0, peer: "n2", message: "put", detail: "stored"),
            ]),
        TraceDocument(
            node: "n4", id: "t1",
            steps: [
                step("receive", 1.4, peer: "n2", message: "put"),
                step("answer", 2.2, peer: "n2", message: "put", detail: "stored"),
            ]),
    ]

    /// A get by n1 that finds n3 stale and repairs it after answering.
    static let getWithRepair: [TraceDocument] = [
        TraceDocument(
            node: "n1", id: "t2",
            steps: [
                step("request", 0, detail: "get cart"), step("send", 0.1, peer: "n2", message: "get"),
                step("send", 0.1, peer: "n3", message: "get"), step("local", 0.4, message: "get", detail: "1 version"),
                step("reply", 0.9, peer: "n2", message: "get", detail: "1 version"),
                step("answered", 0.9, detail: "1 version, R=2 met"),
                step("reply", 1.2, peer: "n3", message: "get", detail: "not found"),
                step("send", 1.2, peer: "n3", message: "repair"),
                step("reply", 2.0, peer: "n3", message: "repair", detail: "stored"),
            ]),
        TraceDocument(
            node: "n2", id: "t2",
            steps: [
                step("receive", 0.3, peer: "n1", message: "get"),
                step("answer", 0.6, peer: "n1", message: "get", detail: "1 version"),
            ]),
        TraceDocument(
            node: "n3", id: "t2",
            steps: [
                step("receive", 0.5, peer: "n1", message: "get"),
                step("answer", 1.0, peer: "n1", message: "get", detail: "not found"),
                step("receive", 1.5, peer: "n1", message: "repair"),
                step("answer", 1.8, peer: "n1", message: "repair", detail: "stored"),
            ]),
    ]

    @Test func aPutWithANodeDownShowsTheFallbackItsHintAndTheLateAnswer() {
        let diagram = SpaceTimeDiagram(id: "t1", parts: Self.putWithNodeDown)
        #expect(diagram.lanes == ["n1", "n2", "n3", "n4", "n5"], "the node stood in for has a lane too")
        #expect(diagram.missing == ["n5"])
        #expect(diagram.entry == "n1" && diagram.coordinator == "n2")
        #expect(diagram.messages.count == 6, "forward, 2 puts, their 2 answers, the forward's answer")
        let lines = diagram.lines(width: 80)
        for line in lines { #expect(line.count <= 80, "\(line)") }
        let text = lines.joined(separator: "\n")
        #expect(text.contains("n3 keeps a hint for n5"))
        #expect(text.contains("n2 quorum met, answers n1"))
        #expect(text.contains("n1 answers: ok, 2 acks, W=2"))
        #expect(text.contains("n3: stored (sent at 2.0) LATE"), "\(text)")
        #expect(text.contains("no part from n5 (down?)"))
        #expect(lines[1].hasPrefix("       n1"), "lanes named in the header: \(lines[1])")
        // Rows in time order: the hint (1.5) before the late answer (40).
        let hint = lines.firstIndex { $0.contains("keeps a hint") }!
        let late = lines.firstIndex { $0.contains("LATE") }!
        #expect(hint < late)
        #expect(lines[late].hasPrefix("  40.0"))
        #expect(lines[late - 1].contains("⋮ 37.0 ms pass") == false, "a wait under 50 ms gets no row")
        var slow = Self.putWithNodeDown
        slow[1].steps[6] = Self.step("reply", 340, peer: "n3", message: "put", detail: "stored")
        let slowLines = SpaceTimeDiagram(id: "t1", parts: slow).lines(width: 80)
        let gap = try! #require(slowLines.firstIndex { $0.contains("⋮ 337 ms pass") }, "\(slowLines)")
        #expect(slowLines[gap + 1].contains("LATE"), "the wait is said before the late answer")
        // Monochrome and ASCII: the same rows, only ASCII characters.
        let ascii = diagram.lines(width: 80, unicode: false)
        #expect(ascii.count == lines.count)
        #expect(ascii.allSatisfy { $0.unicodeScalars.allSatisfy { $0.isASCII } })
    }

    @Test func aGetShowsItsReadRepairAfterTheAnswer() {
        let diagram = SpaceTimeDiagram(id: "t2", parts: Self.getWithRepair)
        let lines = diagram.lines(width: 80)
        let text = lines.joined(separator: "\n")
        #expect(text.contains("repair n1→n3"))
        let answered = lines.firstIndex { $0.contains("n1 answers: 1 version, R=2 met") }!
        let repair = lines.firstIndex { $0.contains("repair n1→n3") }!
        #expect(answered < repair, "the repair follows the answer")
        #expect(lines[repair].contains("●") && lines[repair].contains("repair"))
        #expect(text.contains("n1 read locally: 1 version"))
        #expect(text.contains("n3: not found LATE"), "a get's answer after the reply is late")
        #expect(text.contains("n3: stored") && !text.contains("n3: stored LATE"), "a repair's answer never is")
        #expect(SpaceTimeDiagram.isComplete(Self.getWithRepair))
        var unfinished = Self.getWithRepair
        unfinished[0].steps.removeLast()
        #expect(!SpaceTimeDiagram.isComplete(unfinished), "the repair's answer is still to come")
    }

    @Test func aMessageThatNeverArrivedIsCrossedAndItsDeadlineMarked() {
        let parts = [
            TraceDocument(
                node: "n1", id: "t3",
                steps: [
                    Self.step("request", 0, detail: "put k W=3"), Self.step("send", 0.2, peer: "n2", message: "put"),
                    Self.step("noReply", 1000, peer: "n2", message: "put"),
                    Self.step("answered", 1000, detail: "failed, 1 acks, W=3"),
                ])
        ]
        let lines = SpaceTimeDiagram(id: "t3", parts: parts).lines(width: 80)
        let text = lines.joined(separator: "\n")
        #expect(text.contains("put n1→n2 (never arrived: no answer)"))
        #expect(text.contains("n1 no answer from n2 to its put"))
        #expect(lines.contains { $0.contains("╳") })
    }

    /// Counts the SVG's lanes and arrows with Foundation's XML parser.
    final class SVGCounter: NSObject, XMLParserDelegate {
        var lanes: [String] = []
        var arrows = 0
        var root: String?

        func parser(
            _ parser: XMLParser, didStartElement element: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            if root == nil { root = element }
            if element == "g", attributes["class"] == "lane" { lanes.append(attributes["data-node"] ?? "") }
            if element == "g", attributes["class"] == "arrow" { arrows += 1 }
        }
    }

    static func count(svg: String) throws -> SVGCounter {
        let parser = XMLParser(data: Data(svg.utf8))
        let counter = SVGCounter()
        parser.delegate = counter
        #expect(parser.parse(), "the SVG is well-formed XML: \(String(describing: parser.parserError))")
        return counter
    }

    /// Messages in the parts, counted without the diagram: each request sent, each answer
    /// sent, and each answer received whose sender's part is missing.
    static func messageCount(_ parts: [TraceDocument]) -> Int {
        let steps = parts.flatMap { part in part.steps.map { (part.node, $0) } }
        let sent = steps.filter { $0.1.kind == "send" || $0.1.kind == "answer" }.count
        let orphanReplies = steps.filter { reply in
            reply.1.kind == "reply" && !parts.contains { $0.node == reply.1.peer }
        }.count
        return sent + orphanReplies
    }

    @Test(arguments: [putWithNodeDown, getWithRepair])
    func theSVGParsesWithALanePerNodeAndAnArrowPerMessage(parts: [TraceDocument]) throws {
        let diagram = SpaceTimeDiagram(id: parts[0].id, parts: parts)
        let counter = try Self.count(svg: diagram.svg())
        #expect(counter.root == "svg")
        #expect(counter.lanes == diagram.lanes)
        #expect(counter.arrows == Self.messageCount(parts))
        #expect(diagram.svg().contains("class=\"legend\""))
    }

    @Test func hostileTextInATraceStaysInsideTheSVGText() throws {
        var parts = Self.getWithRepair
        parts[0].steps[0].detail = "get <script>&\"'\u{1}\u{FFFE}</svg>"
        let svg = SpaceTimeDiagram(id: "t2", parts: parts).svg()
        #expect(!svg.contains("<script>"))
        let counter = try Self.count(svg: svg)
        #expect(counter.lanes.count == 3)
    }
}

/// `trace save` writes a regular file and nothing else.
@Suite struct TraceSaveTests {
    @Test func onlyARegularFileIsWrittenAndItsModeKept() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("save-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = "\(directory)/kept.svg"
        try ReplSession.writeRegularFile(file, "one")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
        try ReplSession.writeRegularFile(file, "two")
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "two")
        #expect((try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int) == 0o600)
        try FileManager.default.createSymbolicLink(atPath: "\(directory)/link.svg", withDestinationPath: file)
        #expect(mkfifo("\(directory)/fifo.svg", 0o600) == 0)
        for (path, reason) in [
            (directory, "a directory"), ("\(directory)/link.svg", "a symbolic link"), ("\(directory)/fifo.svg", "not a regular file"),
            ("\(directory)/missing/x.svg", "cannot write"),
        ] {
            #expect(throws: CommandError.self) { try ReplSession.writeRegularFile(path, "x") }
            do { try ReplSession.writeRegularFile(path, "x") } catch let error as CommandError {
                #expect(error.message.contains(reason), "\(error.message)")
            }
        }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "two", "the link's target untouched")
    }
}
