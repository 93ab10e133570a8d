/// A character grid with a style per cell: the dashboard is drawn here by pure code (so it
/// is tested as text), then the terminal shell paints it with ncurses in one pass.
public struct Canvas: Sendable {
    /// What a cell means; the terminal maps it to a colour, or to bold/reverse/dim without colour.
    public enum Style: UInt8, Sendable, CaseIterable {
        case plain, dim, bold, title, good, bad, warn, accent, mark
        /// A node's own colour on the ring (six, reused in turn); without colour the
        /// node's digit alone tells nodes apart.
        case owner0, owner1, owner2, owner3, owner4, owner5

        /// The ring colour of the node at `index` in the member list.
        public static func owner(_ index: Int) -> Style {
            [.owner0, .owner1, .owner2, .owner3, .owner4, .owner5][((index % 6) + 6) % 6]
        }
    }

    public struct Cell: Equatable, Sendable {
        public var character: Character
        public var style: Style
    }

    public let width: Int
    public let height: Int
    /// Box-drawing and symbols when the terminal speaks UTF-8, ASCII otherwise.
    public let unicode: Bool
    public private(set) var rows: [[Cell]]

    public init(width: Int, height: Int, unicode: Bool = true) {
        self.width = max(0, width)
        self.height = max(0, height)
        self.unicode = unicode
        rows = Array(
            repeating: Array(repeating: Cell(character: " ", style: .plain), count: max(0, width)),
            count: max(0, height))
    }

    /// Writes `text` from (row, col), clipped to the canvas and to `limit` columns.
    public mutating func put(_ text: String, row: Int, col: Int, style: Style = .plain, limit: Int? = nil) {
        guard row >= 0, row < height else { return }
        let end = min(width, limit.map { col + $0 } ?? width)
        var x = col
        for character in text {
            guard x < end else { break }
            if x >= 0 {
                let shown = unicode || character.isASCII ? character : Self.ascii(character)
                rows[row][x] = Cell(character: shown, style: style)
            }
            x += 1
        }
    }

    public mutating func style(row: Int, col: Int, count: Int, _ style: Style) {
        guard row >= 0, row < height else { return }
        for x in max(0, col)..<min(width, col + count) { rows[row][x].style = style }
    }

    /// A frame with its title in the top border; returns the inside.
    @discardableResult
    public mutating func box(_ rect: Rect, title: String, titleStyle: Style = .title) -> Rect {
        guard rect.width >= 2, rect.height >= 2 else { return Rect(row: rect.row, col: rect.col, width: 0, height: 0) }
        let (h, v, tl, tr, bl, br): (Character, Character, Character, Character, Character, Character) =
            unicode ? ("─", "│", "┌", "┐", "└", "┘") : ("-", "|", "+", "+", "+", "+")
        let bottom = rect.row + rect.height - 1
        let right = rect.col + rect.width - 1
        put(
            String(tl) + String(repeating: h, count: rect.width - 2) + String(tr), row: rect.row, col: rect.col,
            style: .dim)
        put(
            String(bl) + String(repeating: h, count: rect.width - 2) + String(br), row: bottom, col: rect.col,
            style: .dim)
        for y in (rect.row + 1)..<bottom {
            put(String(v), row: y, col: rect.col, style: .dim)
            put(String(v), row: y, col: right, style: .dim)
        }
        put(title, row: rect.row, col: rect.col + 1, style: titleStyle, limit: rect.width - 2)
        return Rect(row: rect.row + 1, col: rect.col + 1, width: rect.width - 2, height: rect.height - 2)
    }

    /// The text of each row, trailing spaces removed (for tests and plain captures).
    public var lines: [String] {
        rows.map { row in
            var line = String(row.map(\.character))
            while line.last == " " { line.removeLast() }
            return line
        }
    }

    /// A row as runs of equally styled text, for painting.
    public func runs(row: Int) -> [(col: Int, text: String, style: Style)] {
        var runs: [(col: Int, text: String, style: Style)] = []
        for (x, cell) in rows[row].enumerated() {
            if let last = runs.last, last.style == cell.style {
                runs[runs.count - 1].text.append(cell.character)
            } else {
                runs.append((x, String(cell.character), cell.style))
            }
        }
        return runs
    }

    static func ascii(_ character: Character) -> Character {
        switch character {
        case "─", "━": "-"
        case "│", "┃": "|"
        case "┌", "┐", "└", "┘": "+"
        case "◆", "●": "*"
        case "·": "."
        case "↔": "="
        case "→": ">"
        case "…": "~"
        case "▁", "▂": "_"
        case "▃", "▄", "▅": "-"
        case "▆", "▇", "█": "#"
        case "✓": "v"
        case "↻": "@"
        case "↑": "^"
        case "↓": "v"
        default: "?"
        }
    }
}

/// A rectangle of the screen.
public struct Rect: Equatable, Sendable {
    public var row: Int
    public var col: Int
    public var width: Int
    public var height: Int

    public init(row: Int, col: Int, width: Int, height: Int) {
        self.row = row
        self.col = col
        self.width = width
        self.height = height
    }
}
