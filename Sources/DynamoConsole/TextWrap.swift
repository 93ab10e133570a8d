/// Line breaking for the screen: at word boundaries, so a projected line never breaks
/// mid-word; a word longer than the line (a base64 value, a context) is cut where it must.
enum TextWrap {
    /// `text` as lines of at most `width` characters; continuation lines are indented two
    /// more than the text's own leading spaces (`hanging`), so a wrapped sibling still
    /// reads as one. Linear in the text's length (a pasted megabyte is wrapped 4 times a
    /// second while on screen).
    static func wrap(_ text: String, width: Int, hanging: Bool = true) -> [String] {
        guard width > 0 else { return [] }
        guard text.utf8.count > width else { return [text] }  // (no character is narrower than a byte)
        let characters = Array(text)
        guard characters.count > width else { return [text] }
        let lead = characters.prefix { $0 == " " }.count
        let indent = String(repeating: " ", count: min(lead + (hanging ? 2 : 0), max(0, width / 3)))
        var lines: [String] = []
        var start = 0
        var first = true
        while start < characters.count {
            let room = first ? width : width - indent.count
            let prefix = first ? "" : indent
            if characters.count - start <= room {
                lines.append(prefix + String(characters[start...]))
                break
            }
            // The last space within the room (a space just past it also ends the line),
            // unless that would leave the line too short.
            var cut = start + room
            var next = cut
            let floor = start + (first ? lead : 0) + room / 4
            var index = start + room
            while index > floor {
                if characters[index] == " " {
                    cut = index
                    next = index + 1
                    break
                }
                index -= 1
            }
            lines.append(prefix + String(characters[start..<cut]))
            start = next
            while start < characters.count, characters[start] == " " { start += 1 }
            first = false
        }
        return lines
    }
}
