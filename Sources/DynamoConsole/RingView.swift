import DynamoCore
import Foundation

/// The ring drawn so it can be read: an ellipse of cells, each an arc of the ring drawn with
/// the digit and colour of the node that owns it (down nodes dimmed), position 0 and the
/// clockwise direction marked at the top, the last key as a diamond, and the ranges where
/// its preference list picks each home node in reverse video. Every range gets at least one
/// cell (arcs are stretched a little where ranges are small), so no vnode vanishes and no
/// two labels merge into a number; the exact table is `ring` (or the zoomed view).
enum RingView {
    static func draw(
        _ model: DashboardModel, ring: Ring, names: [String], zoomed: Bool, into canvas: inout Canvas, _ rect: Rect
    ) {
        let n = model.quorum?.n ?? 3
        let tableWidth = zoomed ? max(min(rect.width / 2, 60), min(40, rect.width - 20)) : 0
        let circle = Rect(row: rect.row, col: rect.col, width: rect.width - tableWidth, height: rect.height)
        let inside = canvas.box(circle, title: title(model.focus, ring: ring, width: circle.width - 2))
        if zoomed {
            let tableRect = Rect(row: rect.row, col: rect.col + circle.width, width: tableWidth, height: rect.height)
            let table = canvas.box(tableRect, title: "ranges (ring NODE: a node's)")
            let lines = tableLines(ring: ring, n: n, node: nil, focus: model.focus?.position)
            // The summary and the column heads, then a window of rows holding the key's.
            let rows = Array(lines.dropFirst(2))
            let room = max(0, table.height - 2)
            let focusRow = rows.firstIndex { $0.hasPrefix("◆") } ?? 0
            let first = rows.count <= room ? 0 : max(0, min(focusRow - room / 2, rows.count - room + 1))
            var shown = Array(lines.prefix(2)) + rows.dropFirst(first).prefix(rows.count <= room ? room : room - 1)
            if rows.count > room { shown.append("… \(rows.count - (room - 1)) more: type ring for all") }
            for (i, line) in shown.prefix(table.height).enumerated() {
                let style: Canvas.Style = i < 2 || line.hasPrefix("…") ? .dim : line.hasPrefix("◆") ? .mark : .plain
                canvas.put(line, row: table.row + i, col: table.col, style: style, limit: table.width)
            }
        }
        guard inside.width >= 8, inside.height >= 4, !ring.isEmpty else {
            if ring.isEmpty, inside.height > 0 { canvas.put("no tokens yet", row: inside.row, col: inside.col, style: .dim) }
            return
        }
        let cells = perimeter(width: inside.width, height: inside.height - 1)
        let owners = assign(ring: ring, cells: cells.map(\.angle))
        let walk = model.focus.map { walkTokens(ring: ring, from: $0.position, n: n) } ?? []
        let down = Set(model.nodes.filter { !$0.answering || $0.departed }.map(\.name))
        for (cell, token) in zip(cells, owners) {
            let owner = ring.tokens[token].owner
            let index = names.firstIndex(of: owner) ?? 0
            var style = Canvas.Style.owner(index)
            if down.contains(owner) { style = .dim }
            if walk.contains(token) { style = .mark }
            canvas.put(
                RingView.label(owner, in: names), row: inside.row + 1 + cell.row, col: inside.col + cell.col,
                style: style)
        }
        // Position 0 and the direction, just above the top of the ellipse.
        let top = cells.first.map { inside.col + $0.col } ?? inside.col + inside.width / 2
        canvas.put(canvas.unicode ? "0↻" : "0>", row: inside.row, col: top, style: .bold)
        let hidden = ring.tokens.count - Set(owners).count
        if hidden > 0 {
            canvas.put("\(hidden) small ranges not drawn", row: inside.row, col: inside.col, style: .dim, limit: top - inside.col - 1)
        }
        let cx = Double(inside.width - 1) / 2
        let cy = Double(inside.height - 2) / 2
        if let focus = model.focus {
            let angle = Self.angle(focus.position)
            let row = inside.row + 1 + Int((cy - cy * 0.5 * cos(angle)).rounded())
            let col = inside.col + Int((cx + (cx - 1) * 0.55 * sin(angle)).rounded())
            canvas.put("◆", row: row, col: col, style: .mark)
        }
        // Which label is which node, when labels are not simply the names' digits.
        let legend = legendRows(names: names, width: Int(cx * 1.1))
        if !legend.isEmpty, inside.height - 1 >= legend.count + 4 {
            let first = inside.row + 1 + Int(cy.rounded()) - legend.count / 2
            for (i, line) in legend.enumerated() {
                canvas.put(line, row: first + i, col: inside.col + Int(cx.rounded()) - line.count / 2, style: .dim)
            }
        }
    }

    /// `ring · cart:ann → n1 n4 n5`, shortened to fit without ever dropping a home node:
    /// first the word ring, then the key.
    static func title(_ focus: DashboardModel.Focus?, ring: Ring, width: Int) -> String {
        guard let focus else { return "ring · \(ring.tokens.count) vnodes" }
        let homes = "→ " + focus.homeNodes.joined(separator: " ")
        for candidate in ["ring · \(focus.key) \(homes)", "\(focus.key) \(homes)"] where candidate.count <= width {
            return candidate
        }
        let room = width - homes.count - 2
        return room >= 2 ? "\(focus.key.prefix(room - 1))… \(homes)" : homes
    }

