import DynamoAPI
import DynamoCore
import Foundation

/// Draws the dashboard into a `Canvas`: pure, so every layout is tested as text at any size.
///
/// Layout, top to bottom: a header with the cluster's vital signs and the key legend; the
/// ring beside the node table; the gossip matrix beside hints and anti-entropy; the event
/// log; the prompt's recent output. The last row is left to the prompt. Panels grow with
/// the terminal: from 120x36 the ring is larger, the gossip matrix shows heartbeat ages,
/// anti-entropy lists ranges that differ and the node table adds latency sparklines.
public enum DashboardView {
    /// Smallest usable terminal; below it the screen says so (the prompt still works).
    public static let minimumWidth = 60
    public static let minimumHeight = 16

    public struct Options: Sendable {
        public var unicode = true
        /// The `?` overlay listing commands and keys.
        public var help = false
        public init(unicode: Bool = true, help: Bool = false) {
            self.unicode = unicode
            self.help = help
        }
    }

    public static let legend = "?:help  Tab:complete  ↑↓:history  quit:exit"

    public static func render(
        _ model: DashboardModel, output: [String], width: Int, height: Int, options: Options = .init()
    ) -> Canvas {
        var canvas = Canvas(width: width, height: height, unicode: options.unicode)
        guard width >= minimumWidth, height >= minimumHeight else {
            canvas.put("dynamo: terminal too small (\(width)x\(height));", row: 0, col: 0, style: .warn)
            canvas.put("the dashboard needs \(minimumWidth)x\(minimumHeight).", row: 1, col: 0, style: .warn)
            drawOutput(output, into: &canvas, rows: 2..<(height - 1))
            return canvas
        }
        let large = width >= 120 && height >= 36
        let names = model.memberNames
        let ring = model.ring
        drawHeader(model, names: names, into: &canvas)

        let leftWidth = large ? min(56, width / 3) : max(26, min(34, width / 3))
        let bodyRows = height - 2  // header and prompt
        // Keep at least 5 rows for the event log and output.
        let topHeight = min(max(names.count + 3, large ? 15 : 8), bodyRows - 5 - 4)
        let middleHeight = min(names.count + 3 + (large ? 1 : 0), bodyRows - topHeight - 5)
        var row = 1
        drawRing(
            model, ring: ring, names: names,
            into: &canvas, Rect(row: row, col: 0, width: leftWidth, height: topHeight))
        drawNodes(
            model, ring: ring, names: names, large: large,
            into: &canvas, Rect(row: row, col: leftWidth, width: width - leftWidth, height: topHeight))
        row += topHeight
        if middleHeight >= 3 {
            drawGossip(
                model, names: names, large: large,
                into: &canvas, Rect(row: row, col: 0, width: leftWidth, height: middleHeight))
            drawRepair(
                model, names: names, large: large,
                into: &canvas, Rect(row: row, col: leftWidth, width: width - leftWidth, height: middleHeight))
            row += middleHeight
        }
        let remaining = height - 1 - row
        let outputRows = min(max(2, remaining / 2), remaining - 2)
        drawEvents(model, into: &canvas, Rect(row: row, col: 0, width: width, height: remaining - outputRows))
        drawOutput(output, into: &canvas, rows: (height - 1 - outputRows)..<(height - 1))
        if options.help { drawHelp(into: &canvas) }
        return canvas
    }

    // MARK: Panels

    private static func drawHeader(_ model: DashboardModel, names: [String], into canvas: inout Canvas) {
        let current = model.nodes.filter { !$0.departed }
        var parts = ["dynamo", "\(current.count) nodes, \(current.filter(\.answering).count) up"]
        let gone = model.nodes.filter(\.departed).map(\.name)
        if !gone.isEmpty { parts.append("\(gone.joined(separator: ",")) left") }
        if let q = model.quorum { parts.append("N\(q.n) R\(q.r) W\(q.w) \(q.sloppy == false ? "strict" : "sloppy")") }
        if let partition = model.partition { parts.append("partition \(partition)") }
        parts.append(clock(model.nowMs))
        let left = " " + parts.joined(separator: " · ")
        canvas.put(left, row: 0, col: 0, style: .bold)
        if model.partition != nil, let range = left.range(of: "partition") {
            let start = left.distance(from: left.startIndex, to: range.lowerBound)
            canvas.style(row: 0, col: start, count: 10 + (model.partition?.count ?? 0), .bad)
        }
        let legendText = canvas.width - left.count >= legend.count + 2 ? legend : "?:help quit"
        canvas.put(
            legendText + " ", row: 0, col: max(left.count + 1, canvas.width - legendText.count - 1), style: .accent)
    }

