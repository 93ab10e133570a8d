import ArgumentParser
import DynamoClient
import DynamoConsole
import DynamoLauncher
import DynamoTerminal
import Foundation

/// Where other `dynamo` commands look for a cluster started here (`ClusterStateFile`).
enum ClusterState {
    static let defaultDirectory = ClusterStateFile.defaultDirectory

    static func path(_ directory: String) -> String { ClusterStateFile.path(directory) }

    /// Keeps the state file of `directory` current from now on, for a cluster managed by
    /// `owner` (nil: nodes that run on by themselves).
    static func follow(_ cluster: LocalCluster, owner: Int32?, in directory: String) throws {
        try ClusterStateFile.save(cluster, owner: owner, to: directory)
        cluster.onChange = { try? ClusterStateFile.save($0, owner: owner, to: directory) }
    }

    /// Refuses to start a second cluster where one runs, in one line (a usage error would
    /// print the whole usage after it).
    static func ensureFree(_ directory: String) throws {
        guard let busy = ClusterStateFile.busy(directory) else { return }
        try fail(busy)
    }

    /// The cluster started in `directory`, or a one-line error.
    static func load(_ directory: String) throws -> ClusterStateFile {
        switch ClusterStateFile.find(directory) {
        case .state(let state): return state
        case .none: try fail("no cluster state in \(directory) (start one with `dynamo cluster start`)")
        case .unreadable(let why): try fail(why)
        }
    }

    static func fail(_ message: String) throws -> Never {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        throw ExitCode.failure
    }

    /// The first node of a cluster started here, else the console's usual first port.
    static func defaultNodeAddress() -> String {
        ClusterStateFile.load(defaultDirectory)?.nodes.first?.httpAddress ?? "127.0.0.1:8001"
    }
}

struct ClusterOptions: ParsableArguments {
    @Option(help: "Number of nodes.") var nodes = 5
    @Option(help: "Replicas per key.") var n = 3
    @Option(help: "Read quorum.") var r = 2
    @Option(help: "Write quorum.") var w = 2
    @Option(help: "Tokens (virtual nodes) per node.") var tokens = 8
    @Option(name: .customLong("gossip-interval-ms")) var gossipIntervalMs = 500
    @Option(help: "Directory for node data and logs.") var dir = ClusterState.defaultDirectory

    var launcherOptions: LocalCluster.Options {
        var options = LocalCluster.Options()
        options.n = n
        options.r = r
        options.w = w
        options.tokens = tokens
        options.gossipIntervalMs = gossipIntervalMs
        options.logDirectory = "\(dir)/logs"
        return options
    }

    func makeCluster(exitWithParent: Bool) throws -> LocalCluster {
        var options = launcherOptions
        options.exitWithParent = exitWithParent
        return try localCluster(root: "\(dir)/data", options: options)
    }
}

/// A launcher for `dynamo-node` processes, found next to this executable.
func localCluster(root: String, options: LocalCluster.Options) throws -> LocalCluster {
    guard let binary = LocalCluster.siblingBinary() else {
        throw ValidationError("cannot find dynamo-node next to this executable; run `swift build` first")
    }
    return LocalCluster(binary: binary, root: root, options: options)
}

/// Whether to open the dashboard: not with `--plain`, and only on a real terminal.
func wantsScreen(plain: Bool) -> Bool {
    !plain && isatty(1) == 1 && isatty(0) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
}

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Start, stop or inspect a local cluster without the console.",
        subcommands: [Start.self, Stop.self, Status.self])

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start nodes in the background and wait for the ring.")
        @OptionGroup var options: ClusterOptions

        func run() async throws {
            try ClusterState.ensureFree(options.dir)
            let cluster = try options.makeCluster(exitWithParent: false)
            try await cluster.start(count: options.nodes)
            let state = ClusterStateFile(cluster, owner: nil)
            try state.save(to: options.dir)
            cluster.detach()
            for node in state.nodes {
                print("\(node.name)  http \(node.httpAddress)  peer \(node.peerAddress)  pid \(node.pid)")
            }
            print("ring converged; try: dynamo put cart:ann book --node \(state.nodes[0].httpAddress)")
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the nodes `cluster start` launched.")
        @Option(help: "Directory the cluster was started with.") var dir = ClusterState.defaultDirectory

        func run() async throws {
            let state = try ClusterState.load(dir)
            // Only processes that are still this cluster's nodes (a pid may be reused).
            let live = state.liveNodes
            for node in live where kill(node.pid, SIGTERM) == 0 {
                print("stopping \(node.name) (pid \(node.pid))")
            }
            try await LocalCluster.waitFor("nodes to exit", timeout: .seconds(15)) {
                live.allSatisfy { !ClusterStateFile.isLive($0.pid, running: "dynamo-node", naming: $0.dataDir) }
            }
            try? FileManager.default.removeItem(atPath: ClusterState.path(dir))
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show each node's view of the cluster.")
        @Option(help: "Directory the cluster was started with.") var dir = ClusterState.defaultDirectory

        func run() async throws {
            let state = try ClusterState.load(dir)
            for node in state.nodes {
                do {
                    let status = try await DynamoClient(address: node.httpAddress).status()
                    let view = status.members.map { "\($0.name):\($0.status)" }.joined(separator: " ")
                    print("\(node.name)  \(status.keys) keys  sees \(view)")
                } catch {
                    print("\(node.name)  not answering at \(node.httpAddress)\(node.pid == 0 ? " (stopped)" : "")")
                }
            }
        }
    }
}

