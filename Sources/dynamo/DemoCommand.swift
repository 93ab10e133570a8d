import ArgumentParser
import DynamoConsole
import DynamoLauncher
import DynamoTerminal
import Foundation

/// `dynamo demo [NAME]`: a narrated scenario from `Demos/` on live clusters: on the
/// dashboard when run at a terminal, as plain text otherwise (or with `--plain`).
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Run a narrated classroom demo (without NAME: list them).")

    @Argument(help: "The demo to run (see the list).") var name: String?
    @Flag(name: .customLong("no-pause"), help: "Run straight through, without waiting for Enter between steps.")
    var noPause = false
    @Flag(help: "Slow motion: also pause before every command, showing what Enter will run.") var step = false
    @Flag(help: "No dashboard: narration and output as plain text.") var plain = false
    @Option(help: "Directory for node data and logs.") var dir = ".dynamo-demo"
    @Option(name: .customLong("gossip-interval-ms")) var gossipIntervalMs = 200

    func run() async throws {
        let directory = Demo.directory()
        guard let name else {
            print("demos (dynamo demo NAME; --no-pause runs straight through):")
            for demo in Demo.list(in: directory) {
                print("  \(demo.name.padding(toLength: 18, withPad: " ", startingAt: 0)) \(demo.title)")
            }
            return
        }
        let demo: Demo
        do {
            demo = try Demo.load(name, from: directory)
        } catch {
            throw ValidationError(error.message)
        }
        let clusters = DemoClusters(directory: dir, gossipIntervalMs: gossipIntervalMs)
        defer { clusters.stop() }
        let runner = DemoRunner(pausing: !noPause, stepping: step)
        if !wantsScreen(plain: plain) {
            onInterrupt {
                clusters.stop()
                Foundation.exit(130)
            }
            do {
                try await runner.run(demo, host: PlainDemoHost(clusters: clusters))
            } catch {
                clusters.stop()
                FileHandle.standardError.write(Data("demo failed: \(error)\n".utf8))
                throw ExitCode(1)
            }
            return
        }
        let placeholder = ReplSession(cluster: clusters.proxy)
        let screen = TerminalConsole(
            session: placeholder, watcher: ClusterWatcher(cluster: clusters.proxy),
            banner: ["demo \(demo.name): \(demo.title)", "quit ends it and stops every node (Ctrl-C clears the line)"],
            nodesStoppedOnQuit: { clusters.runningCount },
            clusterStarter: { nodes, arguments in try await clusters.start(nodes: nodes, nodeArguments: arguments) })
        // As at the console: Ctrl-C clears the line (a teacher fixing a typo keeps the
        // demo); quit or Ctrl-D ends it, SIGTERM at once.
        onInterrupt({ screen.requestClearLine() }, terminate: { screen.requestQuit() })
        await screen.run { host in try await runner.run(demo, host: host) }
        say("stopping nodes...")
    }
}

/// The clusters a demo starts, one at a time, behind one proxy for the dashboard.
final class DemoClusters: @unchecked Sendable {
    let proxy = SwappableCluster(NoCluster())
    private let lock = NSLock()
    private var current: LocalCluster?
    private let directory: String
    private let gossipIntervalMs: Int
    private var count = 0

    init(directory: String, gossipIntervalMs: Int) {
        self.directory = directory
        self.gossipIntervalMs = gossipIntervalMs
    }

    /// Stops the previous cluster and starts a fresh one in a new data directory.
    func start(nodes: Int, nodeArguments: [String]) async throws -> ReplSession {
        stop()
        var options = LocalCluster.Options()
        options.gossipIntervalMs = gossipIntervalMs
        options.extraArguments = nodeArguments
        options.logDirectory = "\(directory)/logs"
        let root = lock.withLock {
            count += 1
            return "\(directory)/data-\(getpid())-\(count)"
        }
        try? FileManager.default.removeItem(atPath: root)
        let cluster = try localCluster(root: root, options: options)
        lock.withLock { current = cluster }
        try await cluster.start(count: nodes)
        proxy.replace(with: cluster)
        return ReplSession(cluster: proxy)
    }

    /// How many nodes of the current cluster run (what quitting would stop).
    var runningCount: Int {
        guard let cluster = lock.withLock({ current }) else { return 0 }
        return cluster.names.filter { cluster.isRunning($0) }.count
    }

    func stop() {
        let cluster = lock.withLock {
            defer { current = nil }
            return current
        }
        guard let cluster else { return }
        proxy.replace(with: NoCluster())
        cluster.stopAll()
        try? FileManager.default.removeItem(atPath: cluster.root)
    }
}

/// A demo as plain text: narration marked with », commands echoed with the prompt.
final class PlainDemoHost: DemoHost {
    let clusters: DemoClusters

    init(clusters: DemoClusters) { self.clusters = clusters }

    func show(_ lines: [String], narration: Bool) async {
        for line in lines { say(narration ? "» " + line : line) }
    }

    func pause(before command: String?, step: Int, of total: Int) async {
        say(command.map { "» [press Enter to run: \($0)]" } ?? "» [\(step)/\(total) press Enter to continue]", newline: false)
        _ = readLine()
    }

    func waiting(_ what: String?) async {
        if let what { say("» (waiting until \(what))") }
    }

    func startCluster(nodes: Int, nodeArguments: [String]) async throws -> ReplSession {
        try await clusters.start(nodes: nodes, nodeArguments: nodeArguments)
    }
}
