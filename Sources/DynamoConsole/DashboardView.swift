import DynamoAPI
import DynamoCore
import Foundation

/// Draws the dashboard into a `Canvas`: pure, so every layout is tested as text at any size.
///
/// Layout, top to bottom: a header with the cluster's vital signs and the key legend; the
/// ring beside the node table; the gossip matrix beside hints and anti-entropy; the event
/// log; a demo's narration; the prompt's output. The last row is left to the prompt.
///
/// The output area is sized to the reply of the last command (a sibling list, a trace, a
/// status), so the answer stays on screen while the prompt waits; the panels give up rows
/// for it, the gossip row first. One panel can take the whole screen (`view`, F2-F8), and
/// the output and events scroll back (PgUp/PgDn). Panels grow with the terminal: from
/// 120x36 the ring is larger, the gossip matrix shows heartbeat ages, anti-entropy lists
/// ranges that differ and the node table adds latency sparklines.
public enum DashboardView {
    /// Smallest usable terminal; below it the screen says so (the prompt still works).
    public static let minimumWidth = 60
    public static let minimumHeight = 16

    /// What the screen shows: every panel, or one panel given the room above the output.
    public enum Panel: String, CaseIterable, Sendable {
        case all, ring, nodes, gossip, sync, events, output

        /// The function key that shows it: F2 every panel, F3 the ring ... F8 the output.
        public var key: String { "F\((Self.allCases.firstIndex(of: self) ?? 0) + 2)" }

        /// What it is, for the header and the help.
        public var summary: String {
            switch self {
            case .all: "every panel"
            case .ring: "the ring large, with its ranges and their home nodes"
            case .nodes: "the node table, with latency and sync columns"
            case .gossip: "the gossip matrix, with heartbeat ages"
            case .sync: "hints and anti-entropy, each differing range"
            case .events: "the event log, scrollable"
            case .output: "the prompt's output, scrollable"
            }
        }
    }

    /// A demo's words for the current step, kept on screen for the whole step.
    public struct Narration: Sendable, Equatable {
        public var title: String
        public var lines: [String]
        /// The demo waits for Enter.
        public var waiting: Bool
        /// The command Enter will run (`--step`), shown while waiting.
        public var next: String?
        /// What the demo is waiting for, while it polls the cluster.
        public var status: String?
        /// Which pause this is (`3/9`), shown with the Enter prompt.
        public var step: String?
        public init(title: String, lines: [String], waiting: Bool, next: String? = nil, status: String? = nil) {
            self.title = title
            self.lines = lines
            self.waiting = waiting
            self.next = next
            self.status = status
        }
    }

    public struct Options: Sendable {
        public var unicode = true
        /// The `?` overlay: commands, keys and a legend of every panel.
        public var help = false
        /// Lines the help overlay is scrolled down.
        public var helpOffset = 0
        public var view: Panel = .all
        /// The first output line shown while scrolled (PgUp/PgDn); nil: at rest, the newest
        /// lines (or the start of a reply longer than the area). Scrolled, the output
        /// takes the screen.
        public var outputTop: Int?
        /// Lines the event log is scrolled back from the newest.
        public var eventsOffset = 0
        /// Only events whose text contains this (case-insensitive).
        public var eventFilter: String?
        /// The log is paused: events after this wall time are held back (counted).
        public var eventsPausedAtMs: UInt64?
        public var narration: Narration?
        /// R and W set for this session (`r N`, `w N`): the header shows them, starred.
        public var sessionR: Int?
        public var sessionW: Int?

        public init(unicode: Bool = true, help: Bool = false) {
            self.unicode = unicode
            self.help = help
        }
    }

    public static let legend = "?:help  F2-F8:views  PgUp:scroll"

    /// Where everything goes at this size, and the output's lines as they will show.
    struct Layout {
        var panels: [(Panel, Rect)] = []
        var narration: Rect?
        var output: Rect
        /// Every output line wrapped to the width, with its style.
        var outputLines: [(text: String, style: Canvas.Style, continued: Bool)]
        /// The first of `outputLines` shown, and the offset that gives it (clamped).
        var outputTop: Int
        var scrolled: Bool
        var large: Bool
    }

    public static func render(
        _ model: DashboardModel, output: [String], width: Int, height: Int, options: Options = .init()
    ) -> Canvas {
        var canvas = Canvas(width: width, height: height, unicode: options.unicode)
        guard width >= minimumWidth, height >= minimumHeight else {
            canvas.put("dynamo: terminal too small (\(width)x\(height));", row: 0, col: 0, style: .warn)
            canvas.put("the dashboard needs \(minimumWidth)x\(minimumHeight).", row: 1, col: 0, style: .warn)
            let lines = wrapOutput(output, width: width)
            for (i, line) in lines.suffix(max(0, height - 3)).enumerated() {
                canvas.put(line.text, row: 2 + i, col: 0, style: line.style)
            }
            return canvas
        }
        let layout = plan(model, output: output, width: width, height: height, options: options)
        let names = model.memberNames
        let ring = model.ring
        drawHeader(
            model, view: options.outputTop != nil && options.view != .events ? .output : options.view,
            session: (options.sessionR, options.sessionW), into: &canvas)
        for (panel, rect) in layout.panels {
            let large = layout.large || options.view == panel
            switch panel {
            case .ring: RingView.draw(model, ring: ring, names: names, zoomed: options.view == .ring, into: &canvas, rect)
            case .nodes: drawNodes(model, ring: ring, names: names, large: large, into: &canvas, rect)
            case .gossip: drawGossip(model, names: names, large: large, into: &canvas, rect)
            case .sync: drawRepair(model, names: names, large: large, into: &canvas, rect)
            case .events: drawEvents(model, options: options, into: &canvas, rect)
            case .all, .output: break
            }
        }
        if let rect = layout.narration, let narration = options.narration {
            drawNarration(narration, into: &canvas, rect)
        }
        drawOutput(layout, into: &canvas)
        if options.help { drawHelp(model, offset: options.helpOffset, into: &canvas) }
        return canvas
    }