    /// The ring: each node's tokens (its number) at their positions around the circle, the
    /// focus key as a diamond with its home nodes highlighted.
    private static func drawRing(
        _ model: DashboardModel, ring: Ring, names: [String], into canvas: inout Canvas, _ rect: Rect
    ) {
        let title =
            model.focus.map { "ring · \($0.key) → \($0.homeNodes.joined(separator: " "))" } ?? "ring (tokens by node)"
        let inside = canvas.box(rect, title: title)
        guard inside.width >= 8, inside.height >= 3 else { return }
        let cx = Double(inside.width - 1) / 2
        let cy = Double(inside.height - 1) / 2
        let rx = Double(inside.width - 2) / 2
        let ry = Double(inside.height - 1) / 2
        func place(_ position: RingPosition, scale: Double) -> (row: Int, col: Int) {
            let angle = Double(position.value >> 64) / 18_446_744_073_709_551_616.0 * 2 * Double.pi
            let x = cx + rx * scale * sin(angle)
            let y = cy - ry * scale * cos(angle)
            return (inside.row + Int(y.rounded()), inside.col + Int(x.rounded()))
        }
        for token in ring.tokens {
            let (row, col) = place(token.position, scale: 1)
            let label = nodeLabel(token.owner, in: names)
            var style: Canvas.Style = .plain
            if let node = model.nodes.first(where: { $0.name == token.owner }), !node.answering { style = .bad }
            if let focus = model.focus, focus.homeNodes.contains(token.owner) { style = .mark }
            canvas.put(label, row: row, col: col, style: style)
        }
        // A legend of labels in the middle, and the focus key's position.
        if let focus = model.focus, inside.height >= 3 {
            let (row, col) = place(focus.position, scale: 0.55)
            canvas.put("◆", row: row, col: col, style: .mark)
        }
        let legendLines = legendRows(names: names, width: Int(rx * 1.1))
        let firstRow = inside.row + Int(cy.rounded()) - legendLines.count / 2
        for (i, line) in legendLines.enumerated() where inside.height >= legendLines.count + 2 {
            let col = inside.col + Int(cx.rounded()) - line.count / 2
            canvas.put(line, row: firstRow + i, col: col, style: .dim)
        }
    }

