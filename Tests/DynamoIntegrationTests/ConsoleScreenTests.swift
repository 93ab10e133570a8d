import DynamoCore
import DynamoLauncher
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The console as a person uses it: typed into through tmux, read off the screen.
@Suite(.serialized) struct ConsoleScreenTests {
    /// Runs a command with posix_spawn and waitpid, output to a temporary file. (Foundation's
    /// Process never noticed the exit of a tmux client whose server daemonized, and a pipe
    /// would be held open by that server.)
    /// A command still running after `timeout` is killed (-9) and reported as an error.
    @discardableResult
    static func run(_ arguments: [String], stderr: Bool = false, timeout: Duration = .seconds(150)) throws -> (
        status: Int32, output: String
    ) {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("tmux-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if stderr {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        guard posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ) == 0 else {
            throw LauncherError("cannot run \(arguments[0]) (is it installed? `make deps` installs tmux)")
        }
        var status: Int32 = 0
        let deadline = ContinuousClock.now + timeout
        var reaped: pid_t = 0
        while reaped == 0 || (reaped == -1 && errno == EINTR) {
            reaped = waitpid(pid, &status, WNOHANG)
            if reaped == 0 {
                if ContinuousClock.now >= deadline {
                    kill(pid, SIGKILL)
                    while waitpid(pid, &status, 0) == -1, errno == EINTR {}
                    let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
                    throw LauncherError("\(arguments.joined(separator: " ")) still ran after \(timeout): killed\n\(output)")
                }
                usleep(10_000)
            }
        }
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        // Exited: its code. Killed by a signal: 128 + the signal, as a shell says it (never
        // 0, which `(status >> 8) & 0xff` gave for a crash).
        let signal = status & 0x7f
        return (signal == 0 ? (status >> 8) & 0xff : 128 + signal, output)
    }

    @discardableResult
    static func tmux(_ arguments: [String]) throws -> String {
        let result = try run(["tmux"] + arguments)
        guard result.status == 0 else { throw LauncherError("tmux \(arguments.first ?? "") failed") }
        return result.output
    }

    /// Whether any process's command line names `directory`. A pgrep that cannot run or
    /// fails (status 2 or more) throws, rather than passing for "none running".
    static func nodesRunning(under directory: String) throws -> Bool {
        let result = try run(["pgrep", "-f", directory])
        guard result.status <= 1 else { throw LauncherError("pgrep failed with status \(result.status)") }
        return result.status == 0
    }

    /// A key whose home nodes, on the ring a local cluster of `nodes` nodes builds (tokens
    /// placed by name), include `node`.
    static func key(_ prefix: String, homedOn node: String, nodes: Int = 5) throws -> String {
        let ring = Ring(
            nodes: Dictionary(uniqueKeysWithValues: (1...nodes).map { ("n\($0)", Token.defaultPositions(for: "n\($0)", count: 8)) }))
        let key = (0..<200).map { "\(prefix):\($0)" }.first {
            ring.preferenceList(forKey: Array($0.utf8)).home(3).contains(node)
        }
        return try #require(key)
    }

    /// A console in a tmux session of the given size, with its own data and history.
    struct Screen {
        let session: String
        let directory: String

        static func start(width: Int, height: Int, nodes: Int = 5, environment: [String] = []) throws -> Screen {
            try launch(
                width: width, height: height, environment: environment,
                arguments: { ["console", "--nodes", "\(nodes)", "--gossip-interval-ms", "100", "--dir", $0] })
        }

        /// `dynamo ARGUMENTS` (given the screen's directory) in a tmux session of its own.
        static func launch(
            width: Int, height: Int, environment: [String] = [], arguments: (String) -> [String]
        ) throws -> Screen {
            let binary = try #require(LocalCluster.siblingBinary(named: "dynamo"), "dynamo is not built")
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "dynamo-screen-\(UUID().uuidString)"
            ).path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let screen = Screen(session: "dynamo-test-\(getpid())-\(UUID().uuidString.prefix(8))", directory: directory)
            // The test runner may export NO_COLOR (its output is not a terminal), and tmux
            // passes it on: start from a known environment, then add the test's own.
            let env = (["-u", "NO_COLOR", "LANG=C.UTF-8", "DYNAMO_HISTORY=\(directory)/history"] + environment)
                .joined(separator: " ")
            try tmux([
                "new-session", "-d", "-s", screen.session, "-x", "\(width)", "-y", "\(height)",
                "env \(env) \(binary) \(arguments(directory).joined(separator: " "))",
            ])
            return screen
        }