    /// The offsets in `options` kept within what there is to scroll at this size.
    public static func clamped(
        _ options: Options, model: DashboardModel, output: [String], width: Int, height: Int
    ) -> Options {
        var options = options
        guard width >= minimumWidth, height >= minimumHeight else { return options }
        if options.outputTop != nil {
            options.outputTop = plan(model, output: output, width: width, height: height, options: options).outputTop
        }
        let events = filteredEvents(model, options: options)
        options.eventsOffset = max(0, min(options.eventsOffset, events.count - 1))
        options.helpOffset = max(0, min(options.helpOffset, helpLines(model, width: width - 3).count - (height - 4)))
        return options
    }

    /// `options` after PgUp (`pages` 1) or PgDn (-1), or an arrow in the help (±0.5: a
    /// line, given as `lines`): the help scrolls when open, the events in the events view,
    /// else the output, a page at a time without skipping a line. The first PgUp or PgDn
    /// gives the output the screen; PgDn at its end returns to where it rests.
    public static func scrolled(
        _ options: Options, pages: Int, lines: Int = 0, model: DashboardModel, output: [String], width: Int,
        height: Int
    ) -> Options {
        var options = options
        guard width >= minimumWidth, height >= minimumHeight else { return options }
        if options.help {
            options.helpOffset -= lines != 0 ? lines : pages * (height - 5)
        } else if options.view == .events {
            options.eventsOffset += pages * max(1, height - 6)
        } else {
            let now = plan(model, output: output, width: width, height: height, options: options)
            var alone = options
            alone.outputTop = 0
            let page = plan(model, output: output, width: width, height: height, options: alone)
            let rows = page.output.height
            let last = max(0, now.outputLines.count - rows)
            if pages > 0 {
                options.outputTop = max(0, (options.outputTop ?? now.outputTop) - (rows - 1) * pages)
            } else if let top = options.outputTop {
                options.outputTop = top >= last ? nil : min(last, top + (rows - 1) * -pages)
            } else if now.outputTop + now.output.height < now.outputLines.count {
                // At rest with more below (a long reply): on from the last line shown.
                options.outputTop = min(last, now.outputTop + now.output.height - 1)
            }
        }
        return clamped(options, model: model, output: output, width: width, height: height)
    }

    static func plan(_ model: DashboardModel, output: [String], width: Int, height: Int, options: Options) -> Layout {
        // Scrolled back, the output takes the screen (a page of three lines is no use).
        var options = options
        if options.outputTop != nil, options.view != .events { options.view = .output }
        let large = options.view == .all && width >= 120 && height >= 36
        let names = model.memberNames
        let body = height - 2  // header and prompt
        var narrationRows = 0
        if let narration = options.narration {
            let text = (narration.lines + (narration.status.map { [$0] } ?? [])).flatMap {
                TextWrap.wrap($0, width: width - 4, hanging: false)
            }
            narrationRows = min(text.count + 2, max(5, body / 3))
        }
        // The output: the whole reply of the last command when it fits beside the panels.
        let lines = wrapOutput(output, width: width)
        let replyStart = lines.lastIndex { isEcho($0.text) } ?? max(0, lines.count - 3)
        let needed = lines.count - replyStart
        let outputRows: Int
        if options.view == .output {
            outputRows = body - narrationRows
        } else {
            // The panels keep 8 rows when the reply fits beside them; a longer reply (a
            // sibling list at 60x16, a trace) takes all but the events' 3 rows.
            let beside = body - narrationRows - 8
            let cap = needed <= beside ? beside : body - narrationRows - 3
            outputRows = max(1, min(max(3, cap), max(needed, large ? 6 : 3)))
        }
        // At rest the area ends with the newest line; a reply longer than it shows from
        // its first line (the rest a PgDn away).
        var restingTop = needed <= outputRows ? max(0, lines.count - outputRows) : replyStart
        // Never the tail of a wrapped line at the top: start at the next whole line.
        while restingTop > 0, restingTop < lines.count, lines[restingTop].continued { restingTop += 1 }
        let top = options.outputTop.map { max(0, min($0, lines.count - outputRows)) } ?? restingTop
        var layout = Layout(
            output: Rect(row: height - 1 - outputRows, col: 0, width: width, height: outputRows), outputLines: lines,
            outputTop: top, scrolled: options.outputTop != nil, large: large)
        var row = 1
        let area = body - narrationRows - outputRows
        switch options.view {
        case .all:
            let leftWidth = large ? min(56, width / 3) : max(26, min(34, width / 3))
            // The ring and node table take at most half (the table says `… N more`).
            let top = max(0, min(max(names.count + 3, large ? 15 : 8), max(8, area / 2), area - 2))
            var middle = max(0, min(names.count + 3 + (large ? 2 : 0), area - top - 3))
            if middle < min(names.count + 3, 6) { middle = 0 }
            layout.panels.append((.ring, Rect(row: row, col: 0, width: leftWidth, height: top)))
            layout.panels.append((.nodes, Rect(row: row, col: leftWidth, width: width - leftWidth, height: top)))
            row += top
            if middle > 0 {
                layout.panels.append((.gossip, Rect(row: row, col: 0, width: leftWidth, height: middle)))
                layout.panels.append((.sync, Rect(row: row, col: leftWidth, width: width - leftWidth, height: middle)))
                row += middle
            }
            layout.panels.append((.events, Rect(row: row, col: 0, width: width, height: area - top - middle)))
            row = 1 + area
        case .output:
            break
        case let panel:
            layout.panels.append((panel, Rect(row: row, col: 0, width: width, height: area)))
            row += area
        }
        if narrationRows > 0 { layout.narration = Rect(row: row, col: 0, width: width, height: narrationRows) }
        return layout
    }