    /// "1=n1 2=n2 ..." wrapped to fit inside the circle.
    private static func legendRows(names: [String], width: Int) -> [String] {
        let items = names.map { "\(nodeLabel($0, in: names))=\($0)" }
        guard names.contains(where: { nodeLabel($0, in: names) != String($0.last ?? " ") }) else { return [] }
        var rows: [String] = []
        var line = ""
        for item in items {
            if !line.isEmpty, line.count + 1 + item.count > width {
                rows.append(line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + item
        }
        if !line.isEmpty { rows.append(line) }
        return rows
    }

    /// One character per node for the ring: the digit its name ends with when that is
    /// unique (n3 -> 3), else its place in the member list.
    static func nodeLabel(_ name: String, in names: [String]) -> String {
        let lasts = names.map { $0.last }
        if let last = name.last, last.isNumber, lasts.filter({ $0 == last }).count == 1 { return String(last) }
        let index = names.firstIndex(of: name) ?? 0
        let symbols = Array("123456789abcdefghijklmnopqrstuvwxyz")
        return String(symbols[index % symbols.count])
    }

    private static func drawNodes(
        _ model: DashboardModel, ring: Ring, names: [String], large: Bool, into canvas: inout Canvas, _ rect: Rect
    ) {
        let inside = canvas.box(rect, title: "nodes")
        guard inside.height >= 1 else { return }
        let shares = ring.homeShare(n: model.quorum?.n ?? 3)
        var header = " node  state   tok home   keys  hints→   rps p99ms"
        if large { header += " p50ms sync     requests/s (last 30 polls)" }
        canvas.put(header, row: inside.row, col: inside.col, style: .dim, limit: inside.width)
        for (i, name) in names.enumerated() where i + 1 < inside.height {
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
        for (i, observer) in names.enumerated() where i + 1 < inside.height {
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
        if large, inside.height > names.count + 1 {
            canvas.put(
                " U up D down J joining L leaving · age of last heartbeat", row: inside.row + names.count + 1,
                col: inside.col, style: .dim, limit: inside.width)
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
        let inside = canvas.box(rect, title: "hints & anti-entropy")
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
                            "   range \(range.range): \(range.keysDiffering) keys differ, \(range.keysRepaired) repaired",
                            .warn
                        ))
                }
            }
        }
        if lines.count == 1 { lines.append(("anti-entropy: no exchange yet", .dim)) }
        var totalRepaired = 0
        for node in model.nodes where node.answering { totalRepaired += node.status?.antiEntropy?.keysRepaired ?? 0 }
        if large {
            lines.append(("keys repaired by anti-entropy so far: \(totalRepaired)", .dim))
            inSyncLines = 0
        }
        for (i, line) in lines.prefix(inside.height).enumerated() {
            canvas.put(" " + line.0, row: inside.row + i, col: inside.col, style: line.1, limit: inside.width)
        }
        if lines.count > inside.height, inside.height > 1 {
            // Hidden lines that are all pairs in sync say so: the panel tells the whole truth.
            let hidden = lines.count - inside.height + 1
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

    /// A titled rule and the newest events under it (no box: every row counts at 80x24).
    private static func drawEvents(_ model: DashboardModel, into canvas: inout Canvas, _ rect: Rect) {
        guard rect.height >= 2 else { return }
        let rule: Character = canvas.unicode ? "─" : "-"
        canvas.put(String(repeating: rule, count: rect.width), row: rect.row, col: rect.col, style: .dim)
        canvas.put("events", row: rect.row, col: rect.col + 1, style: .title)
        let inside = Rect(row: rect.row + 1, col: rect.col, width: rect.width, height: rect.height - 1)
        let shown = model.events.suffix(inside.height)
        for (i, event) in shown.enumerated() {
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
            canvas.put(clock(event.timeMs), row: inside.row + i, col: inside.col, style: .dim)
            canvas.put(event.text, row: inside.row + i, col: inside.col + 9, style: style, limit: inside.width - 9)
        }
    }

    /// The prompt's recent output, long lines wrapped (continuations indented), newest last.
    private static func drawOutput(_ output: [String], into canvas: inout Canvas, rows: Range<Int>) {
        guard !rows.isEmpty, canvas.width > 4 else { return }
        var wrapped: [(String, Canvas.Style)] = []
        for line in output.suffix(rows.count) {
            let style: Canvas.Style =
                line.hasPrefix("error")
                ? .bad
                : line.hasPrefix("ok")
                    ? .good
                    : line.hasPrefix("»")
                        ? .accent
                        : line.hasPrefix("dynamo>") || line.hasPrefix("resolve>") ? .dim : .plain
            var rest = Substring(line)
            var first = true
            repeat {
                let room = first ? canvas.width : canvas.width - 2
                wrapped.append(((first ? "" : "  ") + rest.prefix(room), style))
                rest = rest.dropFirst(room)
                first = false
            } while !rest.isEmpty
        }
        let shown = wrapped.suffix(rows.count)
        for (i, line) in shown.enumerated() {
            canvas.put(line.0, row: rows.lowerBound + i + (rows.count - shown.count), col: 0, style: line.1)
        }
    }

    private static func drawHelp(into canvas: inout Canvas) {
        let keys = [
            "",
            "Tab completes commands, node names and recent keys · ↑↓ history · Ctrl-R search",
            "any key closes this help · quit, Ctrl-D or Ctrl-C leaves (stopping the nodes)",
        ]
        var lines = Command.reference.map {
            "\($0.usage.padding(toLength: 22, withPad: " ", startingAt: 0)) \($0.summary)"
        }
        if lines.count + keys.count + 2 > canvas.height - 2 {
            // Small terminal: usages only, in two columns; `help COMMAND` explains each.
            let usages = Command.reference.map(\.usage)
            let half = (usages.count + 1) / 2
            lines = (0..<half).map { i in
                usages[i].padding(toLength: 30, withPad: " ", startingAt: 0)
                    + (i + half < usages.count ? usages[i + half] : "")
            }
        }
        lines += keys
        let width = min(canvas.width - 2, (lines.map(\.count).max() ?? 0) + 4)
        let height = min(canvas.height - 2, lines.count + 2)
        let rect = Rect(
            row: max(1, (canvas.height - 1 - height) / 2), col: (canvas.width - width) / 2, width: width, height: height
        )
        for y in rect.row..<(rect.row + rect.height) {
            canvas.put(String(repeating: " ", count: rect.width), row: y, col: rect.col)
        }
        let inside = canvas.box(rect, title: "help · help COMMAND explains one", titleStyle: .accent)
        for (i, line) in lines.prefix(inside.height).enumerated() {
            canvas.put(" " + line, row: inside.row + i, col: inside.col, limit: inside.width)
        }
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
