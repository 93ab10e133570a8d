public import DynamoAPI
public import DynamoClient
import DynamoCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Starts, stops, kills and restarts real `dynamo-node` processes on loopback.
///
/// Used by `dynamo cluster`, `dynamo console`, the benchmark and the integration tests, so
/// all of them exercise the real binary over real TCP. Each node is started with
/// `DYNAMO_EXIT_WITH_PARENT=1`, so if the launcher dies the nodes follow it.
public final class LocalCluster: @unchecked Sendable {
    /// One node the cluster manages.
    public struct NodeSpec: Sendable, Hashable {
        public var name: String
        public var peerPort: Int
        public var httpPort: Int
        public var dataDir: String
        public var tokens: Int

        public var httpAddress: String { "127.0.0.1:\(httpPort)" }
        public var peerAddress: String { "127.0.0.1:\(peerPort)" }
    }

    /// Options for every node of the cluster.
    public struct Options: Sendable {
        public var n = 3
        public var r = 2
        public var w = 2
        public var tokens = 8
        public var gossipIntervalMs = 200
        public var requestTimeoutMs = 1000
        public var extraArguments: [String] = []
        /// Send node logs here (nil: discard them).
        public var logDirectory: String?
        public var exitWithParent = true
        /// Give the cluster a secret (created once in `root/cluster-secret`), so its peers
        /// authenticate each other; off only for tests of a node without one.
        public var clusterSecret = true

        public init() {}
    }

    public let binary: String
    public let root: String
    public let options: Options
    public private(set) var nodes: [NodeSpec] = []
    private var processes: [String: Process] = [:]
    private var cachedSecret: String?
    private let lock = NSLock()
    public let http = HTTPClient()
    private var changeHandler: (@Sendable (LocalCluster) -> Void)?

    /// Called after every change of the nodes or their processes (a node added, launched,
    /// stopped, exited by itself or forgotten), so a state file can follow.
    public var onChange: (@Sendable (LocalCluster) -> Void)? {
        get { lock.withLock { changeHandler } }
        set { lock.withLock { changeHandler = newValue } }
    }

    private func changed() { onChange?(self) }

    /// - Parameters:
    ///   - binary: path of `dynamo-node`.
    ///   - root: directory under which each node gets its data dir.
    public init(binary: String, root: String, options: Options = Options()) {
        self.binary = binary
        self.root = root
        self.options = options
    }

    deinit { stopAll(.kill) }