    /// A line echoing what was typed at a prompt: where a reply starts.
    static func isEcho(_ line: String) -> Bool {
        line.hasPrefix("dynamo> ") || line.hasPrefix("resolve> ") || line.hasPrefix("next> ")
    }

    /// Output lines wrapped at word boundaries, each with its style.
    static func wrapOutput(_ output: [String], width: Int) -> [(text: String, style: Canvas.Style, continued: Bool)] {
        output.flatMap { line -> [(text: String, style: Canvas.Style, continued: Bool)] in
            let style: Canvas.Style =
                line.hasPrefix("error")
                ? .bad
                : line.hasPrefix("ok")
                    ? .good
                    : line.hasPrefix("»") ? .accent : isEcho(line) ? .dim : .plain
            return TextWrap.wrap(line, width: width).enumerated().map { ($0.element, style, $0.offset > 0) }
        }
    }

    // MARK: Panels

    /// The cluster's vital signs, then the keys. The clock and `?:help` always show: what
    /// does not fit gives way in order (the partition spelled shorter, then the policy).
    private static func drawHeader(
        _ model: DashboardModel, view: Panel, session: (r: Int?, w: Int?), into canvas: inout Canvas
    ) {
        let current = model.nodes.filter { !$0.departed }
        let gone = model.nodes.filter(\.departed).map(\.name)
        let up = current.filter(\.answering).count
        let clockText = clock(model.nowMs)
        let viewText = view == .all ? nil : "view \(view.rawValue) (F2: all)"
        // Levels of shortening: the partition's groups outrank the wording around them.
        func parts(level: Int) -> [String] {
            var parts = ["dynamo", level < 2 ? "\(current.count) nodes, \(up) up" : "\(up)/\(current.count) up"]
            if !gone.isEmpty { parts.append("\(gone.joined(separator: ",")) left") }
            if let q = model.quorum {
                let strict = q.sloppy == false
                // A strict quorum is always said (it changes what the cluster accepts).
                // The session's own R and W, starred, over the cluster's (what requests use).
                let r = session.r.map { "R\($0)*" } ?? "R\(q.r)"
                let w = session.w.map { "W\($0)*" } ?? "W\(q.w)"
                parts.append("N\(q.n) \(r) \(w)" + (level < 1 || strict ? (strict ? " strict" : " sloppy") : ""))
            }
            if let partition = model.partition {
                switch level {
                case 0: parts.append("partition \(partition)")
                case 1, 2: parts.append("partition " + partition.replacingOccurrences(of: " ", with: ""))
                default: parts.append("partitioned")
                }
            }
            if let links = model.links {
                switch level {
                case 0, 1: parts.append("slow/lossy " + links)
                case 2:
                    parts.append(
                        "slow/lossy "
                            + links.replacingOccurrences(of: " · ", with: ", ").replacingOccurrences(of: " lost", with: ""))
                default: parts.append("slow/lossy links")
                }
            }
            if let viewText { parts.append(level < 2 ? viewText : view.rawValue) }
            parts.append(clockText)
            return parts
        }
        let legends = [legend, "?:help F2-F8:views", "?:help"]
        var chosen = (" " + parts(level: 3).joined(separator: " · "), legends[2])
        search: for level in 0...3 {
            let left = " " + parts(level: level).joined(separator: " · ")
            for legendText in legends where left.count + 2 + legendText.count + 1 <= canvas.width {
                chosen = (left, legendText)
                break search
            }
        }
        let (left, legendText) = chosen
        canvas.put(left, row: 0, col: 0, style: .bold)
        for (shown, word) in [(model.partition != nil, "partition"), (model.links != nil, "slow/lossy")] where shown {
            guard let range = left.range(of: word) else { continue }
            let start = left.distance(from: left.startIndex, to: range.lowerBound)
            let end = left[range.lowerBound...].firstIndex(of: "·").map { left.distance(from: left.startIndex, to: $0) }
            canvas.style(row: 0, col: start, count: (end ?? left.count) - start - 1, .bad)
        }
        canvas.put(
            legendText + " ", row: 0, col: max(left.count + 1, canvas.width - legendText.count - 1), style: .accent)
    }

