import CReadline
import DynamoConsole
import Foundation

/// GNU readline set up for the console: history kept in a file between runs, and tab
/// completion of commands, node names and recently used keys.
///
/// readline is C with global state, so this is one process-wide instance; everything
/// touching it runs on one thread (the screen's, or the plain prompt's).
enum LineEditor {
    nonisolated(unsafe) static var historyPath: String?
    /// What completion offers after the command word (set before each line is read).
    nonisolated(unsafe) static var nodeNames: [String] = []
    nonisolated(unsafe) static var recentKeys: [String] = []
    nonisolated(unsafe) private static var matches: [String] = []
    nonisolated(unsafe) private static var matchIndex = 0
    nonisolated(unsafe) private static var lastLine: String?

    /// Where history lives: `$DYNAMO_HISTORY`, else `~/.dynamo_history`.
    static func defaultHistoryPath() -> String {
        if let path = ProcessInfo.processInfo.environment["DYNAMO_HISTORY"], !path.isEmpty { return path }
        return (ProcessInfo.processInfo.environment["HOME"] ?? ".") + "/.dynamo_history"
    }

    static func setUp(historyPath: String = defaultHistoryPath()) {
        self.historyPath = historyPath
        using_history()
        stifle_history(1000)
        _ = read_history(historyPath)
        dynamo_rl_set_completion { text, start, _ in
            dynamo_rl_no_default_completion()
            LineEditor.prepareMatches(prefix: text.map { String(cString: $0) } ?? "", start: Int(start))
            return rl_completion_matches(text) { _, state in
                if state == 0 { LineEditor.matchIndex = 0 }
                guard LineEditor.matchIndex < LineEditor.matches.count else { return nil }
                defer { LineEditor.matchIndex += 1 }
                return strdup(LineEditor.matches[LineEditor.matchIndex])
            }
        }
    }

    /// Remembers a line typed (not repeats of the previous one) and saves the history.
    static func remember(_ line: String) {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed != lastLine else { return }
        lastLine = trimmed
        add_history(trimmed)
        if let historyPath { _ = write_history(historyPath) }
    }

    /// The words completion offers at this point of the line.
    static func prepareMatches(prefix: String, start: Int) {
        let line = String(cString: dynamo_rl_line())
        let before = String(line.utf8.prefix(start)) ?? ""
        let words = before.split(separator: " ").map(String.init)
        matches = Completion.candidates(
            words: words, prefix: prefix, nodes: nodeNames, keys: recentKeys)
    }
}

/// A line typed at a plain terminal with readline (history, completion); nil at end of input.
public func readEditedLine(prompt: String, nodes: [String], keys: [String]) -> String? {
    if LineEditor.historyPath == nil { LineEditor.setUp() }
    LineEditor.nodeNames = nodes
    LineEditor.recentKeys = keys
    guard let line = readline(prompt) else { return nil }
    defer { free(line) }
    let text = String(cString: line)
    LineEditor.remember(text)
    return text
}
