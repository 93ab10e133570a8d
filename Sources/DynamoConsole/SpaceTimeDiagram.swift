public import DynamoAPI
import Foundation

/// A traced request as a space-time (Lamport) diagram: one lane per node involved, time
/// flowing down, one arrow per message, built from every node's part of the trace
/// (`GET /admin/trace/{id}`). Drawn as text for the console (readable at 80 columns, in
/// monochrome) and as SVG for slides.
///
/// The parts are lined up by the nodes' wall clocks (µs), which agree on one machine (on
/// several hosts, skew between their clocks shifts their lanes). Each message is one row,
/// at the moment it arrived (a message that never arrived: when it was sent), so a slow
/// reply sits where it took effect; its label is its kind, and the row's time is the ms
/// since the request came in.
public struct SpaceTimeDiagram: Sendable, Equatable {
    public struct Message: Sendable, Equatable {
        public var from: String
        public var to: String
        /// What it is: forward, get, put, repair, reap; for an answer, its gist (ok, value...).
        public var label: String
        /// An answer to a message (as opposed to a request).
        public var isAnswer: Bool
        /// µs after the request came in (nil: unknown, the sender's part is missing).
        public var sentUs: Int64?
        /// nil: it never arrived (lost, its node down, or not yet).
        public var arrivedUs: Int64?
        /// The answer arrived after the client was answered.
        public var late = false
        /// What the receiver's part says of it (an answer: its detail).
        public var detail: String?
        /// For an answer: the kind of message it answers.
        public var answering: String?
    }