    private static func drawNodes(
        _ model: DashboardModel, ring: Ring, names: [String], large: Bool, into canvas: inout Canvas, _ rect: Rect
    ) {
        var header = " node  state   tok home   keys  hints→   rps p99ms"
        if large { header += rect.width - 2 >= header.count + 44 ? " p50ms sync     requests/s (last 30 polls)" : " p50ms sync     req/s" }
        // Columns that do not fit are said to be there.
        let cut = header.count > rect.width - 2 && !large
        let inside = canvas.box(rect, title: cut ? "nodes (F4: every column)" : "nodes")
        guard inside.height >= 1 else { return }
        let shares = ring.homeShare(n: model.quorum?.n ?? 3)
        // One row: it says how many nodes there are (below), not a header over nothing.
        if inside.height >= 2 { canvas.put(header, row: inside.row, col: inside.col, style: .dim, limit: inside.width) }
        // Rows that do not fit: the nodes down first among those shown, then a line that
        // says how many more (and how many of them are down).
        let fit = names.count + 1 <= inside.height ? names.count : max(0, inside.height - 2)
        // Rows that say something (a node down, holding hints, not up) are kept before
        // quiet ones, in table order: a demo pointing at a fallback's hints finds its row.
        func notable(_ name: String) -> Bool {
            guard let node = model.nodes.first(where: { $0.name == name }), node.answering else { return true }
            return (node.status?.hints.pending ?? 0) > 0 || node.departed
                || node.status?.members.first { $0.name == name }?.status != "up"
        }
        let kept = Set((names.filter(notable) + names.filter { !notable($0) }).prefix(fit))
        let shown = names.filter { kept.contains($0) }
        if fit < names.count {
            let hidden = names.filter { !kept.contains($0) }
            let down = hidden.filter { name in model.nodes.first { $0.name == name }?.answering != true }.count
            let more = " … \(hidden.count) more nodes\(down > 0 ? ", \(down) not answering" : "") · F4 shows all"
            canvas.put(more, row: inside.row + inside.height - 1, col: inside.col, style: down > 0 ? .warn : .dim, limit: inside.width)
        }
        for (i, name) in shown.enumerated() {
            let row = inside.row + 1 + i
            let node = model.nodes.first { $0.name == name }
            let status = node?.status
            let member = model.view?.members.first { $0.name == name }
            let (state, stateStyle) = nodeState(node, member: member)
            let answering = node?.answering ?? false
            let share = shares[name].map { String(format: "%3.0f%%", $0 * 100) } ?? "  - "
            let keys = answering ? "\(status?.keys ?? 0)" : "-"
            let hints = answering ? hintsText(status?.hints) : "-"
            let rps = answering ? String(format: "%.0f", node?.requestsPerSecond ?? 0) : "-"
            let p99 = answering ? (status?.requests?.p99Ms).map { String(format: "%.1f", $0) } ?? "-" : "-"
            var col = inside.col
            func cell(_ text: String, _ width: Int, right: Bool = false, style: Canvas.Style = .plain) {
                let clipped = String(text.prefix(width))
                let padded = right ? String(repeating: " ", count: width - clipped.count) + clipped : clipped
                canvas.put(padded, row: row, col: col, style: style, limit: inside.col + inside.width - col)
                col += width + 1
            }
            col += 1
            cell(name, 5, style: .bold)
            cell(state, 7, style: stateStyle)
            cell("\(member?.tokens.count ?? 0)", 3, right: true)
            cell(share, 4, right: true)
            cell(keys, 6, right: true)
            cell(hints, 7, right: true, style: hints == "0" || hints == "-" ? .plain : .warn)
            cell(rps, 5, right: true)
            cell(p99, 5, right: true)
            if large {
                let p50 = answering ? (status?.requests?.p50Ms).map { String(format: "%.1f", $0) } ?? "-" : "-"
                cell(p50, 5, right: true)
                let (sync, syncStyle) = syncText(status?.antiEntropy, answering: answering)
                cell(sync, 8, style: syncStyle)
                cell(sparkline(node?.rateHistory ?? [], width: 30), 30, style: .accent)
            }
        }
    }

    private static func nodeState(_ node: DashboardModel.Node?, member: StatusDocument.MemberInfo?) -> (
        String, Canvas.Style
    ) {
        guard let node else { return ("?", .dim) }
        if node.departed { return ("left", .dim) }
        if node.running == false { return ("DOWN", .bad) }
        guard node.answering else { return ("DOWN", .bad) }
        // A store refusing writes outranks the gossip state: the node is up but cannot store.
        if let degraded = node.status?.storage?.degraded { return (degraded == "disk full" ? "FULL" : "STORE!", .bad) }
        let own = node.status?.members.first { $0.name == node.name }?.status ?? member?.status ?? "up"
        switch own {
        case "up": return ("up", .good)
        case "down": return ("DOWN", .bad)
        default: return (own, .warn)
        }
    }

