import CNcurses
import CReadline
public import DynamoConsole
import Foundation
import NIOConcurrencyHelpers

/// The console's screen: the live dashboard drawn with ncurses, and a readline prompt on
/// its last row, both on one thread.
///
/// ncurses owns the terminal; readline runs in callback mode: each key read by ncurses is
/// handed to `rl_callback_read_char`, and readline's redisplay is replaced by drawing its
/// line buffer on the prompt row. Commands run as tasks, so the dashboard keeps
/// refreshing (4 Hz, or at once on a change) while one waits for the cluster.
public final class TerminalConsole: DemoHost, @unchecked Sendable {
    private let sessionBox: NIOLockedValueBox<ReplSession>
    private var session: ReplSession { sessionBox.withLockedValue { $0 } }
    /// Starts a fresh cluster for a demo's `cluster` line.
    private let clusterStarter: (@Sendable (Int, [String]) async throws -> ReplSession)?
    private let watcher: ClusterWatcher
    /// The session's prompt (`dynamo> `, or `resolve> ` while siblings wait for a choice).
    private let currentPrompt = NIOLockedValueBox("dynamo> ")
    private var prompt: String { currentPrompt.withLockedValue { $0 } }
    /// Lines printed by commands, newest last (the output area shows the tail).
    private let output: NIOLockedValueBox<[String]>
    private let quitRequested = NIOLockedValueBox(false)
    private let clearRequested = NIOLockedValueBox(false)
    private let lines: LineQueue
    private let submit: AsyncStream<String>.Continuation
    private let outputGeneration = NIOLockedValueBox(0)
    /// The session's recent keys as of its last command, for completion on the screen
    /// thread (the session itself is only touched by the task running commands).
    private let recentKeys = NIOLockedValueBox<[String]>([])

    // UI-thread state.
    private var help = false
    private var colour = false
    private var unicode = true
    private var lastDrawn = (generation: -1, output: -1, at: 0.0)

    nonisolated(unsafe) private static var current: TerminalConsole?
    nonisolated(unsafe) private static var pendingKey: Int32 = -1

    public init(
        session: ReplSession, watcher: ClusterWatcher, banner: [String],
        clusterStarter: (@Sendable (Int, [String]) async throws -> ReplSession)? = nil
    ) {
        self.sessionBox = NIOLockedValueBox(session)
        self.clusterStarter = clusterStarter
        self.watcher = watcher
        self.output = NIOLockedValueBox(banner)
        let (commands, submit) = AsyncStream.makeStream(of: String.self)
        self.lines = LineQueue(commands)
        self.submit = submit
    }

    /// Runs one line at the prompt and shows what it printed; true when it asks to quit.
    private func execute(_ line: String) async -> Bool {
        let session = self.session
        let (lines, quit) = await session.run(line)
        let keys = session.recentKeys
        recentKeys.withLockedValue { $0 = keys }
        if let key = keys.first { watcher.focus(on: key) }
        for event in session.takeEvents() { watcher.note(event) }
        if let partition = session.partitionText { watcher.setPartition(partition.isEmpty ? nil : partition) }
        currentPrompt.withLockedValue { $0 = session.prompt }
        append(lines)
        return quit
    }

    // MARK: DemoHost

    public func show(_ lines: [String], narration: Bool) async {
        append(narration ? lines.map { "» " + $0 } : lines)
    }

    public func pause() async {
        append(["» ── press Enter for the next step (commands typed now run first) ──"])
        currentPrompt.withLockedValue { $0 = "next> " }
        while let line = await lines.next() {
            if line.trimmingCharacters(in: .whitespaces).isEmpty { break }
            if await execute(line) {
                requestQuit()
                break
            }
            currentPrompt.withLockedValue { $0 = "next> " }
        }
        currentPrompt.withLockedValue { $0 = "… " }
    }

    public func startCluster(nodes: Int, nodeArguments: [String]) async throws -> ReplSession {
        guard let clusterStarter else { throw CommandError("this console cannot start clusters") }
        let session = try await clusterStarter(nodes, nodeArguments)
        sessionBox.withLockedValue { $0 = session }
        watcher.reset()
        return session
    }

    /// Asks the screen to close (SIGTERM, or Ctrl-C in a demo); `run` returns soon after.
    public func requestQuit() { quitRequested.withLockedValue { $0 = true } }