        func text(escapes: Bool = false) throws -> String {
            try tmux(["capture-pane", "-p"] + (escapes ? ["-e"] : []) + ["-t", session])
        }

        func lines() throws -> [String] {
            try text().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        }

        func type(_ line: String) throws { try tmux(["send-keys", "-t", session, "-l", line]) }
        func press(_ key: String) throws { try tmux(["send-keys", "-t", session, key]) }
        func enter(_ line: String) throws {
            try type(line)
            try press("Enter")
        }

        func wait(
            _ what: String, timeout: Duration = .seconds(30), until condition: @escaping @Sendable (String) -> Bool
        ) async throws {
            let me = self
            do {
                try await LocalCluster.waitFor(what, timeout: timeout) { condition(try me.text()) }
            } catch {
                // The screen as it was, to see why.
                throw LauncherError("\(error)\n\((try? me.text()) ?? "")")
            }
        }

        func waitFor(_ text: String, timeout: Duration = .seconds(30)) async throws {
            try await wait("'\(text)' on the screen", timeout: timeout) { $0.contains(text) }
        }

        /// The node table's row of `node` (from the right-hand "nodes" panel).
        static func nodeRow(_ node: String, in screen: String) -> String? {
            screen.split(separator: "\n").map(String.init).first { $0.contains("│ \(node)  ") && $0.contains("%") }
        }

        /// The gossip matrix row of `observer`.
        static func gossipRow(_ observer: String, in screen: String) -> String? {
            screen.split(separator: "\n").map(String.init).first { $0.hasPrefix("│ \(observer) ") && !$0.contains("%") }
        }

        /// `quit`, its one confirmation (the question on screen, the prompt asking), `y`,
        /// and every node the console started stopped.
        func quitStoppingItsNodes() async throws {
            try enter("quit")
            try await wait("quit asking to confirm") { text in
                text.contains("quit stops the") && text.split(separator: "\n").last?.hasPrefix("quit? y/N") == true
            }
            try enter("y")
            let directory = self.directory
            try await LocalCluster.waitFor("every node to stop after quit", timeout: .seconds(30)) {
                !(try ConsoleScreenTests.nodesRunning(under: directory))
            }
        }

