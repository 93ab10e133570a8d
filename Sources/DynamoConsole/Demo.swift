import DynamoAPI
import DynamoCore
import DynamoLauncher
import Foundation

/// A narrated classroom scenario from `Demos/NAME.demo`.
///
/// The file is console commands plus a few directives, one per line:
/// `title TEXT`; `cluster NODES [dynamo-node flags]` (start a fresh local cluster; a demo
/// may start several); `> TEXT` narration (`>` alone: a blank line); `pause` (wait for
/// Enter, skipped with `--no-pause`); `expect TEXT` (the previous command's output must
/// contain TEXT, so every demo checks itself); `expect-not TEXT` (it must not: `get` then
/// `expect-not siblings` checks there is one value); `wait CONDITION` (poll until it holds, at
/// most 30 s): `NODE down`, `NODE up`, `no-hints`, `repaired N` (keys repaired by
/// anti-entropy, all nodes), `keys NODE N` (NODE stores at least N keys), `in-sync`;
/// `screen TEXT` (at the next pause the 80x24 screen shows TEXT: the screen tests check
/// what the narration points at is there); `# comment`.
///
/// A step, for a room: narrate, pause, act, then say where to look, and pause again. On
/// the dashboard the step's narration stays in a pane until the next step.
public struct Demo: Sendable, Equatable {
    public enum Step: Sendable, Equatable {
        case cluster(nodes: Int, nodeArguments: [String])
        case say(String)
        case pause
        case expect(String)
        case expectNot(String)
        case wait(Condition)
        case command(String)
        /// The screen shows this at the next pause (checked by the screen tests).
        case screen(String)
    }

    public enum Condition: Sendable, Equatable {
        case status(node: String, up: Bool)
        case noHints
        case repaired(Int)
        case keys(node: String, atLeast: Int)
        /// Every replica pair found every range they share in sync (as the panel counts it).
        case inSync

        /// The node the condition is about, if any.
        var node: String? {
            switch self {
            case .status(let node, _), .keys(let node, _): node
            default: nil
            }
        }
    }

    public var name: String
    public var title: String
    public var steps: [Step]

    public static func parse(name: String, text: String) throws(CommandError) -> Demo {
        var demo = Demo(name: name, title: name, steps: [])
        // Any line ending (a file written on Windows ends lines in CRLF: one Character).
        for (number, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = String(raw).trimmed()
            func fail(_ why: String) -> CommandError { CommandError("\(name).demo line \(number + 1): \(why)") }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line == ">" {
                demo.steps.append(.say(""))
                continue
            }
            if line.hasPrefix("> ") {
                demo.steps.append(.say(String(line.dropFirst(2))))
                continue
            }
            let words = line.split(separator: " ").map(String.init)
            let rest = words.dropFirst().joined(separator: " ")
            switch words[0] {
            case "title": demo.title = rest
            case "pause": demo.steps.append(.pause)
            case "expect": demo.steps.append(.expect(rest))
            case "expect-not": demo.steps.append(.expectNot(rest))
            case "screen":
                // The text exactly as written (a table's spacing is part of it).
                let text = String(line.dropFirst("screen".count).drop { $0 == " " })
                guard !text.isEmpty else { throw fail("usage: screen TEXT") }
                demo.steps.append(.screen(text))
            case "cluster":
                guard words.count >= 2, let nodes = Int(words[1]), (1...9).contains(nodes) else {
                    throw fail("usage: cluster NODES [dynamo-node flags]")
                }
                demo.steps.append(.cluster(nodes: nodes, nodeArguments: Array(words.dropFirst(2))))
            case "wait":
                let args = Array(words.dropFirst())
                switch (args.count, args.first) {
                case (1, "no-hints"): demo.steps.append(.wait(.noHints))
                case (1, "in-sync"): demo.steps.append(.wait(.inSync))
                case (2, "repaired"):
                    guard let n = Int(args[1]) else { throw fail("usage: wait repaired N") }
                    demo.steps.append(.wait(.repaired(n)))
                case (3, "keys"):
                    guard let n = Int(args[2]) else { throw fail("usage: wait keys NODE N") }
                    demo.steps.append(.wait(.keys(node: args[1], atLeast: n)))
                case (2, _) where args[1] == "up" || args[1] == "down":
                    demo.steps.append(.wait(.status(node: args[0], up: args[1] == "up")))
                default: throw fail("unknown wait condition '\(args.joined(separator: " "))'")
                }
            default:
                if case .failure(let error) = Command.parse(line) { throw fail(error.message) }
                demo.steps.append(.command(line))
            }
        }
        return demo
    }

