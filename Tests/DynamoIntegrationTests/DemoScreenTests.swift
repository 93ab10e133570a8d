import DynamoConsole
import DynamoLauncher
import Foundation
import Testing

/// Every demo run as a class sees it, at 80x24 with its pauses: at each pause the screen
/// shows what the narration points at (the demo's `screen` lines before that pause), the
/// step's words are on screen, and the demo ends with its nodes stopped.
///
/// Each pause's screen is written to `$DYNAMO_SCREEN_CAPTURES/NAME-K.txt` when that is set
/// (the captures in an issue's closing note come from here).
@Suite(.serialized) struct DemoScreenTests {
    static let demos = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Demos").path

    /// The screen without the narration pane: what the narration points at must be shown
    /// by the dashboard or the output, not merely said.
    static func withoutNarration(_ text: String) -> String {
        var lines: [Substring] = []
        var inPane = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("┌ ") { inPane = true }
            if !inPane { lines.append(line) }
            if inPane, line.hasPrefix("└") { inPane = false }
        }
        return lines.joined(separator: "\n")
    }

    @Test(.timeLimit(.minutes(4)), arguments: [
        "vector-clocks", "hinted-handoff", "merkle-repair", "node-join", "shopping-cart", "sloppy-vs-strict",
                "latency-and-quorums",
    ])
    func everyPauseShowsWhatItsNarrationPointsAt(name: String) async throws {
        let demo = try Demo.load(name, from: Self.demos)
        // What each pause must show, and the narration said since the pause before it.
        var checks: [(screen: [String], words: [String])] = [([], [])]
        for step in demo.steps {
            switch step {
            case .screen(let text): checks[checks.count - 1].screen.append(text)
            case .say(let text) where !text.isEmpty: checks[checks.count - 1].words.append(text)
            case .pause: checks.append(([], []))
            default: break
            }
        }
        let total = checks.count - 1
        #expect(total >= 3, "\(name) pauses for the room")
        let screen = try ConsoleScreenTests.Screen.launch(
            width: 80, height: 24, environment: ["DYNAMO_DEMOS=\(Self.demos)"],
            arguments: { ["demo", name, "--dir", $0] })
        defer { screen.close() }
        let captures = ProcessInfo.processInfo.environment["DYNAMO_SCREEN_CAPTURES"]
        for pause in 1...total {
            let (expected, words) = checks[pause - 1]
            do {
                try await screen.waitFor("\(pause)/\(total) · Enter", timeout: .seconds(90))
                try await screen.wait("pause \(pause) of \(name) showing \(expected)", timeout: .seconds(15)) { text in
                    let shown = Self.withoutNarration(text)
                    return expected.allSatisfy { shown.contains($0) }
                }
            } catch {
                let text = (try? screen.text()) ?? ""
                if let captures { try? text.write(toFile: "\(captures)/\(name)-\(pause)-failed.txt", atomically: true, encoding: .utf8) }
                throw LauncherError("\(error)\n\(text)")
            }
            // The step's last words are in the narration pane (its first eight words,
            // as wrapping breaks lines after that).
            if let last = words.last {
                let start = last.split(separator: " ").prefix(6).joined(separator: " ")
                let text = try screen.text()
                #expect(text.contains(start), "pause \(pause) of \(name): '\(start)' not on screen:\n\(text)")
            }
            let text = try screen.text()
            #expect(!text.contains("error:"), "pause \(pause) of \(name):\n\(text)")
            if let captures {
                try? FileManager.default.createDirectory(atPath: captures, withIntermediateDirectories: true)
                try text.write(toFile: "\(captures)/\(name)-\(pause).txt", atomically: true, encoding: .utf8)
            }
            try screen.press("Enter")
        }
        try await screen.waitFor("End of the demo", timeout: .seconds(60))
        try await screen.quitStoppingItsNodes()
    }
}