    /// The `dynamo-node` next to the running executable (or test bundle).
    public static func siblingBinary(named name: String = "dynamo-node") -> String? {
        var candidates: [URL] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
        }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        for directory in candidates {
            for dir in [directory, directory.deletingLastPathComponent()] {
                let path = dir.appendingPathComponent(name).path
                if FileManager.default.isExecutableFile(atPath: path) { return path }
            }
        }
        return nil
    }

    /// Adds a node spec with fresh free ports (does not start it).
    @discardableResult
    public func addNode(name: String? = nil, tokens: Int? = nil) throws -> NodeSpec {
        let taken = Set(lock.withLock { nodes.flatMap { [$0.peerPort, $0.httpPort] } })
        let ports = try Self.freePorts(2, avoiding: taken)
        // (The first free number: a node that left may have freed one below the count.)
        let used = Set(lock.withLock { nodes.map(\.name) })
        let nodeName = name ?? ((nodes.count + 1)...).lazy.map { "n\($0)" }.first { !used.contains($0) }!
        let spec = NodeSpec(
            name: nodeName, peerPort: ports[0], httpPort: ports[1], dataDir: "\(root)/\(nodeName)",
            tokens: tokens ?? options.tokens)
        lock.withLock { nodes.append(spec) }
        changed()
        return spec
    }

    /// Starts `count` nodes seeded from the first, and waits until every node sees every other as up.
    public func start(count: Int, timeout: Duration = .seconds(30)) async throws {
        for _ in 0..<count { try addNode() }
        for node in nodes { try launch(node.name) }
        try await waitUntilConverged(timeout: timeout)
    }

    public func spec(_ name: String) -> NodeSpec? { lock.withLock { nodes.first { $0.name == name } } }

    public func client(_ name: String) -> DynamoClient {
        DynamoClient(address: spec(name)!.httpAddress, http: http, bearer: options.clusterSecret ? try? secret() : nil)
    }

    public var names: [String] { lock.withLock { nodes.map(\.name) } }

    public func isRunning(_ name: String) -> Bool { lock.withLock { processes[name]?.isRunning ?? false } }

    /// The node's process id while it runs (to watch its memory, say).
    public func processID(_ name: String) -> Int32? {
        lock.withLock { processes[name].flatMap { $0.isRunning ? $0.processIdentifier : nil } }
    }

    /// The cluster's secret file, created on first use: 32 random bytes as hex, readable by
    /// this user only. It lives beside the data dirs, so a restarted cluster keeps it.
    public func secretFile() throws -> String {
        let path = "\(root)/cluster-secret"
        try lock.withLock {
            guard !FileManager.default.fileExists(atPath: path) else { return }
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            var rng = SystemRandomNumberGenerator()
            let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
            guard
                FileManager.default.createFile(
                    atPath: path, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600])
            else { throw LauncherError("cannot write the cluster secret to \(path)") }
        }
        return path
    }

    /// The cluster secret, for clients that need it (admin requests off loopback).
    /// Read once: every client of the cluster (the dashboard polls several a second) needs it.
    public func secret() throws -> String {
        if let known = lock.withLock({ cachedSecret }) { return known }
        let secret = try String(contentsOfFile: secretFile(), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        lock.withLock { cachedSecret = secret }
        return secret
    }

    /// Starts the node's process (again, after a kill, with the same name and data dir);
    /// `extraArguments` go to this launch only (say `--repair-store`).
    public func launch(_ name: String, extraArguments: [String] = []) throws {
        guard let node = spec(name) else { throw LauncherError("unknown node \(name)") }
        let seeds = nodes.filter { $0.name != name }.prefix(2).map(\.peerAddress)
        var arguments = [
            "--name", node.name, "--host", "127.0.0.1", "--peer-port", "\(node.peerPort)", "--http-port",
            "\(node.httpPort)", "--data-dir", node.dataDir, "--tokens", "\(node.tokens)", "--n", "\(options.n)", "--r",
            "\(options.r)", "--w", "\(options.w)", "--gossip-interval-ms", "\(options.gossipIntervalMs)",
            "--request-timeout-ms", "\(options.requestTimeoutMs)",
        ]
        if !seeds.isEmpty { arguments += ["--seeds", seeds.joined(separator: ",")] }
        if options.clusterSecret { arguments += ["--cluster-secret-file", try secretFile()] }
        arguments += options.extraArguments + extraArguments
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        if options.exitWithParent { environment["DYNAMO_EXIT_WITH_PARENT"] = "1" }
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        if let logs = options.logDirectory {
            try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
            let path = "\(logs)/\(name).log"
            if !FileManager.default.fileExists(atPath: path) {
                _ = FileManager.default.createFile(atPath: path, contents: nil)
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            handle.seekToEndOfFile()
            process.standardError = handle
        } else {
            process.standardError = FileHandle.nullDevice
        }
        process.terminationHandler = { [weak self] _ in self?.changed() }
        try process.run()
        lock.withLock { processes[name] = process }
        changed()
    }

    /// The process id of a running node.
    public func pid(_ name: String) -> Int32? { lock.withLock { processes[name]?.processIdentifier } }

    /// Forgets the processes without stopping them (they keep running after we exit).
    public func detach() { lock.withLock { processes = [:] } }

    /// How to stop a node.
    public enum StopMode: Sendable {
        /// SIGTERM: the node closes its ports and storage cleanly.
        case graceful
        /// SIGKILL: a crash; only what reached the write-ahead log survives.
        case kill
    }

    /// Stops the node and waits for its process to exit; returns its exit status. A node
    /// that ignores SIGTERM for `gracePeriod` is killed (so a stop never hangs).
    @discardableResult
    public func stop(_ name: String, _ mode: StopMode = .graceful, gracePeriod: Duration = .seconds(15)) -> Int32? {
        guard let process = lock.withLock({ processes.removeValue(forKey: name) }) else { return nil }
        if process.isRunning { kill(process.processIdentifier, mode == .kill ? SIGKILL : SIGTERM) }
        let deadline = ContinuousClock.now + gracePeriod
        while process.isRunning, ContinuousClock.now < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    public func stopAll(_ mode: StopMode = .graceful) {
        for name in lock.withLock({ Array(processes.keys) }) { stop(name, mode) }
    }

    /// Forgets a node that left the cluster: its spec, its (exited) process and its data
    /// dir, which its leave emptied.
    public func forget(_ name: String) {
        guard let spec = spec(name) else { return }
        if isRunning(name) { return }
        lock.withLock {
            nodes.removeAll { $0.name == name }
            processes[name] = nil
        }
        try? FileManager.default.removeItem(atPath: spec.dataDir)
        changed()
    }

    /// Stops every node and deletes the data dirs.
    public func destroy() {
        stopAll(.kill)
        http.closeIdle()
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Polls until `condition` holds or `timeout` passes.
    public static func waitFor(
        _ what: String, timeout: Duration, interval: Duration = .milliseconds(100),
        _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        var lastError: (any Error)?
        while ContinuousClock.now < deadline {
            do {
                if try await condition() { return }
            } catch let error as LauncherError {
                throw error
            } catch {
                lastError = error
            }
            try await Task.sleep(for: interval)
        }
        throw LauncherError(
            "timed out after \(timeout) waiting for \(what)\(lastError.map { " (last error: \($0))" } ?? "")")
    }

    /// Waits until the node's process exits by itself (after a leave); returns its status.
    @discardableResult
    public func waitForExit(_ name: String, timeout: Duration = .seconds(30)) async throws -> Int32 {
        guard let process = lock.withLock({ processes[name] }) else { throw LauncherError("\(name) is not running") }
        try await Self.waitFor("\(name) to exit", timeout: timeout) { !process.isRunning }
        lock.withLock { processes[name] = nil }
        return process.terminationStatus
    }

    /// Cuts the cluster into groups that cannot talk to each other (every node drops every
    /// node outside its own group); nodes in no group are isolated from everyone.
    public func partition(_ groups: [[String]]) async throws {
        let drops = FaultsDocument.partition(groups, of: names)
        for name in names where isRunning(name) { try await client(name).setFaults(drop: drops[name]!) }
    }

    /// Removes every injected fault.
    public func heal() async throws {
        for name in names where isRunning(name) { try await client(name).setFaults(drop: []) }
    }

    /// Waits until every running node other than `name` sees it with `status`.
    public func waitUntilAllSee(_ name: String, as status: String, timeout: Duration = .seconds(20)) async throws {
        let observers = names.filter { $0 != name && isRunning($0) }
        try await Self.waitFor("every node to see \(name) as \(status)", timeout: timeout) {
            for observer in observers {
                let seen = try await client(observer).status().members.first { $0.name == name }?.status
                if seen != status { return false }
            }
            return true
        }
    }

    /// Throws if a node this cluster launched has exited, with its status and last log lines.
    public func checkAlive(_ names: [String]) throws {
        for name in names {
            guard let process = lock.withLock({ processes[name] }), !process.isRunning else { continue }
            var tail = ""
            if let logs = options.logDirectory,
                let text = try? String(contentsOfFile: "\(logs)/\(name).log", encoding: .utf8)
            {
                tail = ": " + text.split(separator: "\n").suffix(3).joined(separator: " | ")
            }
            throw LauncherError("node \(name) exited with status \(process.terminationStatus)\(tail)")
        }
    }

    /// Waits until every running node reports every running node as `up`.
    public func waitUntilConverged(timeout: Duration = .seconds(30)) async throws {
        let running = names.filter(isRunning)
        try await Self.waitFor("the ring to converge on \(running.joined(separator: ","))", timeout: timeout) {
            try checkAlive(running)
            for name in running {
                let status = try await client(name).status()
                let up = Set(status.members.filter { $0.status == "up" }.map(\.name))
                if !up.isSuperset(of: running) { return false }
            }
            return true
        }
    }

    /// Waits until the node answers `GET /admin/status`.
    public func waitUntilReady(_ name: String, timeout: Duration = .seconds(20)) async throws {
        try await Self.waitFor("\(name) to answer", timeout: timeout) {
            _ = try await client(name).status(); return true
        }
    }

    /// Free TCP ports on loopback, chosen *below* the kernel's ephemeral range.
    ///
    /// Ports from the ephemeral range (what binding port 0 returns) can be taken as the
    /// source port of some outgoing connection while a node is down, and its restart on
    /// the same port would then fail; ports below the range are never handed out that way.
    public static func freePorts(_ count: Int, avoiding taken: Set<Int> = []) throws -> [Int] {
        let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
            .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }
        let ephemeralLow = range?.first ?? 32768
        let candidates = 10_000..<max(ephemeralLow, 10_001)
        var ports: [Int] = []
        var attempts = 0
        while ports.count < count {
            attempts += 1
            guard attempts < 10_000 else { throw LauncherError("cannot find \(count) free ports") }
            let port = Int.random(in: candidates)
            if !ports.contains(port), !taken.contains(port), canBind(port) { ports.append(port) }
        }
        return ports
    }

    private static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}

/// A launcher failure, said plainly.
public struct LauncherError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
