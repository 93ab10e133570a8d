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
    private let submit: AsyncStream<Typed>.Continuation
    private let outputGeneration = NIOLockedValueBox(0)
    /// The session's recent keys as of its last command, for completion on the screen
    /// thread (the session itself is only touched by the task running commands).
    private let recentKeys = NIOLockedValueBox<[String]>([])

    /// What the dashboard shows (view, scrolling, event filter, the demo's narration),
    /// changed by keys on the screen thread and by commands and demos on theirs.
    private let display = NIOLockedValueBox(DashboardView.Options())
    /// `quit` was typed and waits for its confirmation (the nodes this console started
    /// would stop).
    private let confirmingQuit = NIOLockedValueBox(false)
    /// How many nodes quitting would stop (0: attached to someone else's cluster).
    private let nodesStoppedOnQuit: @Sendable () -> Int
    /// The narration of the step in progress is complete (a pause ended it): the next
    /// narration starts a new step.
    private let stepEnded = NIOLockedValueBox(true)
    private let demoTitle = NIOLockedValueBox("demo")

    // UI-thread state.
    private var help: Bool {
        get { display.withLockedValue { $0.help } }
        set { display.withLockedValue { $0.help = newValue } }
    }
    /// Bytes of an escape sequence (a function key, PgUp) read so far.
    private var escape: [Int32] = []
    private var colour = false
    private var unicode = true
    private var lastDrawn = (generation: -1, output: -1, at: 0.0)

    nonisolated(unsafe) private static var current: TerminalConsole?
    nonisolated(unsafe) private static var pendingKey: Int32 = -1

    public init(
        session: ReplSession, watcher: ClusterWatcher, banner: [String],
        nodesStoppedOnQuit: @escaping @Sendable () -> Int = { 0 },
        clusterStarter: (@Sendable (Int, [String]) async throws -> ReplSession)? = nil
    ) {
        session.hasDashboard = true
        self.sessionBox = NIOLockedValueBox(session)
        self.nodesStoppedOnQuit = nodesStoppedOnQuit
        self.clusterStarter = clusterStarter
        self.watcher = watcher
        self.output = NIOLockedValueBox(banner)
        let (commands, submit) = AsyncStream.makeStream(of: Typed.self)
        self.lines = LineQueue(commands)
        self.submit = submit
    }

    /// Runs one line at the prompt and shows what it printed; true when it asks to quit
    /// (after its confirmation, when quitting would stop nodes this console started).
    ///
    /// Only a line typed at `resolve>` can be a merged value: one typed ahead while a read
    /// ran, or at a demo's `next>`, is a command even if the read left siblings (found by
    /// an attack review: a typed-ahead `put` was written over the siblings instead).
    private func execute(_ typed: Typed) async -> Bool {
        let session = self.session
        if confirmingQuit.withLockedValue({ $0 }) {
            confirmingQuit.withLockedValue { $0 = false }
            currentPrompt.withLockedValue { $0 = session.prompt }
            if typed.endOfInput
                || ["y", "yes", "quit", "exit", "q"].contains(typed.text.trimmingCharacters(in: .whitespaces).lowercased())
            {
                return true
            }
            append(["quit cancelled: the nodes keep running"])
            return false
        }
        var line = typed.text
        if session.resolving, typed.prompt != "resolve> ", !line.trimmingCharacters(in: .whitespaces).hasPrefix(":") {
            line = ":" + line
        }
        if typed.endOfInput || session.isQuit(line) {
            let count = nodesStoppedOnQuit()
            guard count > 0 else { return true }
            confirmingQuit.withLockedValue { $0 = true }
            append([
                "quit stops the \(count) \(count == 1 ? "node" : "nodes") this console started: y and Enter (or quit, or Ctrl-D) to confirm, anything else cancels"
            ])
            currentPrompt.withLockedValue { $0 = "quit? y/N " }
            return false
        }
        let lines = await run(line, in: session)
        currentPrompt.withLockedValue { $0 = session.prompt }
        append(lines)
        return false
    }

    /// Runs a line in `session` and follows it on the dashboard: the key on the ring, the
    /// session's actions in the event log, the view and event filter it asked for.
    public func run(_ line: String, in session: ReplSession) async -> [String] {
        // Diagrams are drawn for the screen they land on.
        session.diagramWidth = max(40, Int(dynamo_cols()))
        session.unicode = unicode
        let (lines, _) = await session.run(line)
        let keys = session.recentKeys
        recentKeys.withLockedValue { $0 = keys }
        if let key = keys.first { watcher.focus(on: key) }
        for event in session.takeEvents() { watcher.note(event) }
        if let partition = session.partitionText { watcher.setPartition(partition.isEmpty ? nil : partition) }
        if let links = session.linkText { watcher.setLinks(links.isEmpty ? nil : links) }
        let (r, w) = (session.r, session.w)
        display.withLockedValue {
            $0.sessionR = r
            $0.sessionW = w
        }
        for request in session.takeDisplayRequests() {
            display.withLockedValue { options in
                switch request {
                case .view(let panel):
                    options.view = panel
                    options.outputTop = nil
                    options.eventsOffset = 0
                case .events(.pause): options.eventsPausedAtMs = options.eventsPausedAtMs ?? ClusterWatcher.wallMs
                case .events(.resume): options.eventsPausedAtMs = nil
                case .events(.filter(let text)): options.eventFilter = text
                default: break
                }
            }
        }
        return lines
    }

    // MARK: DemoHost

    /// Narration goes to the pane that stays for the whole step (a new step, after a
    /// pause, starts it afresh); command output to the output area.
    public func show(_ lines: [String], narration: Bool) async {
        guard narration else { return append(lines) }
        // The title is the pane's own; the end says what now.
        if lines.first?.hasPrefix("=== end of") == true {
            stepEnded.withLockedValue { $0 = true }
            return await show(["End of the demo. Its cluster keeps running: explore at the prompt; quit stops it."], narration: true)
        }
        if lines.first?.hasPrefix("=== ") == true { return }
        let fresh = stepEnded.withLockedValue { ended -> Bool in
            defer { ended = false }
            return ended
        }
        let title = demoTitle.withLockedValue { $0 }
        display.withLockedValue { options in
            let kept = fresh ? [] : options.narration?.lines ?? []
            options.narration = .init(title: title, lines: kept + lines, waiting: false)
        }
        outputGeneration.withLockedValue { $0 += 1 }
    }

    public func waiting(_ what: String?) async {
        display.withLockedValue { $0.narration?.status = what.map { "waiting until \($0)…" } }
        outputGeneration.withLockedValue { $0 += 1 }
    }

    public func begin(_ title: String) async {
        demoTitle.withLockedValue { $0 = title }
    }

    public func pause(before command: String?, step: Int, of total: Int) async {
        display.withLockedValue { options in
            options.narration?.waiting = true
            options.narration?.next = command
            // A pause before a command (--step) is within the step: no number of its own.
            options.narration?.step = command == nil ? "\(step)/\(total)" : nil
        }
        currentPrompt.withLockedValue { $0 = "next> " }
        outputGeneration.withLockedValue { $0 += 1 }
        while let line = await lines.next() {
            if !line.endOfInput, line.text.trimmingCharacters(in: .whitespaces).isEmpty { break }
            if await execute(line) {
                requestQuit()
                break
            }
            currentPrompt.withLockedValue { $0 = confirmingQuit.withLockedValue { $0 } ? "quit? y/N " : "next> " }
        }
        display.withLockedValue { options in
            options.narration?.waiting = false
            options.narration?.next = nil
        }
        // A pause before a command leaves the step's words up while it runs.
        if command == nil { stepEnded.withLockedValue { $0 = true } }
        currentPrompt.withLockedValue { $0 = "… " }
        outputGeneration.withLockedValue { $0 += 1 }
    }

    public func startCluster(nodes: Int, nodeArguments: [String]) async throws -> ReplSession {
        guard let clusterStarter else { throw CommandError("this console cannot start clusters") }
        let session = try await clusterStarter(nodes, nodeArguments)
        session.hasDashboard = true
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
            if output.count > Self.outputLimit { output.removeFirst(output.count - Self.outputLimit) }
        }
        display.withLockedValue { $0.outputTop = nil }  // new output: back to the newest
        outputGeneration.withLockedValue { $0 += 1 }
    }

    /// Lines of output kept for scrolling back.
    static let outputLimit = 2000

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
            // 1-5 the meanings (good, bad, warn, accent, mark), 6-11 the nodes on the ring.
            for (pair, fg) in [
                (1, COLOR_GREEN), (2, COLOR_RED), (3, COLOR_YELLOW), (4, COLOR_CYAN), (5, COLOR_MAGENTA),
                (6, COLOR_CYAN), (7, COLOR_GREEN), (8, COLOR_YELLOW), (9, COLOR_BLUE), (10, COLOR_MAGENTA),
                (11, COLOR_WHITE),
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
                // In a Ctrl-R search, Ctrl-G leaves it first (as Ctrl-C does in bash).
                if String(cString: dynamo_rl_display_prompt()) != String(cString: dynamo_rl_prompt()) { feed(7) }
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
            // A lone Escape (no sequence followed it): close the help, else readline's.
            if escape == [27] {
                escape = []
                if help { help = false } else { feed(27) }
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
            // Readline redisplays after every key: a pasted megabyte would redraw the line a
            // million times. The screen loop draws once the keys read so far are handled.
            {},
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
                // Ctrl-D on an empty line: quit, with the same confirmation as `quit`
                // (a second Ctrl-D confirms); readline wants its handler again after EOF.
                console.append([console.prompt + "^D"])
                console.submit.yield(Typed(text: "", prompt: console.prompt, endOfInput: true))
                return
            }
            let text = String(cString: line)
            free(line)
            LineEditor.remember(text)
            // (Enter alone at a demo's pause goes on: no echo to fill the output.)
            if !(text.trimmingCharacters(in: .whitespaces).isEmpty && console.prompt == "next> ") {
                // A paste of a megabyte is echoed by its start (the whole goes to the command).
                let echo = text.count > 300 ? "\(text.prefix(300))… (\(text.count - 300) more characters)" : text
                console.append([console.prompt + echo])
            }
            // The list of commands is longer than the output area: show it in the overlay.
            if ["help", "?"].contains(text.trimmingCharacters(in: .whitespaces).lowercased()),
                console.prompt == "dynamo> "
            {
                console.display.withLockedValue {
                    $0.help = true
                    $0.helpOffset = 0
                }
                return
            }
            let typedAt = console.prompt
            console.currentPrompt.withLockedValue { $0 = "… " }  // until the command finishes
            console.submit.yield(Typed(text: text, prompt: typedAt))
        }
        wtimeout(dynamo_stdscr(), 50)
    }

    private func handle(key: Int32) {
        if key == KEY_RESIZE {
            return
        }
        // A control byte inside a sequence, or more bytes than any key sends, is no key:
        // what came so far is dropped and the byte handled on its own (a stray `ESC [` once
        // swallowed the Enter and the line after it).
        if !escape.isEmpty, key < 0x20 || escape.count >= 8 {
            escape = key == 27 ? [27] : []
            if key == 27 { return }
        } else if !escape.isEmpty || key == 27 {
            escape.append(key)
            guard Self.isComplete(escape) else { return }
            let sequence = escape
            escape = []
            if special(String(decoding: sequence.map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self)) { return }
            if help {
                help = false  // any other key closes the overlay
                return
            }
            for byte in sequence { feed(byte) }
            return
        }
        if help {
            help = false  // any key closes the overlay
            return
        }
        if key == Int32(UInt8(ascii: "?")), dynamo_rl_end() == 0, prompt == "dynamo> " || prompt == "next> " {
            display.withLockedValue {
                $0.help = true
                $0.helpOffset = 0
            }
            return
        }
        feed(key)
    }

    /// Hands a key to readline.
    private func feed(_ key: Int32) {
        if key == 9 {  // Tab: what completion offers
            LineEditor.nodeNames = watcher.model.memberNames
            LineEditor.recentKeys = recentKeys.withLockedValue { $0 }
        }
        Self.pendingKey = key
        rl_callback_read_char()
    }

    /// Whether the bytes after ESC make a whole sequence: ESC and one key (Alt-x), ESC O
    /// and one, or ESC [ up to its final byte (the Linux console's F-keys are ESC [ [ X).
    static func isComplete(_ bytes: [Int32]) -> Bool {
        guard bytes.count >= 2 else { return false }
        switch bytes[1] {
        case 0x5b:  // [
            guard bytes.count >= 3 else { return false }
            if bytes[2] == 0x5b { return bytes.count >= 4 }
            return (0x40...0x7e).contains(bytes.last ?? 0) && bytes.count >= 3
        case 0x4f: return bytes.count >= 3  // O
        default: return true
        }
    }

    /// The console's own keys: function keys switch views, PgUp and PgDn scroll (the help
    /// with the arrows too). False: the sequence is readline's (arrows, Home, End...).
    private func special(_ sequence: String) -> Bool {
        let views: [String: DashboardView.Panel] = [
            "\u{1b}OQ": .all, "\u{1b}[12~": .all, "\u{1b}[[B": .all,
            "\u{1b}OR": .ring, "\u{1b}[13~": .ring, "\u{1b}[[C": .ring,
            "\u{1b}OS": .nodes, "\u{1b}[14~": .nodes, "\u{1b}[[D": .nodes,
            "\u{1b}[15~": .gossip, "\u{1b}[[E": .gossip,
            "\u{1b}[17~": .sync, "\u{1b}[18~": .events, "\u{1b}[19~": .output,
        ]
        if let panel = views[sequence] {
            display.withLockedValue { options in
                options.help = false
                options.view = panel
                options.outputTop = nil
                options.eventsOffset = 0
            }
            return true
        }
        let (pages, lines): (Int, Int)
        switch sequence {
        case "\u{1b}[5~": (pages, lines) = (1, 0)
        case "\u{1b}[6~": (pages, lines) = (-1, 0)
        case "\u{1b}[A", "\u{1b}OA" where help: (pages, lines) = (0, 1)
        case "\u{1b}[B", "\u{1b}OB" where help: (pages, lines) = (0, -1)
        default: return false
        }
        let model = watcher.model
        let output = output.withLockedValue { $0 }
        let (width, height) = (Int(dynamo_cols()), Int(dynamo_lines()))
        display.withLockedValue { options in
            options = DashboardView.scrolled(
                options, pages: pages, lines: lines, model: model, output: output, width: width, height: height)
        }
        return true
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
            case .owner0, .owner1, .owner2, .owner3, .owner4, .owner5: return dynamo_attr_normal()
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
        case .mark: return bold | dynamo_attr_reverse() | dynamo_color_pair(5)
        case .owner0, .owner1, .owner2, .owner3, .owner4, .owner5:
            let index = Int32(style.rawValue - Canvas.Style.owner0.rawValue)
            return dynamo_color_pair(6 + index) | (index == 5 ? bold : 0)
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
        var options = display.withLockedValue { $0 }
        options.unicode = unicode
        let canvas = DashboardView.render(
            watcher.model, output: output.withLockedValue { $0 }, width: Int(dynamo_cols()),
            height: Int(dynamo_lines()), options: options)
        for row in 0..<canvas.height {
            for run in canvas.runs(row: row) {
                attrset(attributes(run.style))
                mvaddstr(Int32(row), Int32(run.col), run.text)
            }
        }
        attrset(dynamo_attr_normal())
        drawPrompt()
    }

    /// The prompt row: readline's line, scrolled so the cursor stays visible; while Ctrl-R
    /// searches, readline's `(reverse-i-search)` prompt; at the end of a command being
    /// typed, what is left to type, dimmed (`put ` shows `KEY VALUE`).
    func drawPrompt() {
        let row = dynamo_lines() - 1
        let line = String(cString: dynamo_rl_line())
        let shownPrompt: String
        let readlinePrompt = String(cString: dynamo_rl_display_prompt())
        if readlinePrompt != String(cString: dynamo_rl_prompt()), !readlinePrompt.isEmpty {
            shownPrompt = readlinePrompt
        } else {
            shownPrompt = prompt
        }
        let cursor = String(line.utf8.prefix(Int(dynamo_rl_point()))).map(\.count) ?? line.count
        let width = max(1, Int(dynamo_cols()) - shownPrompt.count - 1)
        let start = max(0, cursor - width)
        let visible = String(line.dropFirst(start).prefix(width))
        move(row, 0)
        clrtoeol()
        attrset(dynamo_attr_bold())
        mvaddstr(row, 0, shownPrompt)
        attrset(dynamo_attr_normal())
        addstr(visible)
        if shownPrompt == prompt, prompt == "dynamo> " || prompt == "next> ", cursor == line.count,
            let hint = Command.hint(for: line)
        {
            attrset(dynamo_attr_dim())
            addstr(String(hint.prefix(max(0, width - visible.count))))
            attrset(dynamo_attr_normal())
        }
        move(row, Int32(shownPrompt.count + cursor - start))
        refresh()
    }
}

/// A line typed, with the prompt it was typed at (`resolve>`, `next>`, `… ` while a
/// command ran); `endOfInput`: Ctrl-D on an empty line.
struct Typed: Sendable {
    var text: String
    var prompt: String
    var endOfInput = false
}

/// The lines typed at the prompt, taken one at a time by whichever part of the console is
/// waiting (the command loop, or a demo's pause). Only one task reads at a time.
final class LineQueue: @unchecked Sendable {
    private var iterator: AsyncStream<Typed>.Iterator

    init(_ stream: AsyncStream<Typed>) { iterator = stream.makeAsyncIterator() }

    func next() async -> Typed? { await iterator.next() }
}