    static func hintsText(_ hints: StatusDocument.Hints?) -> String {
        guard let hints, hints.pending > 0 else { return "0" }
        if hints.byTarget.count == 1, let (target, count) = hints.byTarget.first { return "\(count)→\(target)" }
        // Several targets: the count for the target held most for, then a plus for the rest.
        guard let top = hints.byTarget.max(by: { ($0.value, $1.key) < ($1.value, $0.key) }) else { return "0" }
        return "\(top.value)→\(top.key)+"
    }

    private static func syncText(_ ae: StatusDocument.AntiEntropy?, answering: Bool) -> (String, Canvas.Style) {
        guard answering, let ae else { return ("-", .dim) }
        guard !ae.ranges.isEmpty else { return ("waiting", .dim) }
        let differing = ae.ranges.filter { !$0.inSync }.reduce(0) { $0 + $1.keysDiffering }
        if differing > 0 { return ("\(differing) diff", .warn) }
        // Every current pair of this node's ranges compared, or how many of them so far.
        let pairs = ae.tracked?.reduce(0) { $0 + $1.peers.count } ?? ae.ranges.count
        let inSync = ae.ranges.filter(\.inSync).count
        return inSync >= pairs ? ("in sync", .good) : ("\(inSync)/\(pairs)", .plain)
    }

    static func sparkline(_ values: [Double], width: Int) -> String {
        let recent = values.suffix(width)
        guard let top = recent.max(), top > 0 else { return String(repeating: "▁", count: recent.count) }
        let bars = Array("▁▂▃▄▅▆▇█")
        return String(recent.map { bars[min(bars.count - 1, Int($0 / top * Double(bars.count - 1)))] })
    }

    /// Each answering node's view (row) of every member (column).
    private static func drawGossip(
        _ model: DashboardModel, names: [String], large: Bool, into canvas: inout Canvas, _ rect: Rect
    ) {
        let inside = canvas.box(
            rect, title: large ? "gossip: row's view of column (heartbeat age)" : "gossip: row sees col")
        guard inside.height >= 2 else { return }
        let cellWidth = large ? max(4, min(9, (inside.width - 5) / max(1, names.count))) : 3
        var header = "    "
        for name in names {
            header += String(name.prefix(cellWidth - 1)).padding(toLength: cellWidth, withPad: " ", startingAt: 0)
        }
        canvas.put(header, row: inside.row, col: inside.col, style: .dim, limit: inside.width)
        let legendLines =
            large ? TextWrap.wrap("U up D down J joining L leaving · the age of the last heartbeat", width: inside.width - 1) : []
        let room = inside.height - 1 - (inside.height - 1 >= names.count + legendLines.count ? legendLines.count : 0)
        let fit = names.count <= room ? names.count : max(0, room - 1)
        for (i, observer) in names.prefix(fit).enumerated() {
            let row = inside.row + 1 + i
            canvas.put(" " + String(observer.prefix(3)), row: row, col: inside.col, style: .bold)
            for (j, member) in names.enumerated() {
                let col = inside.col + 4 + j * cellWidth
                guard col + cellWidth <= inside.col + inside.width + 1 else { break }
                if observer == member {
                    canvas.put("·", row: row, col: col, style: .dim)
                    continue
                }
                guard let info = model.status(of: member, seenBy: observer) else {
                    canvas.put("-", row: row, col: col, style: .dim)
                    continue
                }
                let (letter, style) = gossipCell(info)
                var text = letter
                if large, cellWidth >= 6, let age = info.heartbeatAgeMs { text += " " + duration(age) }
                canvas.put(text, row: row, col: col, style: style, limit: cellWidth - 1)
            }
        }
        if fit < names.count {
            canvas.put(
                " … \(names.count - fit) more · F5", row: inside.row + 1 + fit, col: inside.col,
                style: .dim, limit: inside.width)
        } else if !legendLines.isEmpty, room < inside.height - 1 {
            for (i, line) in legendLines.enumerated() {
                canvas.put(" " + line, row: inside.row + 1 + names.count + i, col: inside.col, style: .dim, limit: inside.width)
            }
        }
    }

    private static func gossipCell(_ info: StatusDocument.MemberInfo) -> (String, Canvas.Style) {
        switch info.status {
        case "up": return ("U", (info.phi ?? 0) >= 4 || info.reachable == false ? .warn : .good)
        case "down": return ("D", .bad)
        case "joining": return ("J", .warn)
        case "leaving": return ("L", .warn)
        default: return ("?", .dim)
        }
    }