        func close() {
            _ = try? tmux(["kill-session", "-t", session])
            _ = try? ConsoleScreenTests.run(["pkill", "-9", "-f", directory])
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    @Test(.timeLimit(.minutes(3))) func theDashboardFollowsTheClusterWhileThePromptWorks() async throws {
        let screen = try Screen.start(width: 120, height: 42)
        defer { screen.close() }

        // Every node up in the table and in every gossip row.
        try await screen.wait("all five nodes up on the dashboard") { text in
            (1...5).allSatisfy { Screen.nodeRow("n\($0)", in: text)?.contains(" up ") == true }
                && (1...5).allSatisfy { i in
                    let row = Screen.gossipRow("n\(i)", in: text) ?? ""
                    return row.filter { $0 == "U" }.count == 4
                }
        }
        // A prompt that works while the dashboard refreshes (the clock moves on).
        let firstClock = try screen.lines()[0]
        try screen.enter("put cart:ann book")
        try await screen.waitFor("ok: written via")
        try screen.enter("get cart:ann")
        try await screen.waitFor("via n1 (replies")
        try await screen.wait("the header clock to move") {
            $0.split(separator: "\n").first.map(String.init) != firstClock
        }
        #expect(try screen.text().contains("cart:ann → "), "the ring marks the key and its home nodes")
        #expect(try screen.text(escapes: true).contains("\u{1b}[32m"), "up is drawn in green")

        // Tab completion of a command.
        try screen.type("prefl")
        try screen.press("Tab")
        // Completed, with a hint of what comes next (dimmed on the screen).
        try await screen.wait("the completed command") { $0.split(separator: "\n").last == "dynamo> preflist KEY" }
        try screen.enter("cart:ann")
        try await screen.waitFor("home nodes")

        // Kill n3: down in every gossip row and in the node table within seconds; writes go on.
        try screen.enter("kill n3")
        try await screen.waitFor("n3 killed")
        try await screen.wait("n3 down in the gossip panel", timeout: .seconds(15)) { text in
            [1, 2, 4, 5].allSatisfy { i in (Screen.gossipRow("n\(i)", in: text) ?? "").contains("D") }
                && Screen.nodeRow("n3", in: text)?.contains("DOWN") == true
        }
        // A key n3 is a home node of: the put succeeds only by going around it.
        let aroundN3 = try Self.key("after:kill", homedOn: "n3")
        try screen.enter("put \(aroundN3) yes")
        try await screen.wait("a put after the kill") {
            $0.contains("dynamo> put \(aroundN3) yes") && $0.contains("ok: written via")
                && !($0.split(separator: "\n").last { $0.contains("ok: written via") } ?? "").contains("n3")
        }
        try screen.enter("restart n3")
        try await screen.wait("n3 back up", timeout: .seconds(20)) {
            Screen.nodeRow("n3", in: $0)?.contains(" up ") == true
        }

        // A partition, writes on both sides, heal: two numbered siblings, resolved at the prompt.
        try screen.enter("partition n1,n2 | n3,n4,n5")
        try await screen.waitFor("partitioned: n1,n2 | n3,n4,n5")
        try await screen.waitFor("partition n1,n2 | n3,n4,n5")  // in the header
        try screen.enter("use n1")
        try screen.enter("put cart:ann pen")
        try await screen.waitFor("written via n1")
        try screen.enter("use n4")
        try screen.enter("put cart:ann lamp")
        try await screen.waitFor("written via n4")
        try screen.enter("heal")
        try await screen.waitFor("healed")
        try screen.enter("r 3")
        try await screen.wait("two siblings", timeout: .seconds(20)) { text in
            if text.contains("2 siblings") && text.contains("[1]") && text.contains("[2]") { return true }
            try? screen.enter("get cart:ann")
            return false
        }
        try await screen.waitFor("resolve>")
        try screen.enter("book+pen+lamp")
        try await screen.wait("the prompt back") { $0.split(separator: "\n").last == "dynamo>" }
        try screen.enter("get cart:ann")
        // One version prints as a bare line (siblings would be numbered).
        try await screen.wait("one resolved value") { $0.split(separator: "\n").contains("book+pen+lamp") }

        // Quitting stops every node it started, and the history is kept for the next run.
        try await screen.quitStoppingItsNodes()  // it asks first: these nodes are the console's
        let history = try String(contentsOfFile: "\(screen.directory)/history", encoding: .utf8)
        #expect(history.contains("put cart:ann book"))
    }

    @Test(.timeLimit(.minutes(3))) func eightyByTwentyFourShowsEveryPanelHelpAndHonoursNoColor() async throws {
        let screen = try Screen.start(width: 80, height: 24, nodes: 3, environment: ["NO_COLOR=1"])
        defer { screen.close() }
        try await screen.wait("three nodes up") { text in
            (1...3).allSatisfy { Screen.nodeRow("n\($0)", in: text)?.contains(" up ") == true }
        }
        let text = try screen.text()
        for panel in ["ring", "nodes", "gossip", "hints & anti-entropy", "events", "?:help"] {
            #expect(text.contains(panel), "no \(panel) at 80x24")
        }
        // NO_COLOR: attributes only, never a colour.
        let escapes = try screen.text(escapes: true)
        let colours = (31...37).flatMap { ["\u{1b}[\($0)m", ";\($0)m"] } + ["\u{1b}[38;"]
        #expect(!colours.contains { escapes.contains($0) }, "a colour escape despite NO_COLOR")
        try screen.type("?")
        try await screen.waitFor("help COMMAND explains one")
        #expect(try screen.text().contains("partition A,B | C,D"))
        try screen.type("x")  // any key closes the overlay
        try await screen.wait("the help to close") { !$0.contains("help COMMAND explains one") }
        // `help` typed at the prompt opens the same overlay (the list is longer than the output area).
        try screen.enter("help")
        try await screen.waitFor("help COMMAND explains one")
        // Longer than the screen: PgDn pages on to the rest, with a legend of every panel.
        try screen.press("PageDown")
        try await screen.waitFor("add-node [NAME]")
        for _ in 0..<3 { try screen.press("PageDown") }
        try await screen.waitFor("GOSSIP MATRIX")
        try screen.press("Escape")
        try await screen.wait("the help to close") { !$0.contains("help COMMAND explains one") }
        try screen.enter("frobnicate")
        try await screen.waitFor("unknown command 'frobnicate'")
        // Resized, the dashboard redraws at the new size: too small says so, bigger fills it.
        try Self.tmux(["resize-window", "-t", screen.session, "-x", "50", "-y", "12"])
        try await screen.waitFor("terminal too small (50x12)")
        try Self.tmux(["resize-window", "-t", screen.session, "-x", "140", "-y", "44"])
        try await screen.wait("the dashboard at 140x44") { text in
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            return !text.contains("too small") && text.contains("gossip") && lines.count >= 44
                && lines.contains { $0.count > 120 && $0.contains("│") }
        }
        // Ctrl-C clears the line being typed (as in a shell) and keeps the console; quit stops it.
        try screen.type("put half typed")
        try await screen.waitFor("dynamo> put half typed")
        try screen.press("C-c")
        try await screen.wait("the line cleared") { text in
            text.contains("^C (clears the line") && text.split(separator: "\n").last == "dynamo>"
        }
        #expect(try Self.nodesRunning(under: screen.directory), "Ctrl-C stopped nothing")
        try await screen.quitStoppingItsNodes()  // it asks first: these nodes are the console's
    }

    /// At 80x24, after `wipe` the anti-entropy lines settle to every pair in sync, and after
    /// `remove` the node that left is shown as `left`, then gone from the header, the node
    /// table and completion (bounds in the README: two anti-entropy intervals, and 10 s
    /// after the node exits).
    @Test(.timeLimit(.minutes(4))) func afterWipeAndRemoveThePanelsSettleToTheTruth() async throws {
        let screen = try Screen.start(width: 80, height: 24, nodes: 4)
        defer { screen.close() }
        try await screen.wait("four nodes up") { text in
            (1...4).allSatisfy { Screen.nodeRow("n\($0)", in: text)?.contains(" up ") == true }
        }
        try screen.enter("fill w 40")
        try await screen.waitFor("filled 40 keys")
        try screen.enter("wipe n4")
        try await screen.wait("n4 back up", timeout: .seconds(30)) { Screen.nodeRow("n4", in: $0)?.contains(" up ") == true }
        // Lines that differ or are not compared yet come first: the first pair line reading
        // in sync means every pair is.
        @Sendable func firstPairLine(_ text: String) -> String? {
            text.split(separator: "\n").map(String.init).first { $0.contains("↔") }
        }
        try await screen.wait("every replica pair in sync after the wipe", timeout: .seconds(60)) { text in
            firstPairLine(text)?.contains("ranges in sync · all within") == true
        }
        #expect(!(try screen.text()).contains("keys differ"))

        try screen.enter("remove n4")
        try await screen.waitFor("n4 is leaving")
        try await screen.wait("n4 shown as left", timeout: .seconds(30)) {
            Screen.nodeRow("n4", in: $0)?.contains("left") == true || $0.contains("n4 left")
        }
        try await screen.wait("n4 gone from every panel", timeout: .seconds(30)) { text in
            let header = text.split(separator: "\n").first ?? ""
            return header.contains("3 nodes, 3 up") && !header.contains("n4 left") && Screen.nodeRow("n4", in: text) == nil
        }
        let text = try screen.text()
        #expect(Screen.gossipRow("n4", in: text) == nil, "no gossip row for n4")
        // Completion no longer offers it.
        try screen.type("kill n")
        try screen.press("Tab")
        try screen.press("Tab")
        try await screen.wait("completion of node names") { $0.contains("n1") && $0.contains("n3") }
        #expect(!(try screen.lines().last ?? "").contains("n4"))
    }

    /// The state file follows the console: added nodes appear, a stopped node's pid is 0,
    /// restarted and wiped nodes carry their new pid; every listed pid is a live
    /// `dynamo-node`. A second console in the same directory says in one line that one runs.
    @Test(.timeLimit(.minutes(3))) func theStateFileFollowsTheClusterAndASecondConsoleSaysWhy() async throws {
        let screen = try Screen.start(width: 80, height: 24, nodes: 3)
        defer { screen.close() }
        try await screen.wait("three nodes up") { text in
            (1...3).allSatisfy { Screen.nodeRow("n\($0)", in: text)?.contains(" up ") == true }
        }
        let directory = screen.directory
        @Sendable func state() -> ClusterStateFile? { ClusterStateFile.load(directory) }
        @Sendable func pid(_ name: String) -> Int32? { state()?.nodes.first { $0.name == name }?.pid }
        let first = try #require(state())
        #expect(first.owner.map { ClusterStateFile.isLive($0, running: "dynamo") } == true, "the console owns it")
        #expect(first.nodes.map(\.name) == ["n1", "n2", "n3"] && first.liveNodes.count == 3)

        try screen.enter("add-node")
        try await LocalCluster.waitFor("n4 in the state file", timeout: .seconds(20)) {
            pid("n4").map { ClusterStateFile.isLive($0, running: "dynamo-node") } == true
        }
        let n2 = try #require(pid("n2"))
        try screen.enter("kill n2")
        try await LocalCluster.waitFor("n2's pid cleared", timeout: .seconds(20)) { pid("n2") == 0 }
        try screen.enter("restart n2")
        try await LocalCluster.waitFor("n2's new pid", timeout: .seconds(20)) {
            pid("n2").map { $0 != n2 && ClusterStateFile.isLive($0, running: "dynamo-node") } == true
        }
        let n3 = try #require(pid("n3"))
        try screen.enter("wipe n3")
        try await LocalCluster.waitFor("n3's new pid after the wipe", timeout: .seconds(20)) {
            pid("n3").map { $0 != n3 && ClusterStateFile.isLive($0, running: "dynamo-node") } == true
        }
        #expect(state()?.liveNodes.count == 4)

        // A second console here: one line saying who runs and what to do, no RocksDB error.
        let binary = try #require(LocalCluster.siblingBinary(named: "dynamo"))
        let second = try Self.run(
            [binary, "console", "--plain", "--nodes", "3", "--dir", directory], stderr: true, timeout: .seconds(30))
        #expect(second.status != 0)
        let lines = second.output.split(separator: "\n").filter { !$0.isEmpty }
        #expect(lines.count == 1, "\(second.output)")
        #expect(second.output.contains("already running") && second.output.contains("pid \(first.owner ?? 0)"))
        #expect(second.output.contains("--attach 127.0.0.1:") && !second.output.contains("LOCK"))
    }

    /// What a class needs at 80x24: three siblings and the resolve> prompt on screen
    /// together; scrollback (PgUp) to what scrolled away; a view per panel (F3: the ring
    /// with its ranges); the event log filtered and paused; `ring NODE`; a timed trace;
    /// Ctrl-R's search and argument hints shown; quit asking once.
    @Test(.timeLimit(.minutes(4))) func aClassCanFollowItAtEightyByTwentyFour() async throws {
        let screen = try Screen.start(width: 80, height: 24, nodes: 5)
        defer { screen.close() }
        try await screen.wait("five nodes up") { text in
            (1...5).allSatisfy { Screen.nodeRow("n\($0)", in: text)?.contains(" up ") == true }
        }
        @Sendable func lastLine(_ text: String) -> String { String(text.split(separator: "\n").last ?? "") }
        // Three sides, each holding one of cart:ann's home nodes (n1, n4, n5), one write on
        // each (W=1: a side of one node can take it), then heal.
        for line in ["w 1", "partition n1 | n4 | n2,n3,n5"] { try screen.enter(line) }
        try await screen.waitFor("partitioned: n1 | n4 | n2,n3,n5")
        for (node, value) in [("n1", "pen"), ("n5", "hat"), ("n4", "lamp")] {
            try screen.enter("use \(node)")
            try screen.enter("put cart:ann \(value)")
            try await screen.waitFor("written via \(node)")
        }
        try screen.enter("heal")
        try await screen.waitFor("healed")
        try screen.enter("r 3")
        try await screen.wait("three siblings", timeout: .seconds(20)) { text in
            if text.contains("3 siblings") { return true }
            if lastLine(text) == "resolve>" { try? screen.press("Enter") }  // fewer: leave them, read again
            if lastLine(text) == "dynamo>" { try? screen.enter("get cart:ann") }
            return false
        }
        // The whole reply and the prompt, at once: every sibling with its clock.
        try await screen.wait("the sibling list whole with resolve>") { text in
            ["3 siblings", "[1]", "[2]", "[3]", "via n4 (replies", "a number keeps that sibling"].allSatisfy {
                text.contains($0)
            } && lastLine(text) == "resolve>" && text.contains("clock n")
        }
        try screen.enter("1")
        try await screen.waitFor("ok: written via n4")

        // PgUp: the output takes the screen, back to the partition; PgDn returns.
        for _ in 0..<3 { try screen.press("PageUp") }
        try await screen.wait("the output scrolled back") {
            $0.contains("partitioned: n1 | n4 | n2,n3,n5") && $0.split(separator: "\n").first?.contains(" output ") == true
        }
        for _ in 0..<6 { try screen.press("PageDown") }
        try await screen.wait("back to every panel") { $0.contains("┌nodes") }

        // F3: the ring and its ranges; F2: every panel again.
        try screen.press("F3")
        try await screen.wait("the ring view") { $0.contains("ranges (ring NODE") && $0.contains("0↻") }
        try screen.press("F2")
        try await screen.wait("every panel") { !$0.contains("ranges (ring NODE") && $0.contains("nodes") }
        try screen.enter("ring n2")
        try await screen.waitFor("n2 is a home node of")

        // The event log filtered, then paused, then back.
        try screen.enter("events filter heal")
        try await screen.wait("the filtered log") { $0.contains("events matching 'heal'") && $0.contains("heal: talking") }
        try screen.enter("events pause")
        try await screen.waitFor("PAUSED")
        try screen.enter("events resume")
        try screen.enter("events all")
        try await screen.wait("the whole log again") { !$0.contains("PAUSED") && !$0.contains("matching") }

        // A traced put, drawn: each message between the nodes, the ms since it came in.
        try screen.enter("trace on")
        try screen.enter("w 2")
        try screen.enter("put cart:ann book")
        try await screen.wait("a diagram of the put") {
            $0.contains("trace put cart:ann W=2 via n4") && $0.contains("ms since it came in") && $0.contains("◆")
        }

        // Ctrl-R shows its search; Ctrl-C leaves it. A command's arguments are hinted.
        try screen.press("C-r")
        try screen.type("partit")
        try await screen.wait("the search prompt") { lastLine($0).hasPrefix("(reverse-i-search)`partit'") }
        try screen.press("C-c")
        try await screen.wait("the search left") { lastLine($0) == "dynamo>" }
        try screen.type("put ")
        try await screen.wait("the argument hint") { lastLine($0) == "dynamo> put KEY VALUE" }
        try screen.press("C-c")
        try await screen.wait("the line cleared") { lastLine($0) == "dynamo>" }

        // quit asks once; anything but y keeps the nodes.
        try screen.enter("quit")
        try await screen.waitFor("quit stops the 5 nodes")
        try screen.enter("no")
        try await screen.waitFor("quit cancelled")
        #expect(try Self.nodesRunning(under: screen.directory))
        try await screen.quitStoppingItsNodes()
    }

    /// At 200x60 the panels grow and nothing is cut: the ring larger, the gossip legend
    /// whole, latency and sync columns, the full key legend in the header.
    @Test(.timeLimit(.minutes(3))) func twoHundredBySixtyGrowsThePanelsAndCutsNothing() async throws {
        let screen = try Screen.start(width: 200, height: 60, nodes: 5)
        defer { screen.close() }
        try await screen.wait("five nodes up with sync columns") { text in
            (1...5).allSatisfy { Screen.nodeRow("n\($0)", in: text)?.contains(" up ") == true } && text.contains("p50ms")
        }
        let text = try screen.text()
        for piece in ["?:help  F2-F8:views  PgUp:scroll", "U up D down J joining L leaving", "heartbeat", "0↻", "sync"] {
            #expect(text.contains(piece), "missing \(piece) at 200x60")
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.allSatisfy { $0.count <= 200 })
        try screen.enter("put cart:ann book")
        try await screen.waitFor("cart:ann → ")
    }
}
