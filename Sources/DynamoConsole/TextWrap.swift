/// Line breaking for the screen: at word boundaries, so a projected line never breaks
/// mid-word; a word longer than the line (a base64 value, a context) is cut where it must.
enum TextWrap {
    /// `text` as lines of at most `width` characters; continuation lines are indented two
    /// more than the text's own leading spaces, so a wrapped sibling still reads as one.
    static func wrap(_ text: String, width: Int, hanging: Bool = true) -> [String] {
        guard width > 0 else { return [] }
        let lead = text.prefix { $0 == " " }.count
        let indent = String(repeating: " ", count: min(lead + (hanging ? 2 : 0), max(0, width / 3)))
        var lines: [String] = []
        var rest = Substring(text)
        var first = true
        while true {
            let room = first ? width : width - indent.count
            let prefix = first ? "" : indent
            if rest.count <= room {
                lines.append(prefix + rest)
                return lines
            }
            // The last space within the room (a space just past it also ends the line).
            let window = rest.prefix(room + 1)
            var cut = rest.index(rest.startIndex, offsetBy: room)
            var next = cut
            if let space = window.lastIndex(of: " "),
                rest.distance(from: rest.startIndex, to: space) > (first ? lead : 0) + room / 4
            {
                cut = space
                next = rest.index(after: space)
            }
            lines.append(prefix + rest[..<cut])
            rest = rest[next...].drop { $0 == " " }
            first = false
            if rest.isEmpty { return lines }
        }
    }
}