    /// Something a node did on its own lane.
    public struct Mark: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            /// The client's request arrived.
            case request
            /// This node's own replica stored or read the key.
            case local
            /// It keeps a hint for the home node in `text`.
            case hint
            /// A peer never answered (its deadline passed).
            case noAnswer
            /// The quorum was met here and the client (or the forwarding node) answered.
            case quorum
        }
        public var node: String
        public var atUs: Int64
        public var kind: Kind
        public var text: String
    }

    public var id: String
    /// `put cart W=2`: what the client asked.
    public var request: String
    /// The node the client asked, and the one that coordinated (the same unless forwarded).
    public var entry: String?
    public var coordinator: String?
    public var lanes: [String]
    public var messages: [Message]
    public var marks: [Mark]
    /// When the client was answered (µs after the request came in).
    public var answeredUs: Int64?
    /// Nodes whose part of the trace was not there (down, or forgot it).
    public var missing: [String] = []

    /// Merges every node's part (a node named by another's steps without a part of its own
    /// is listed as missing: down, or it forgot the trace).
    public init(id: String, parts: [TraceDocument]) {
        self.id = id
        let all = parts.flatMap { part in part.steps.map { (node: part.node, step: $0) } }
        let start = all.first { $0.step.kind == "request" }?.step.wallUs ?? all.map(\.step.wallUs).min() ?? 0
        func at(_ step: TraceDocument.Step) -> Int64 {
            step.wallUs >= start ? Int64(clamping: step.wallUs - start) : -Int64(clamping: start - step.wallUs)
        }
        let requestStep = all.first { $0.step.kind == "request" }
        request = requestStep?.step.detail ?? "request"
        let entry = requestStep?.node
        self.entry = entry
        let answeredUs = all.first { $0.step.kind == "answered" }.map { at($0.step) }
        self.answeredUs = answeredUs
        // The coordinator: the node that stored the write first, or sent the replica requests.
        let coordinator =
            all.first { $0.step.kind == "local" && $0.step.message == "put" }?.node
            ?? all.first { $0.step.kind == "send" && $0.step.message != "forward" }?.node ?? entry
        self.coordinator = coordinator

        var messages: [Message] = []
        var marks: [Mark] = []
        // Receivers' records, consumed as the senders' records are matched.
        var receives = all.filter { $0.step.kind == "receive" }
        var replies = all.filter { $0.step.kind == "reply" }
        let noReplies = all.filter { $0.step.kind == "noReply" }
        for (node, step) in all {
            switch step.kind {
            case "send":
                guard let peer = step.peer else { continue }
                let kind = step.message ?? "?"
                var message = Message(
                    from: node, to: peer, label: kind, isAnswer: false, sentUs: at(step), arrivedUs: nil)
                if let index = receives.firstIndex(where: {
                    $0.node == peer && $0.step.peer == node && $0.step.message == step.message
                }) {
                    message.arrivedUs = at(receives.remove(at: index).step)
                }
                messages.append(message)
            case "answer":
                guard let peer = step.peer else { continue }
                var message = Message(
                    from: node, to: peer, label: Self.gist(step.detail), isAnswer: true, sentUs: at(step),
                    arrivedUs: nil, detail: step.detail, answering: step.message)
                if let index = replies.firstIndex(where: {
                    $0.node == peer && $0.step.peer == node && $0.step.message == step.message
                }) {
                    message.arrivedUs = at(replies.remove(at: index).step)
                }
                messages.append(message)
            case "request":
                marks.append(Mark(node: node, atUs: at(step), kind: .request, text: "client \(step.detail ?? "?")"))
            case "local":
                let what = step.message == "get" ? "read locally" : "stored locally"
                let detail = step.detail.map { $0 == "stored" ? "" : ": \($0)" } ?? ""
                marks.append(Mark(node: node, atUs: at(step), kind: .local, text: what + detail))
            case "hint":
                marks.append(
                    Mark(node: node, atUs: at(step), kind: .hint, text: "keeps a hint for \(step.peer ?? "?")"))
            case "answered":
                marks.append(
                    Mark(node: node, atUs: at(step), kind: .quorum, text: "answers: \(step.detail ?? "")"))
            default:
                continue
            }
        }
        // Answers whose sender's part is missing: known only by their arrival.
        for (node, step) in replies {
            guard let peer = step.peer else { continue }
            messages.append(
                Message(
                    from: peer, to: node, label: Self.gist(step.detail), isAnswer: true, sentUs: nil,
                    arrivedUs: at(step), detail: step.detail, answering: step.message))
        }
        for (node, step) in noReplies {
            let what = step.message.map { " to its \($0)" } ?? ""
            marks.append(
                Mark(node: node, atUs: at(step), kind: .noAnswer, text: "no answer from \(step.peer ?? "?")\(what)"))
        }
        // A forwarded write: the coordinator's answer to the forwarder is its quorum moment.
        if let forwardAnswer = messages.first(where: { $0.isAnswer && $0.to == entry && $0.from == coordinator && $0.from != entry }),
            let sent = forwardAnswer.sentUs
        {
            marks.append(
                Mark(node: forwardAnswer.from, atUs: sent, kind: .quorum, text: "quorum met, answers \(forwardAnswer.to)"))
        }
        // Late: an answer the client's reply could have waited for (not a repair's, which
        // always follows the reply) that came after it.
        if let answeredUs {
            for index in messages.indices where messages[index].isAnswer {
                let waitable = !["repair", "reap"].contains(messages[index].answering ?? "")
                if waitable, let arrived = messages[index].arrivedUs, arrived > answeredUs, messages[index].to == coordinator {
                    messages[index].late = true
                }
            }
        }
        self.messages = messages
        self.marks = marks
        var names = Set(parts.map(\.node))
        for message in messages { names.formUnion([message.from, message.to]) }
        for mark in marks where mark.kind == .hint { names.insert(String(mark.text.split(separator: " ").last ?? "")) }
        names.remove("")
        lanes = names.sorted { ($0.count, $0) < ($1.count, $1) }
        missing = lanes.filter { lane in !parts.contains { $0.node == lane } }
    }

    /// An answer's detail in a word or two, for its arrow.
    static func gist(_ detail: String?) -> String {
        guard let detail else { return "answer" }
        if detail.hasPrefix("failed") { return "failed" }
        if detail.hasPrefix("stored") || detail.hasPrefix("ok") { return "ok" }
        if detail.hasPrefix("not found") { return "none" }
        if detail.hasSuffix("version") { return "value" }
        if detail.hasSuffix("versions") { return "values" }
        return "answer"
    }

    /// Whether every message sent has its answer or its deadline recorded, and the client
    /// was answered: later fetches would add nothing.
    public static func isComplete(_ parts: [TraceDocument]) -> Bool {
        let steps = parts.flatMap { part in part.steps.map { (part.node, $0) } }
        guard steps.contains(where: { $0.1.kind == "answered" }) else { return false }
        for (node, step) in steps where step.kind == "send" {
            let sent = steps.filter { $0.0 == node && $0.1.kind == "send" && $0.1.peer == step.peer && $0.1.message == step.message }.count
            let settled = steps.filter {
                $0.0 == node && ($0.1.kind == "reply" || $0.1.kind == "noReply") && $0.1.peer == step.peer
                    && $0.1.message == step.message
            }.count
            if settled < sent { return false }
        }
        return true
    }

    // MARK: Rows

    /// One row of the diagram: a message (at its arrival, or its sending if it never
    /// arrived) or a mark, in time order.
    enum Row {
        case message(Message)
        case mark(Mark)

        var atUs: Int64 {
            switch self {
            case .message(let message): message.arrivedUs ?? message.sentUs ?? 0
            case .mark(let mark): mark.atUs
            }
        }
    }

    var rows: [Row] {
        let all = messages.map(Row.message) + marks.map(Row.mark)
        // Stable: at equal times, messages and marks keep the order the nodes recorded.
        return all.enumerated().sorted { ($0.element.atUs, $0.offset) < ($1.element.atUs, $1.offset) }.map(\.element)
    }

    /// µs as ms for people (`Render.ms`).
    static func ms(_ us: Int64) -> String { Render.ms(Double(us) / 1000) }

    /// What a row says in words.
    func note(_ row: Row, unicode: Bool = true) -> String {
        switch row {
        case .mark(let mark):
            return "\(mark.node) \(mark.text)"
        case .message(let message):
            var text: String
            if message.isAnswer {
                text = "\(message.from): \(message.detail ?? message.label)"
            } else {
                text = "\(message.label) \(message.from)\(unicode ? "→" : "->")\(message.to)"
            }
            if message.arrivedUs == nil {
                text += message.isAnswer ? " (never arrived)" : " (never arrived: no answer)"
            } else if let sent = message.sentUs, let arrived = message.arrivedUs, arrived - sent >= 5000 {
                text += " (sent at \(Self.ms(sent)))"
            }
            if message.late { text += " LATE" }
            return text
        }
    }

    // MARK: Text

    /// The diagram as lines at most `width` columns wide (`unicode` false: ASCII only).
    public func lines(width: Int, unicode: Bool = true) -> [String] {
        let g =
            unicode
            ? (lane: "│", send: "●", line: "─", right: "▶", left: "◀", lost: "╳", quorum: "◆", hint: "H", local: "■", none: "╳")
            : (lane: "|", send: "*", line: "-", right: ">", left: "<", lost: "x", quorum: "#", hint: "H", local: "o", none: "x")
        let timeWidth = 6
        let laneCount = max(1, lanes.count)
        // Lanes share what the notes leave (at least 30 columns of words).
        let spacing = max(4, min(12, (width - timeWidth - 1 - 30) / laneCount))
        let lanesWidth = spacing * laneCount
        let noteStart = timeWidth + 1 + lanesWidth
        let noteWidth = max(8, width - noteStart)
        func column(_ node: String) -> Int? { lanes.firstIndex(of: node).map { timeWidth + 1 + $0 * spacing + 1 } }

        var out: [String] = []
        let via = coordinator.map { c in entry == c || entry == nil ? " via \(c)" : " via \(entry!), coordinated by \(c)" } ?? ""
        out.append(Self.fit("trace \(request)\(via)\(unicode ? " · " : " - ")ms since it came in", width, unicode))
        var header = Array(String(repeating: " ", count: noteStart))
        for (index, lane) in lanes.enumerated() {
            let start = timeWidth + 1 + index * spacing
            for (offset, char) in lane.prefix(spacing - 1).enumerated() { header[start + offset] = char }
        }
        while header.last == " " { header.removeLast() }
        out.append(Self.fit(String(header), width))
        var previous: Int64?
        for row in rows {
            // A long wait gets a row of its own: the rows are not drawn to scale.
            if let previous, row.atUs - previous >= Self.gapUs {
                var gap = Array(String(repeating: " ", count: noteStart))
                gap[timeWidth - 1] = unicode ? "⋮" : ":"
                for lane in lanes { if let c = column(lane) { gap[c] = Character(g.lane) } }
                let text = "\(unicode ? "⋮" : ":") \(Self.ms(row.atUs - previous)) ms pass"
                out.append(Self.fit(String(gap) + text, width, unicode))
            }
            previous = row.atUs
            var cells = Array(String(repeating: " ", count: noteStart))
            let time = Self.ms(row.atUs)
            for (offset, char) in Render.right(time, timeWidth).prefix(timeWidth).enumerated() { cells[offset] = char }
            for lane in lanes { if let c = column(lane) { cells[c] = Character(g.lane) } }
            switch row {
            case .mark(let mark):
                guard let c = column(mark.node) else { continue }
                let glyph: String
                switch mark.kind {
                case .request: glyph = g.send
                case .local: glyph = g.local
                case .hint: glyph = g.hint
                case .noAnswer: glyph = g.none
                case .quorum: glyph = g.quorum
                }
                cells[c] = Character(glyph)
            case .message(let message):
                guard let a = column(message.from), let b = column(message.to), a != b else { continue }
                let (low, high) = (min(a, b), max(a, b))
                for c in (low + 1)..<high { cells[c] = Character(g.line) }
                cells[a] = Character(g.send)
                if message.arrivedUs == nil {
                    // Never arrived: the arrow stops short with a cross.
                    let cross = a < b ? high - 1 : low + 1
                    cells[cross] = Character(g.lost)
                    for c in (low + 1)..<high where (a < b ? c > cross : c < cross) { cells[c] = " " }
                } else if a < b {
                    cells[high - 1] = Character(g.right)
                } else {
                    cells[low + 1] = Character(g.left)
                }
                // The label inside the arrow when it fits.
                let label = Array(message.label)
                let room = high - low - 3
                if label.count + 2 <= room {
                    let start = low + 2 + (room - label.count) / 2
                    for (offset, char) in label.enumerated() { cells[start + offset] = char }
                }
            }
            out.append(Self.fit(String(cells) + Self.fit(note(row, unicode: unicode), noteWidth, unicode), width, unicode))
        }
        var legend = unicode
            ? "●send ▶arrive ╳lost/none ◆answer ■own copy H hint"
            : "*send >arrive x lost/none #answer o own copy H hint"
        if !missing.isEmpty { legend = "no part from \(missing.joined(separator: ",")) (down?)\(unicode ? " · " : " - ")" + legend }
        out.append(Self.fit(legend, width, unicode))
        return out
    }

    /// A wait between two rows at least this long gets a row saying so (µs).
    static let gapUs: Int64 = 50_000

    /// `text` cut to `width` columns (with an ellipsis when cut).
    static func fit(_ text: String, _ width: Int, _ unicode: Bool = true) -> String {
        let text = unicode ? text : String(String.UnicodeScalarView(text.unicodeScalars.map { $0.isASCII ? $0 : "?" }))
        guard text.count > width else { return text }
        guard width > 3 else { return String(text.prefix(max(0, width))) }
        return unicode ? String(text.prefix(width - 1)) + "…" : String(text.prefix(width - 3)) + "..."
    }

    // MARK: SVG

    /// The diagram as a standalone SVG document: a lane per node (`class="lane"`), an arrow
    /// per message (`class="arrow"`), the marks and every row's words; no external
    /// reference (fonts fall back to the viewer's monospace).
    public func svg() -> String {
        let laneGap = 130
        let left = 70
        let top = 70
        let rowHeight = 26
        let all = rows
        let notesX = left + laneGap * max(0, lanes.count - 1) + 60
        let width = notesX + 420
        let height = top + rowHeight * (all.count + 1) + 60
        func x(_ node: String) -> Int { left + laneGap * (lanes.firstIndex(of: node) ?? 0) }
        func y(_ index: Int) -> Int { top + rowHeight * (index + 1) }
        var svg: [String] = [
            #"<?xml version="1.0" encoding="UTF-8"?>"#,
            #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(width)" height="\#(height)" viewBox="0 0 \#(width) \#(height)" font-family="monospace" font-size="13">"#,
            "<title>\(Self.escape("trace \(id): \(request)"))</title>",
            #"<defs><marker id="head" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto"><path d="M0,0 L10,4 L0,8 z" fill="black"/></marker></defs>"#,
            #"<rect width="100%" height="100%" fill="white"/>"#,
            "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">\(Self.escape("trace \(request)" + (coordinator.map { " · coordinated by \($0)" } ?? "")))</text>",
            "<text x=\"10\" y=\"40\" fill=\"#555\">\(Self.escape("ms since the request came in; one row per message (at its arrival) or step"))</text>",
        ]
        for lane in lanes {
            let bottom = height - 50
            // A node without a part (down) is a dashed lane.
            let absent = missing.contains(lane)
            let label = absent ? "\(lane) (down?)" : lane
            let dash = absent ? " stroke-dasharray=\"4,4\"" : ""
            svg.append(
                "<g class=\"lane\" data-node=\"\(Self.escape(lane))\"><text x=\"\(x(lane))\" y=\"\(top)\" text-anchor=\"middle\" font-weight=\"bold\">\(Self.escape(label))</text><line x1=\"\(x(lane))\" y1=\"\(top + 6)\" x2=\"\(x(lane))\" y2=\"\(bottom)\" stroke=\"#999\" stroke-width=\"2\"\(dash)/></g>"
            )
        }
        for (index, row) in all.enumerated() {
            let rowY = y(index)
            svg.append("<text x=\"10\" y=\"\(rowY + 4)\" fill=\"#555\">\(Self.ms(row.atUs))</text>")
            switch row {
            case .message(let message):
                let (x1, x2) = (x(message.from), x(message.to))
                let end = message.arrivedUs == nil ? x1 + (x2 - x1) * 3 / 4 : x2 + (x2 > x1 ? -4 : 4)
                let dash = message.isAnswer ? " stroke-dasharray=\"6,3\"" : ""
                let head = message.arrivedUs == nil ? "" : " marker-end=\"url(#head)\""
                var group =
                    "<g class=\"arrow\" data-from=\"\(Self.escape(message.from))\" data-to=\"\(Self.escape(message.to))\"><line x1=\"\(x1)\" y1=\"\(rowY)\" x2=\"\(end)\" y2=\"\(rowY)\" stroke=\"black\" stroke-width=\"1.5\"\(dash)\(head)/>"
                group += "<text x=\"\((x1 + end) / 2)\" y=\"\(rowY - 4)\" text-anchor=\"middle\">\(Self.escape(message.label))</text>"
                if message.arrivedUs == nil {
                    group += "<text x=\"\(end)\" y=\"\(rowY + 5)\" text-anchor=\"middle\" font-weight=\"bold\">×</text>"
                }
                svg.append(group + "</g>")
            case .mark(let mark):
                let cx = x(mark.node)
                let shape: String
                switch mark.kind {
                case .quorum:
                    shape = "<path d=\"M\(cx),\(rowY - 7) L\(cx + 7),\(rowY) L\(cx),\(rowY + 7) L\(cx - 7),\(rowY) z\" fill=\"black\"/>"
                case .hint:
                    shape = "<text x=\"\(cx)\" y=\"\(rowY + 5)\" text-anchor=\"middle\" font-weight=\"bold\">H</text>"
                case .noAnswer:
                    shape = "<text x=\"\(cx)\" y=\"\(rowY + 5)\" text-anchor=\"middle\" font-weight=\"bold\">×</text>"
                case .local:
                    shape = "<rect x=\"\(cx - 5)\" y=\"\(rowY - 5)\" width=\"10\" height=\"10\" fill=\"black\"/>"
                case .request:
                    shape = "<circle cx=\"\(cx)\" cy=\"\(rowY)\" r=\"5\" fill=\"black\"/>"
                }
                svg.append("<g class=\"mark\">\(shape)</g>")
            }
            svg.append("<text x=\"\(notesX)\" y=\"\(rowY + 4)\">\(Self.escape(note(row)))</text>")
        }
        var legend =
            "● sends, arrow head arrives (dashed: an answer) · × lost or no answer · ◆ client answered · ■ own replica · H hint kept for a node down"
        if !missing.isEmpty { legend = "no part from \(missing.joined(separator: ", ")) (down?) · " + legend }
        svg.append("<text class=\"legend\" x=\"10\" y=\"\(height - 20)\" fill=\"#555\">\(Self.escape(legend))</text>")
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            // Characters XML 1.0 does not allow are left out (a key may hold anything).
            case _ where scalar.value < 0x20 && scalar != "\t" && scalar != "\n": continue
            case _ where scalar.value == 0xFFFE || scalar.value == 0xFFFF: continue
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