    /// Hint queues (holder → target) and Merkle anti-entropy per replica pair.
    private static func drawRepair(
        _ model: DashboardModel, names: [String], large: Bool, into canvas: inout Canvas, _ rect: Rect
    ) {
        var totalRepaired = 0
        for node in model.nodes where node.answering { totalRepaired += node.status?.antiEntropy?.keysRepaired ?? 0 }
        let inside = canvas.box(
            rect, title: large ? "hints & anti-entropy · \(totalRepaired) keys repaired so far" : "hints & anti-entropy")
        guard inside.height >= 1 else { return }
        var lines: [(String, Canvas.Style)] = []
        /// How many of the last lines are pairs in sync (listed last).
        var inSyncLines = 0
        var queues: [String] = []
        var delivered = 0
        for node in model.nodes where node.answering {
            for (target, count) in (node.status?.hints.byTarget ?? [:]).sorted(by: { $0.key < $1.key }) where count > 0
            {
                queues.append("\(node.name)→\(target) \(count)")
            }
            delivered += node.status?.hints.delivered?.values.reduce(0, +) ?? 0
        }
        lines.append(
            (
                queues.isEmpty
                    ? "hints: none waiting · \(delivered) delivered since start"
                    : "hints waiting: \(queues.joined(separator: ", ")) · \(delivered) delivered since start",
                queues.isEmpty ? .plain : .warn
            ))
        // Keys near the object limits: a compact line, right under the hints, when there are any.
        if let hot = hotKeysText(model) { lines.append((hot, .warn)) }
        // Pairs that differ first, then those not (or no longer) known to be in sync, so a
        // small panel still shows them.
        func rank(_ pair: DashboardModel.ReplicaPair) -> Int {
            pair.differing > 0 && pair.down == nil ? 0 : pair.allInSync ? 2 : 1
        }
        for pair in model.replicaPairs.enumerated().sorted(by: { (rank($0.1), $0.0) < (rank($1.1), $1.0) }).map(\.1) {
            lines.append(pairLine(pair))
            inSyncLines = pair.allInSync ? inSyncLines + 1 : 0
            // On a large terminal, each range of the pair that differs.
            if large, pair.down == nil {
                for range in pair.differingRanges {
                    lines.append(
                        (
                            "   range \(range.range): \(range.keysDiffering) \(range.keysDiffering == 1 ? "key differs" : "keys differ"), \(range.keysRepaired) repaired",
                            .warn
                        ))
                }
            }
        }
        if lines.count == 1 { lines.append(("anti-entropy: no exchange yet", .dim)) }
        // Each line wrapped at word boundaries; the lines that fit whole are shown.
        let wrapped = lines.map { TextWrap.wrap($0.0, width: inside.width - 1) }
        var shown = 0
        var used = 0
        while shown < lines.count, used + wrapped[shown].count <= inside.height - (shown + 1 < lines.count ? 1 : 0) {
            used += wrapped[shown].count
            shown += 1
        }
        var row = inside.row
        for (i, line) in lines.prefix(shown).enumerated() {
            for part in wrapped[i] {
                canvas.put(" " + part, row: row, col: inside.col, style: line.1, limit: inside.width)
                row += 1
            }
        }
        if shown < lines.count, inside.height > 1 {
            // Hidden lines that are all pairs in sync say so: the panel tells the whole truth.
            let hidden = lines.count - shown
            let more = " … \(hidden) more\(hidden <= inSyncLines ? " pairs, all in sync" : "")"
            canvas.put(
                more.padding(toLength: inside.width, withPad: " ", startingAt: 0), row: inside.row + inside.height - 1,
                col: inside.col, style: .dim, limit: inside.width)
        }
    }

    /// "hot keys: cart 100sib 2KiB refused · img 6.1MiB" (compact: it shares a line of the
    /// hints panel at 80 columns): the keys the nodes saw near or
    /// over the object limits (each key once, with the most any node saw), refused first.
    static func hotKeysText(_ model: DashboardModel) -> String? {
        var keys: [String: StatusDocument.Objects.HotKey] = [:]
        for node in model.nodes where node.answering {
            for hot in node.status?.objects?.nearLimits ?? [] {
                if let seen = keys[hot.key],
                    (seen.refused ? 1 : 0, seen.siblings, seen.bytes) >= (hot.refused ? 1 : 0, hot.siblings, hot.bytes)
                {
                    continue
                }
                keys[hot.key] = hot
            }
        }
        guard !keys.isEmpty else { return nil }
        func rank(_ hot: StatusDocument.Objects.HotKey) -> (Int, Int, Int, String) {
            (hot.refused ? 0 : 1, -hot.bytes, -hot.siblings, hot.key)
        }
        let ordered = keys.values.sorted { rank($0) < rank($1) }
        let items = ordered.map { hot in
            var parts = [hot.key]
            if hot.siblings > 1 { parts.append("\(hot.siblings)sib") }
            parts.append(byteText(hot.bytes).replacingOccurrences(of: " ", with: ""))
            if hot.refused { parts.append("refused") }
            return parts.joined(separator: " ")
        }
        return "hot keys: " + items.joined(separator: " · ")
    }

    /// 512 B, 64 KiB, 6.1 MiB.
    static func byteText(_ bytes: Int) -> String {
        if bytes < 1024 { return "\(bytes) B" }
        if bytes < 1 << 20 { return "\(bytes >> 10) KiB" }
        return String(format: "%.1f MiB", Double(bytes) / Double(1 << 20))
    }