    /// Asks the screen to empty the line being typed (Ctrl-C at the console's prompt, as
    /// bash, cqlsh and redis-cli do); the screen thread does it, readline being its alone.
    public func requestClearLine() { clearRequested.withLockedValue { $0 = true } }

    /// Runs until `quit`, Ctrl-D, Ctrl-C or `requestQuit`: the screen on its own thread,
    /// commands and polling as tasks.
    /// - Parameter demo: run first (a classroom demo), then the prompt stays for exploring.
    public func run(demo: (@Sendable (TerminalConsole) async throws -> Void)? = nil) async {
        let poller = Task { await watcher.run() }
        let runner = Task {
            if let demo {
                do {
                    try await demo(self)
                } catch {
                    append(["error: \(error)"])
                }
                currentPrompt.withLockedValue { $0 = session.prompt }
            }
            while let line = await lines.next() {
                if await execute(line) { requestQuit() }
            }
        }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let thread = Thread {
                self.screenLoop()
                done.resume()
            }
            thread.stackSize = 4 << 20
            thread.start()
        }
        submit.finish()
        poller.cancel()
        runner.cancel()
    }

    private func append(_ lines: [String]) {
        output.withLockedValue { output in
            output += lines
            if output.count > 1000 { output.removeFirst(output.count - 1000) }
        }
        outputGeneration.withLockedValue { $0 += 1 }
    }

    // MARK: The screen thread

    private func screenLoop() {
        setlocale(LC_ALL, "")
        unicode = dynamo_is_utf8() != 0
        initscr()
        cbreak()
        noecho()
        nonl()
        keypad(dynamo_stdscr(), false)  // readline decodes the escape sequences itself
        let noColor = !(ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty
        if has_colors(), !noColor {
            start_color()
            use_default_colors()
            colour = true
            for (pair, fg) in [
                (1, COLOR_GREEN), (2, COLOR_RED), (3, COLOR_YELLOW), (4, COLOR_CYAN), (5, COLOR_MAGENTA),
            ] {
                init_pair(Int16(pair), Int16(fg), -1)
            }
        }
        setUpReadline()
        draw(force: true)
        while !quitRequested.withLockedValue({ $0 }) {
            followTerminalSize()
            let clear = clearRequested.withLockedValue { requested -> Bool in
                defer { requested = false }
                return requested
            }
            if clear {
                dynamo_rl_clear_line()
                append(["^C (clears the line; quit or Ctrl-D stops the console)"])
                draw(force: true)
            }
            var key = wgetch(dynamo_stdscr())
            if key == ERR {
                draw(force: false)
                continue
            }
            // Take everything typed or pasted before drawing once.
            wtimeout(dynamo_stdscr(), 0)
            while key != ERR, !quitRequested.withLockedValue({ $0 }) {
                handle(key: key)
                key = wgetch(dynamo_stdscr())
            }
            wtimeout(dynamo_stdscr(), 50)
            draw(force: true)
        }
        rl_callback_handler_remove()
        endwin()
        Self.current = nil
    }

    private func setUpReadline() {
        Self.current = self
        LineEditor.setUp()
        dynamo_rl_embed(
            { _ in
                defer { TerminalConsole.pendingKey = -1 }
                return TerminalConsole.pendingKey
            },
            { TerminalConsole.pendingKey >= 0 ? 1 : 0 },
            { TerminalConsole.current?.drawPrompt() },
            { matches, count, _ in
                guard let matches, count > 0 else { return }
                var words: [String] = []
                for i in 1...Int(count) { if let word = matches[i] { words.append(String(cString: word)) } }
                TerminalConsole.current?.append(["completions: " + words.joined(separator: "  ")])
                TerminalConsole.current?.draw(force: true)
            })
        rl_callback_handler_install(prompt) { line in
            guard let console = TerminalConsole.current else { return }
            guard let line else {
                console.requestQuit()  // Ctrl-D on an empty line
                return
            }
            let text = String(cString: line)
            free(line)
            LineEditor.remember(text)
            console.append([console.prompt + text])
            // The list of commands is longer than the output area: show it in the overlay.
            if ["help", "?"].contains(text.trimmingCharacters(in: .whitespaces).lowercased()),
                console.prompt == "dynamo> "
            {
                console.help = true
                return
            }
            console.currentPrompt.withLockedValue { $0 = "… " }  // until the command finishes
            console.submit.yield(text)
        }
        wtimeout(dynamo_stdscr(), 50)
    }

    private func handle(key: Int32) {
        if key == KEY_RESIZE {
            return
        }
        if help {
            help = false  // any key closes the overlay
            return
        }
        if key == Int32(UInt8(ascii: "?")), dynamo_rl_end() == 0 {
            help = true
            return
        }
        if key == 9 {  // Tab: what completion offers
            LineEditor.nodeNames = watcher.model.memberNames
            LineEditor.recentKeys = recentKeys.withLockedValue { $0 }
        }
        Self.pendingKey = key
        rl_callback_read_char()
    }

    /// Resizes ncurses when the terminal's size changed (SIGWINCH is not always delivered
    /// as KEY_RESIZE with keypad off).
    private func followTerminalSize() {
        var rows: Int32 = 0
        var cols: Int32 = 0
        guard dynamo_terminal_size(&rows, &cols) != 0 else { return }
        if rows != dynamo_lines() || cols != dynamo_cols() {
            resizeterm(rows, cols)
            draw(force: true)
        }
    }

    private func attributes(_ style: Canvas.Style) -> Int32 {
        let bold = dynamo_attr_bold()
        if !colour {
            switch style {
            case .plain, .good, .accent: return dynamo_attr_normal()
            case .dim: return dynamo_attr_dim()
            case .bold, .title: return bold
            case .bad, .mark: return bold | dynamo_attr_reverse()
            case .warn: return bold | dynamo_attr_underline()
            }
        }
        switch style {
        case .plain: return dynamo_attr_normal()
        case .dim: return dynamo_attr_dim()
        case .bold: return bold
        case .title: return bold | dynamo_color_pair(4)
        case .good: return dynamo_color_pair(1)
        case .bad: return bold | dynamo_color_pair(2)
        case .warn: return dynamo_color_pair(3)
        case .accent: return dynamo_color_pair(4)
        case .mark: return bold | dynamo_color_pair(5)
        }
    }

    /// Paints the dashboard when something changed or every 250 ms (the clock, ages).
    func draw(force: Bool) {
        let generation = watcher.generation
        let outputs = outputGeneration.withLockedValue { $0 }
        let now = Date().timeIntervalSince1970
        guard force || generation != lastDrawn.generation || outputs != lastDrawn.output || now - lastDrawn.at >= 0.25
        else { return }
        lastDrawn = (generation, outputs, now)
        let canvas = DashboardView.render(
            watcher.model, output: output.withLockedValue { $0 }, width: Int(dynamo_cols()),
            height: Int(dynamo_lines()),
            options: .init(unicode: unicode, help: help))
        for row in 0..<canvas.height {
            for run in canvas.runs(row: row) {
                attrset(attributes(run.style))
                mvaddstr(Int32(row), Int32(run.col), run.text)
            }
        }
        attrset(dynamo_attr_normal())
        drawPrompt()
    }

    /// The prompt row: readline's line, scrolled so the cursor stays visible.
    func drawPrompt() {
        let row = dynamo_lines() - 1
        let line = String(cString: dynamo_rl_line())
        let cursor = String(line.utf8.prefix(Int(dynamo_rl_point()))).map(\.count) ?? line.count
        let width = Int(dynamo_cols()) - prompt.count - 1
        let start = max(0, cursor - width)
        let visible = String(line.dropFirst(start).prefix(width))
        move(row, 0)
        clrtoeol()
        attrset(dynamo_attr_bold())
        mvaddstr(row, 0, prompt)
        attrset(dynamo_attr_normal())
        addstr(visible)
        move(row, Int32(prompt.count + cursor - start))
        refresh()
    }
}

/// The lines typed at the prompt, taken one at a time by whichever part of the console is
/// waiting (the command loop, or a demo's pause). Only one task reads at a time.
final class LineQueue: @unchecked Sendable {
    private var iterator: AsyncStream<String>.Iterator

    init(_ stream: AsyncStream<String>) { iterator = stream.makeAsyncIterator() }

    func next() async -> String? { await iterator.next() }
}