    /// The demos in `directory` (name and title), sorted by name.
    public static func list(in directory: String) -> [Demo] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.filter { $0.hasSuffix(".demo") }.sorted().compactMap { file in
            try? load(String(file.dropLast(5)), from: directory)
        }
    }

    public static func load(_ name: String, from directory: String) throws(CommandError) -> Demo {
        let path = "\(directory)/\(name).demo"
        guard FileManager.default.fileExists(atPath: path) else {
            throw CommandError("no demo named \(name) in \(directory); `dynamo demo` lists them")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CommandError("\(path) cannot be read as UTF-8 text")
        }
        return try parse(name: name, text: text)
    }

    /// Where the demos live: `$DYNAMO_DEMOS`, else `Demos/` in the working directory or
    /// beside the checkout the binary was built in.
    public static func directory() -> String {
        if let path = ProcessInfo.processInfo.environment["DYNAMO_DEMOS"], !path.isEmpty { return path }
        var candidates = ["Demos"]
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            // .build/debug/dynamo -> the checkout's Demos/
            var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
            for _ in 0..<4 {
                url = url.deletingLastPathComponent()
                candidates.append(url.appendingPathComponent("Demos").path)
            }
        }
        return candidates.first { FileManager.default.fileExists(atPath: $0) } ?? "Demos"
    }
}

/// What a demo needs from where it runs: a plain terminal or the dashboard.
public protocol DemoHost: AnyObject, Sendable {
    /// The demo starts: its title.
    func begin(_ title: String) async
    /// Shows narration or command output.
    func show(_ lines: [String], narration: Bool) async
    /// What the demo now polls the cluster for (nil: it holds).
    func waiting(_ what: String?) async
    /// Waits for the audience (Enter): the `step`th pause of `total`, or before `command`
    /// (`--step`) within the step.
    func pause(before command: String?, step: Int, of total: Int) async
    /// Starts a fresh local cluster (stopping the previous one) and returns its session.
    func startCluster(nodes: Int, nodeArguments: [String]) async throws -> ReplSession
    /// Runs a command line (the dashboard also marks its key on the ring).
    func run(_ line: String, in session: ReplSession) async -> [String]
}

extension DemoHost {
    public func begin(_ title: String) async {}
    public func waiting(_ what: String?) async {}
    public func run(_ line: String, in session: ReplSession) async -> [String] { await session.run(line).output }
}

/// Runs a demo's steps against live clusters, checking its expectations.
public struct DemoRunner: Sendable {
    public var pausing: Bool
    /// Slow motion: a pause before every command too (`--step`), with the command shown.
    public var stepping = false
    public var waitTimeout: Duration = .seconds(30)

    public init(pausing: Bool, stepping: Bool = false) {
        self.pausing = pausing
        self.stepping = stepping && pausing
    }