    /// "n1↔n2    8/10 in sync · 49 keys repairing · 0.2s ago": the pair's shared ranges in
    /// sync, with, when some differ, how many keys and when such a range was last compared;
    /// when all agree, the age of the oldest comparison (every range was compared since).
    static func pairLine(_ pair: DashboardModel.ReplicaPair) -> (String, Canvas.Style) {
        let name = "\(pair.a)↔\(pair.b)".padding(toLength: 8, withPad: " ", startingAt: 0)
        if let down = pair.down { return ("\(name) \(down) down: not compared", .dim) }
        let counts = "\(pair.inSync)/\(pair.ranges)"
        if pair.differing > 0 || pair.inSync < pair.compared {
            // What the last comparison found, and what became of it: copied over since
            // (until the next comparison says in sync), being copied, or still differing.
            let ago = pair.differingMsAgo ?? 0
            let verb = pair.differing > 0 && pair.repaired >= pair.differing
                ? "repaired" : ago < 3_000 ? "repairing" : "differ"
            return ("\(name) \(counts) in sync · \(pair.differing) \(verb) · \(duration(ago)) ago", .warn)
        }
        if pair.compared < pair.ranges {
            return ("\(name) \(counts) in sync · \(pair.ranges - pair.compared) not compared yet", .plain)
        }
        return ("\(name) \(counts) ranges in sync · all within \(duration(pair.oldestMsAgo ?? 0))", .good)
    }

    /// The events the log shows: those matching the filter, up to the pause.
    static func filteredEvents(_ model: DashboardModel, options: Options) -> [DashboardModel.Event] {
        model.events.filter { event in
            if let pausedAt = options.eventsPausedAtMs, event.timeMs > pausedAt { return false }
            guard let filter = options.eventFilter, !filter.isEmpty else { return true }
            return event.text.range(of: filter, options: .caseInsensitive) != nil
        }
    }

    /// A titled rule and the newest events under it (no box: every row counts at 80x24),
    /// wrapped at word boundaries; the title says when the log is filtered, paused or
    /// scrolled back.
    private static func drawEvents(_ model: DashboardModel, options: Options, into canvas: inout Canvas, _ rect: Rect) {
        guard rect.height >= 2 else { return }
        let rule: Character = canvas.unicode ? "─" : "-"
        let events = filteredEvents(model, options: options)
        var title = "events"
        if let filter = options.eventFilter, !filter.isEmpty { title += " matching '\(filter)'" }
        if let pausedAt = options.eventsPausedAtMs {
            let held = model.events.filter { $0.timeMs > pausedAt }.count
            title += " · PAUSED, \(held) new (events resume)"
        }
        let offset = max(0, min(options.eventsOffset, events.count - 1))
        if offset > 0 { title += " · \(offset) newer below (PgDn)" }
        canvas.put(String(repeating: rule, count: rect.width), row: rect.row, col: rect.col, style: .dim)
        canvas.put(
            " \(title) ", row: rect.row, col: rect.col + 1,
            style: options.eventsPausedAtMs == nil ? .title : .warn, limit: rect.width - 2)
        let inside = Rect(row: rect.row + 1, col: rect.col, width: rect.width, height: rect.height - 1)
        if events.isEmpty {
            let why = model.events.isEmpty ? "no events yet" : "none match (events all shows every event)"
            canvas.put("         \(why)", row: inside.row, col: inside.col, style: .dim)
            return
        }
        // Whole events, newest last: the newest that fit (a long one is cut at the end).
        var rows: [(time: String, text: String, style: Canvas.Style)] = []
        for event in events.dropLast(offset).suffix(inside.height).reversed() {
            let style: Canvas.Style
            switch event.kind {
            case .failure: style = .bad
            case .recovery: style = .good
            case .hint: style = .warn
            case .repair: style = .accent
            case .conflict: style = .mark
            case .console: style = .bold
            case .info: style = .plain
            }
            var lines = TextWrap.wrap(event.text, width: inside.width - 9)
            guard rows.isEmpty || rows.count + lines.count <= inside.height else { break }
            // The newest alone taller than the log: cut, and said to be.
            if lines.count > inside.height, inside.height > 0 {
                lines = Array(lines.prefix(inside.height))
                let last = lines[lines.count - 1]
                lines[lines.count - 1] = String(last.prefix(max(0, inside.width - 10))) + "…"
            }
            rows.insert(
                contentsOf: lines.enumerated().map { i, line in (i == 0 ? clock(event.timeMs) : "", line, style) }, at: 0)
        }
        for (i, line) in rows.prefix(inside.height).enumerated() {
            canvas.put(line.time, row: inside.row + i, col: inside.col, style: .dim)
            canvas.put(line.text, row: inside.row + i, col: inside.col + 9, style: line.style, limit: inside.width - 9)
        }
    }