    /// The ellipse's cells in clockwise order from the top, each with the angle it starts at.
    static func perimeter(width: Int, height: Int) -> [(row: Int, col: Int, angle: Double)] {
        let cx = Double(width - 1) / 2
        let cy = Double(height - 1) / 2
        var cells: [(row: Int, col: Int, angle: Double)] = []
        var seen = Set<Int>()
        let steps = 4 * (width + height) * 4
        for step in 0..<steps {
            let angle = Double(step) / Double(steps) * 2 * Double.pi
            let row = Int((cy - cy * cos(angle)).rounded())
            let col = Int((cx + cx * sin(angle)).rounded())
            if seen.insert(row * 10_000 + col).inserted { cells.append((row, col, angle)) }
        }
        return cells
    }

    static func angle(_ position: RingPosition) -> Double {
        Double(position.value >> 64) / 18_446_744_073_709_551_616.0 * 2 * Double.pi
    }

    /// Which token's range each cell draws. Each token's range ends at the cell holding its
    /// position; where several fall in one cell they are pushed apart, so every range keeps
    /// a cell of its own. With more tokens than cells, each cell draws the range at its
    /// start and some ranges go undrawn.
    static func assign(ring: Ring, cells angles: [Double]) -> [Int] {
        let count = angles.count
        let tokens = ring.tokens
        guard !tokens.isEmpty, count > 0 else { return [] }
        func cell(of angle: Double) -> Int {
            var low = 0
            var high = count
            while low < high {
                let mid = (low + high) / 2
                if angles[mid] <= angle { low = mid + 1 } else { high = mid }
            }
            return max(0, low - 1)
        }
        if tokens.count > count {
            return angles.map { angle in
                let position = RingPosition(UInt128(angle / (2 * Double.pi) * 18_446_744_073_709_551_616.0) << 64)
                return ring.successorIndex(of: position)
            }
        }
        var ends = tokens.map { cell(of: angle($0.position)) }
        for i in ends.indices.dropFirst() { ends[i] = max(ends[i], ends[i - 1] + 1) }
        ends[ends.count - 1] = min(ends[ends.count - 1], count - 1)
        for i in ends.indices.dropLast().reversed() { ends[i] = min(ends[i], ends[i + 1] - 1) }
        var owners: [Int] = []
        var token = 0
        for index in 0..<count {
            while token < ends.count, ends[token] < index { token += 1 }
            owners.append(token < ends.count ? token : 0)
        }
        return owners
    }

    /// The tokens whose ranges a walk clockwise from `position` takes each home node from:
    /// the key's own range, then the first range of each next distinct node.
    static func walkTokens(ring: Ring, from position: RingPosition, n: Int) -> Set<Int> {
        guard !ring.isEmpty else { return [] }
        var seen: Set<String> = []
        var chosen: Set<Int> = []
        let start = ring.successorIndex(of: position)
        for step in 0..<ring.tokens.count where seen.count < n {
            let index = (start + step) % ring.tokens.count
            if seen.insert(ring.tokens[index].owner).inserted { chosen.insert(index) }
        }
        return chosen
    }

    /// The ranges as a table: start..end, the owner, the home nodes (the preference list's
    /// first N). With `node`: only the ranges it is a home node of, and a summary line.
    static func tableLines(ring: Ring, n: Int, node: String?, focus: RingPosition?) -> [String] {
        guard !ring.isEmpty else { return ["no tokens yet"] }
        let tokens = ring.tokens
        var lines = ["  range           owner  home nodes"]
        var counts = Array(repeating: 0, count: n)
        var share = 0.0
        let focusToken = focus.map { ring.successorIndex(of: $0) }
        for (i, token) in tokens.enumerated() {
            let previous = tokens[(i + tokens.count - 1) % tokens.count].position
            let homes = ring.preferenceList(for: token.position).home(n)
            if let node {
                guard let place = homes.firstIndex(of: node) else { continue }
                counts[place] += 1
                share += tokens.count == 1 ? 1 : previous.fraction(to: token.position)
            }
            let mark = i == focusToken ? "◆ " : "  "
            let range = "\(previous.hex.prefix(6))..\(token.position.hex.prefix(6))"
            lines.append(
                "\(mark)\(range)  \(token.owner.padding(toLength: 5, withPad: " ", startingAt: 0))  \(homes.joined(separator: " "))")
        }
        guard let node else {
            return ["\(tokens.count) ranges, N=\(n) · ◆ holds the last key"] + lines
        }
        let places = counts.enumerated().filter { $0.element > 0 }.map { "\(ordinal($0.offset + 1)) for \($0.element)" }
        let total = counts.reduce(0, +)
        let summary =
            "\(node) is a home node of \(total) of \(tokens.count) ranges, \(Int((share * 100).rounded()))% of keys"
            + (places.isEmpty ? "" : ": " + places.joined(separator: ", "))
        return [summary] + lines
    }

    static func ordinal(_ n: Int) -> String {
        switch n {
        case 1: "first"
        case 2: "second"
        case 3: "third"
        default: "\(n)th"
        }
    }

    /// One character per node for the ring: the digit its name ends with when that is
    /// unique (n3 -> 3), else its place in the member list.
    static func label(_ name: String, in names: [String]) -> String {
        let lasts = names.map { $0.last }
        if let last = name.last, last.isNumber, lasts.filter({ $0 == last }).count == 1 { return String(last) }
        let index = names.firstIndex(of: name) ?? 0
        let symbols = Array("123456789abcdefghijklmnopqrstuvwxyz")
        return String(symbols[index % symbols.count])
    }

    /// "1=n1 2=n2 ..." wrapped to fit inside the circle.
    static func legendRows(names: [String], width: Int) -> [String] {
        guard names.contains(where: { label($0, in: names) != String($0.last ?? " ") }) else { return [] }
        let items = names.map { "\(label($0, in: names))=\($0)" }
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
}