    /// Runs every step; throws at the first expectation that fails or wait that times out.
    public func run(_ demo: Demo, host: any DemoHost) async throws {
        await host.begin(demo.title)
        await host.show(["=== \(demo.title) ==="], narration: true)
        var session: ReplSession?
        var last: [String] = []
        let total = demo.steps.filter { $0 == .pause }.count
        var paused = 0
        for step in demo.steps {
            switch step {
            case .cluster(let nodes, let arguments):
                let flags = arguments.isEmpty ? "" : " (\(arguments.joined(separator: " ")))"
                await host.waiting("\(nodes) nodes\(flags) have started")
                session = try await host.startCluster(nodes: nodes, nodeArguments: arguments)
                await host.waiting(nil)
            case .say(let text):
                await host.show([text], narration: true)
            case .pause:
                paused += 1
                if pausing { await host.pause(before: nil, step: paused, of: total) }
            case .command(let line):
                guard let session else { throw CommandError("\(demo.name): a command before any `cluster` line") }
                if stepping { await host.pause(before: line, step: paused + 1, of: total) }
                // Typed as a person would: at `resolve>` the merged value alone, and any
                // other command behind the `:` escape.
                var typed = line
                if session.resolving { typed = line.hasPrefix("resolve ") ? String(line.dropFirst(8)) : ":" + line }
                await host.show([session.prompt + typed], narration: false)
                last = await host.run(typed, in: session)
                await host.show(last, narration: false)
            case .expect(let text):
                guard last.contains(where: { $0.contains(text) }) else {
                    throw CommandError("\(demo.name): expected '\(text)' in the output of the last command")
                }
            case .expectNot(let text):
                if let line = last.first(where: { $0.contains(text) }) {
                    throw CommandError("\(demo.name): did not expect '\(text)' in the output of the last command: \(line)")
                }
            case .wait(let condition):
                guard let session else { throw CommandError("\(demo.name): wait before any `cluster` line") }
                if let node = condition.node, !session.cluster.nodeNames.contains(node) {
                    throw CommandError("\(demo.name): wait for \(node), but the cluster has no node named \(node)")
                }
                await host.waiting(Self.describe(condition))
                try await waitUntil(condition, cluster: session.cluster, demo: demo.name)
                await host.waiting(nil)
            case .screen:
                break  // for the screen tests
            }
        }
        await host.show(["=== end of \(demo.name) ==="], narration: true)
    }

    static func describe(_ condition: Demo.Condition) -> String {
        switch condition {
        case .status(let node, let up): return "every node sees \(node) \(up ? "up" : "down")"
        case .noHints: return "every hint is delivered"
        case .repaired(let n): return "anti-entropy has repaired \(n) keys"
        case .keys(let node, let n): return "\(node) stores \(n) keys"
        case .inSync: return "every replica pair is in sync"
        }
    }

    private func waitUntil(_ condition: Demo.Condition, cluster: any ClusterControl, demo: String) async throws {
        try await LocalCluster.waitFor(
            "\(demo): \(Self.describe(condition))", timeout: waitTimeout, interval: .milliseconds(200)
        ) { await holds(condition, cluster: cluster) }
    }

    private func holds(_ condition: Demo.Condition, cluster: any ClusterControl) async -> Bool {
        var statuses: [String: StatusDocument] = [:]
        var unanswered = 0
        for name in cluster.nodeNames where cluster.processRunning(name) != false {
            if let status = try? await cluster.client(name).status(timeout: .seconds(1)) {
                statuses[name] = status
            } else {
                unanswered += 1
            }
        }
        switch condition {
        case .status(let node, let up):
            if up, statuses[node] == nil { return false }
            let observers = statuses.filter { $0.key != node }
            return !observers.isEmpty
                && observers.values.allSatisfy { status in
                    let seen = status.members.first { $0.name == node }?.status
                    return up ? seen == "up" : seen != "up"
                }
        case .noHints:
            // Every running node answered and holds none (a node that does not answer may
            // hold hints: silence is not "delivered").
            return unanswered == 0 && !statuses.isEmpty && statuses.values.allSatisfy { $0.hints.pending == 0 }
        case .repaired(let n):
            return statuses.values.reduce(0) { $0 + ($1.antiEntropy?.keysRepaired ?? 0) } >= n
        case .keys(let node, let n):
            return (statuses[node]?.keys ?? 0) >= n
        case .inSync:
            let model = DashboardModel(
                nodes: statuses.map { DashboardModel.Node(name: $0.key, status: $0.value, answering: true) })
            let pairs = model.replicaPairs
            return unanswered == 0 && !pairs.isEmpty && pairs.allSatisfy(\.allInSync)
        }
    }
}