    /// The demo's words for this step, in a box that stays until the next step.
    private static func drawNarration(_ narration: Narration, into canvas: inout Canvas, _ rect: Rect) {
        // The demo's title, or its part before the colon when the whole does not fit.
        let title = narration.title.count + 4 <= rect.width ? narration.title : String(narration.title.prefix { $0 != ":" })
        let inside = canvas.box(rect, title: " \(title) ", titleStyle: .accent)
        var lines = narration.lines.flatMap { TextWrap.wrap($0, width: inside.width - 2, hanging: false) }.map {
            ($0, Canvas.Style.bold)
        }
        if let status = narration.status { lines += TextWrap.wrap(status, width: inside.width - 2).map { ($0, .dim) } }
        // The newest words when they do not all fit (the step's latest is what to look at).
        for (i, line) in lines.suffix(inside.height).enumerated() {
            canvas.put(" " + line.0, row: inside.row + i, col: inside.col, style: line.1, limit: inside.width)
        }
        if narration.waiting {
            let step = narration.step.map { "\($0) · " } ?? ""
            let prompt = " " + step + (narration.next.map { "Enter runs: \($0) " } ?? "Enter: next step ")
            let text = String(prompt.prefix(rect.width - 4))
            canvas.put(text, row: rect.row + rect.height - 1, col: rect.col + rect.width - text.count - 2, style: .mark)
        }
    }

    /// The prompt's output: the lines from `layout.outputTop`, with a marker when more
    /// lies below (a reply longer than the area) or the area is scrolled back.
    private static func drawOutput(_ layout: Layout, into canvas: inout Canvas) {
        let rect = layout.output
        guard rect.height > 0 else { return }
        let lines = layout.outputLines
        let shown = Array(lines.dropFirst(layout.outputTop).prefix(rect.height))
        let below = lines.count - layout.outputTop - shown.count
        // Fewer lines than rows: they sit on the prompt, as in a terminal that scrolled.
        let first = rect.row + max(0, rect.height - shown.count)
        for (i, line) in shown.enumerated() {
            canvas.put(line.text, row: first + i, col: 0, style: line.style)
        }
        if below > 0 {
            let more = "↓ \(below + 1) more lines · PgDn (F8: the output alone)"
            canvas.put(
                more.padding(toLength: rect.width, withPad: " ", startingAt: 0), row: rect.row + rect.height - 1,
                col: 0, style: .mark)
        } else if layout.scrolled {
            let note = "↑ scrolled back · PgDn returns"
            canvas.put(note, row: rect.row, col: max(0, rect.width - note.count), style: .mark)
        }
    }

    /// The `?` overlay: commands, keys and what every column, letter and phrase means,
    /// scrolled by `offset`.
    private static func drawHelp(_ model: DashboardModel, offset: Int, into canvas: inout Canvas) {
        let rect = Rect(row: 1, col: 0, width: canvas.width, height: canvas.height - 2)
        for y in rect.row..<(rect.row + rect.height) {
            canvas.put(String(repeating: " ", count: rect.width), row: y, col: rect.col)
        }
        let lines = helpLines(model, width: rect.width - 3)
        let rows = rect.height - 2
        let start = max(0, min(offset, lines.count - rows))
        let position = lines.count > rows ? " \(start + 1)-\(min(lines.count, start + rows))/\(lines.count)" : ""
        let inside = canvas.box(rect, title: " help\(position) · ↑↓ PgUp PgDn scroll · other keys close ", titleStyle: .accent)
        for (i, line) in lines.dropFirst(start).prefix(inside.height).enumerated() {
            canvas.put(" " + line.text, row: inside.row + i, col: inside.col, style: line.style, limit: inside.width)
        }
    }

    /// The overlay's text, wrapped to `width`.
    static func helpLines(_ model: DashboardModel, width: Int) -> [(text: String, style: Canvas.Style)] {
        var lines: [(text: String, style: Canvas.Style)] = []
        for (heading, entries) in HelpText.sections {
            lines.append((heading, .title))
            for entry in entries {
                guard !entry.name.isEmpty else {
                    lines += TextWrap.wrap(entry.text, width: width).map { ($0, .plain) }
                    continue
                }
                // The name in a column, its meaning beside it (below it when the name is long).
                var head = entry.name.padding(toLength: 22, withPad: " ", startingAt: 0) + " "
                if entry.name.count > 22 {
                    lines.append((entry.name, .bold))
                    head = String(repeating: " ", count: 23)
                }
                for (i, part) in TextWrap.wrap(entry.text, width: max(10, width - 23)).enumerated() {
                    let text = part.drop { $0 == " " }
                    lines.append(((i == 0 ? head : String(repeating: " ", count: 23)) + text, .plain))
                }
            }
            lines.append(("", .plain))
        }
        return lines
    }

    // MARK: Formatting

    /// Local wall-clock time as HH:MM:SS.
    static func clock(_ ms: UInt64) -> String {
        var seconds = time_t(ms / 1000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        return String(format: "%02d:%02d:%02d", parts.tm_hour, parts.tm_min, parts.tm_sec)
    }

    /// 0.4s, 12s, 3m, 2h.
    static func duration(_ ms: UInt64) -> String {
        if ms < 10_000 { return String(format: "%.1fs", Double(ms) / 1000) }
        if ms < 120_000 { return "\(ms / 1000)s" }
        if ms < 7_200_000 { return "\(ms / 60_000)m" }
        return "\(ms / 3_600_000)h"
    }
}