/// `dynamo console`: starts a local cluster (or attaches to one) and opens the live
/// dashboard with a prompt. Quitting, Ctrl-C or SIGTERM stops every node it started; if
/// the console crashes, the nodes notice and exit too. Without a terminal (or with
/// `--plain`) it is the plain prompt of `dynamo repl`.
struct Console: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a local cluster and explore it: live dashboard and a prompt (help lists the commands).")
    @OptionGroup var options: ClusterOptions
    @Option(help: "HTTP address (HOST:PORT) of a node of a running cluster to attach to instead.") var attach: String?
    @Flag(help: "No dashboard: a plain prompt (also when standard output is not a terminal).") var plain = false

    func run() async throws {
        let control: any ClusterControl
        var started: LocalCluster?
        var banner: [String] = []
        if let attach {
            control = try await AttachedCluster(address: attach)
            banner.append("attached to \(attach): \(control.nodeNames.joined(separator: " "))")
        } else {
            try ClusterState.ensureFree(options.dir)
            let cluster = try options.makeCluster(exitWithParent: true)
            say("starting \(options.nodes) dynamo-node processes (N=\(options.n) R=\(options.r) W=\(options.w))...")
            do {
                try await cluster.start(count: options.nodes)
            } catch {
                cluster.stopAll(.kill)
                throw error
            }
            try ClusterState.follow(cluster, owner: getpid(), in: options.dir)
            started = cluster
            control = cluster
            for name in cluster.names {
                let spec = cluster.spec(name)!
                banner.append("  \(name)  http://\(spec.httpAddress)  data \(spec.dataDir)")
            }
        }
        banner.append(
            attach == nil
                ? "ring converged. Type help for the commands (? for the overlay), quit to stop every node."
                : "Type help for the commands (? for the overlay); quit leaves the cluster running.")
        let statePath = ClusterState.path(options.dir)
        let ours = started
        let shutdown: @Sendable () -> Void = {
            ours?.onChange = nil
            ours?.stopAll()
            if ours != nil { try? FileManager.default.removeItem(atPath: statePath) }
        }
        let session = ReplSession(cluster: control)
        if !wantsScreen(plain: plain) {
            onInterrupt {
                say("\nstopping nodes...")
                shutdown()
                Foundation.exit(0)
            }
            for line in banner { say(line) }
            await runPrompt(session, script: nil, interactive: isatty(0) == 1)
        } else {
            let owned = started
            let screen = TerminalConsole(
                session: session, watcher: ClusterWatcher(cluster: control), banner: banner,
                nodesStoppedOnQuit: { owned.map { cluster in cluster.names.filter { cluster.isRunning($0) }.count } ?? 0 })
            // Ctrl-C clears the line being typed, as in a shell; SIGTERM still closes.
            onInterrupt({ screen.requestClearLine() }, terminate: { screen.requestQuit() })
            await screen.run()
        }
        if started != nil { say("stopping nodes...") }
        shutdown()
    }
}

/// Writes to standard output at once (no stdio buffering: the prompt must appear).
func say(_ text: String, newline: Bool = true) {
    FileHandle.standardOutput.write(Data((newline ? text + "\n" : text).utf8))
}

/// Runs `body` on SIGINT and `terminate` (by default `body` too) on SIGTERM, instead of
/// dying on the spot.
func onInterrupt(_ body: @escaping @Sendable () -> Void, terminate: (@Sendable () -> Void)? = nil) {
    let queue = DispatchQueue(label: "dynamo.interrupt")
    for (sig, handler) in [(SIGINT, body), (SIGTERM, terminate ?? body)] {
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
        source.setEventHandler(handler: handler)
        source.resume()
        SignalSources.retained.append(source)
    }
}

/// Keeps signal sources alive for the life of the process.
enum SignalSources {
    nonisolated(unsafe) static var retained: [any DispatchSourceSignal] = []
}
