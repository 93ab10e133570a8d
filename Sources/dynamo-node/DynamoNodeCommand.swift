import ArgumentParser
import DynamoAPI
import DynamoCore
import DynamoNode
import Foundation
import Logging
import ServiceLifecycle

/// `dynamo-node`: one storage node (flags are a contract, see SPEC section 5).
@main
struct DynamoNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dynamo-node",
        abstract: "Run one Dynamo storage node.",
        discussion: "Ready when GET /admin/status answers 200. On SIGTERM or SIGINT it drains (requests in flight finish, new ones get 503), stops and exits 0.")

    @Option(help: "Stable identity of this node.") var name: String
    @Option(help: "Address to listen on and advertise (default 127.0.0.1; see --listen and --advertise).")
    var host: String?
    @Option(help: "Address to bind both ports on (default: --host). Off loopback it needs a cluster secret.")
    var listen: String?
    @Option(help: "Address peers and clients are told to use (default: --host).") var advertise: String?
    @Option(
        name: .customLong("cluster-secret-file"),
        help:
            "File holding the cluster secret (at least 16 bytes) that peers must prove. Otherwise DYNAMO_CLUSTER_SECRET is read; without either, the node runs on loopback only."
    )
    var clusterSecretFile: String?
    @Option(name: .customLong("peer-port"), help: "Port of the node-to-node protocol.") var peerPort: Int
    @Option(name: .customLong("http-port"), help: "Port of the client and admin HTTP API.") var httpPort: Int
    @Option(name: .customLong("data-dir"), help: "Directory for data, hints and identity.") var dataDir: String
    @Option(help: "Comma-separated HOST:PEERPORT of seed nodes.") var seeds: String = ""
    @Option(help: "Virtual nodes (tokens) this node owns.") var tokens = 8
    @Option(help: "Replicas per key.") var n = 3
    @Option(help: "Default read quorum.") var r = 2
    @Option(help: "Default write quorum.") var w = 2
    @Option(name: .customLong("gossip-interval-ms")) var gossipIntervalMs: UInt64 = 1000
    @Option(name: .customLong("hint-interval-ms")) var hintIntervalMs: UInt64 = 1000
    @Option(name: .customLong("anti-entropy-interval-ms")) var antiEntropyIntervalMs: UInt64 = 10_000
    @Option(name: .customLong("request-timeout-ms")) var requestTimeoutMs: UInt64 = 1000
    @Option(
        name: .customLong("tombstone-grace-ms"),
        help: "Reap a tombstone only once it is this old and every home replica has it.")
    var tombstoneGraceMs: UInt64 = 600_000
    @Option(
        name: .customLong("clock-offset-ms"),
        help: "Shift this node's wall clock by this many ms (negative: behind), to show what skew does to --policy lww.")
    var clockOffsetMs: Int64 = 0
    @Option(name: .customLong("max-key-bytes"), help: "Largest key accepted.") var maxKeyBytes = 1024
    @Flag(
        name: .customLong("repair-store"),
        help:
            "Repair a damaged store before opening it (RocksDB repair keeps what reads back), then refill the node's ranges from its replicas."
    ) var repairStore = false
    @Option(name: .customLong("max-value-bytes"), help: "Largest value accepted.") var maxValueBytes = 1 << 20
    @Option(
        name: .customLong("max-siblings"),
        help: "Refuse (409) a write that would leave a key with more versions than this (at most 1000).")
    var maxSiblings = ObjectLimits.defaultMaxSiblings
    @Option(
        name: .customLong("warn-siblings"),
        help: "Report keys with this many versions (log, status, dashboard). Default: 25, or --max-siblings if lower.")
    var warnSiblings: Int?
    @Option(
        name: .customLong("max-object-bytes"),
        help: "Refuse (409) a write that would leave a key's object larger than this (at most 16646144: a peer frame).")
    var maxObjectBytes = ObjectLimits.defaultMaxObjectBytes
    @Option(
        name: .customLong("warn-object-bytes"),
        help: "Report keys whose object is this large. Default: 5 MiB, or --max-object-bytes if lower.")
    var warnObjectBytes: Int?
    @Option(help: "Conflict policy for the cluster: siblings or lww.") var policy: String = "siblings"
    @Option(
        name: .customLong("http-threads"),
        help: "Event loops parsing HTTP besides the protocol loop (default: cores - 1, 1 to 4; 0: none).")
    var httpThreads: Int?
    @Option(name: .customLong("clock-max-entries"), help: "Prune causal clocks beyond this many entries.")
    var clockMaxEntries = 10
    @Option(name: .customLong("durable-writes"), help: "Which replica writes are fsynced: all, coordinator, none.")
    var durableWrites = "coordinator"
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error.") var logLevel = "info"
    @Option(
        name: .customLong("log-format"),
        help: "text, or json: one JSON object a line with the node's name and, on request paths, the request id.")
    var logFormat = "text"
    @Option(name: .customLong("tls-cert"), help: "PEM certificate (chain) of this node: TLS on both ports.")
    var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "PEM private key of --tls-cert.") var tlsKey: String?
    @Option(name: .customLong("tls-ca"), help: "PEM CA that signed every node's certificate (peers must present one).")
    var tlsCA: String?
    @Option(name: .customLong("max-connections"), help: "Open HTTP connections at most; more get 503.")
    var maxConnections = 1024
    @Option(name: .customLong("idle-timeout-ms"), help: "Close an HTTP connection idle (or not reading) this long.")
    var idleTimeoutMs: Int64 = 30_000
    @Option(
        name: .customLong("request-read-timeout-ms"), help: "A request must arrive whole this soon after its head (else 408).")
    var requestReadTimeoutMs: Int64 = 10_000
    @Option(
        name: .customLong("sloppy-quorum"),
        help:
            "on: the first N healthy nodes serve a key, fallbacks keeping hints (Dynamo); off: only its N home nodes count (a strict quorum, no hinted handoff)."
    )
    var sloppyQuorum = "on"

    func validate() throws {
        // (A name goes into headers, logs and request ids as it is.)
        guard ForwardedPut.isValid(requestId: name) else {
            throw ValidationError("--name must be 1 to 64 letters, digits and . _ : -")
        }
        guard (1...65535).contains(peerPort), (1...65535).contains(httpPort) else {
            throw ValidationError("ports must be between 1 and 65535")
        }
        guard peerPort != httpPort else { throw ValidationError("--peer-port and --http-port must differ") }
        guard (1...1024).contains(tokens) else { throw ValidationError("--tokens must be between 1 and 1024") }
        guard n >= 1, (1...n).contains(r), (1...n).contains(w) else {
            throw ValidationError("need 1 <= R <= N and 1 <= W <= N (got N=\(n) R=\(r) W=\(w))")
        }
        if let listen, HostAddress.isWildcard(listen), advertise == nil, host == nil {
            throw ValidationError(
                "--listen \(listen) binds every address: set --advertise to the one peers and clients reach this node at")
        }
        guard !advertisedHost.isEmpty, !advertisedHost.contains(where: { $0.isWhitespace || $0 == "/" }) else {
            throw ValidationError("'\(advertisedHost)' is not an address to advertise")
        }
        guard !HostAddress.isWildcard(advertisedHost) else {
            throw ValidationError(
                "\(advertisedHost) cannot be advertised: set --advertise to the address peers and clients reach this node at")
        }
        guard (1...KeyLimits.absoluteMaxKeyBytes).contains(maxKeyBytes) else {
            throw ValidationError("--max-key-bytes must be between 1 and \(KeyLimits.absoluteMaxKeyBytes)")
        }
        guard maxValueBytes >= 0, maxValueBytes <= 8 << 20 else {
            throw ValidationError("--max-value-bytes must be between 0 and 8388608 (peer frames carry 16 MiB)")
        }
        if let problem = objectLimits.problem(maxValueBytes: maxValueBytes) { throw ValidationError(problem) }
        guard ConflictPolicy(rawValue: policy) != nil else { throw ValidationError("--policy must be siblings or lww") }
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format must be text or json") }
        guard Durability(rawValue: durableWrites) != nil else {
            throw ValidationError("--durable-writes must be all, coordinator or none")
        }
        guard ["on", "off"].contains(sloppyQuorum) else { throw ValidationError("--sloppy-quorum must be on or off") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        for seed in seedList where seed.split(separator: ":").count != 2 || Int(seed.split(separator: ":")[1]) == nil {
            throw ValidationError("seed '\(seed)' is not HOST:PORT")
        }
        guard gossipIntervalMs > 0, requestTimeoutMs > 0 else { throw ValidationError("intervals must be positive") }
        let tlsFiles = [tlsCert, tlsKey, tlsCA].compactMap { $0 }
        guard tlsFiles.isEmpty || tlsFiles.count == 3 else {
            throw ValidationError("TLS needs all of --tls-cert, --tls-key and --tls-ca")
        }
        guard maxConnections >= 1, idleTimeoutMs > 0, requestReadTimeoutMs > 0 else {
            throw ValidationError("--max-connections, --idle-timeout-ms and --request-read-timeout-ms must be positive")
        }
    }

    /// The secret from `--cluster-secret-file`, else `DYNAMO_CLUSTER_SECRET`; never a flag's
    /// value (it would show in `ps`).
    static func clusterKey(file: String?) throws -> ClusterKey? {
        let text: String
        if let file {
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: file))
            } catch {
                throw NodeStartError("cannot read the cluster secret file \(file): \(error.localizedDescription)")
            }
            // Text, so the same secret can go in DYNAMO_CLUSTER_SECRET and in a bearer token.
            guard let decoded = String(data: data, encoding: .utf8) else {
                throw NodeStartError(
                    "the cluster secret file \(file) is not UTF-8 text (make one with: openssl rand -hex 32 > FILE)")
            }
            text = decoded
        } else if let value = ProcessInfo.processInfo.environment["DYNAMO_CLUSTER_SECRET"], !value.isEmpty {
            text = value
        } else {
            return nil
        }
        do {
            return try ClusterKey(text: text)
        } catch {
            throw NodeStartError("\(error)")
        }
    }

    /// Raises the open-file limit to what the system allows, and keeps the connection caps
    /// below it, so a flood of connections gets a clear refusal instead of `EMFILE`.
    static func limits(_ wanted: ConnectionLimits, logger: Logger) -> ConnectionLimits {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return wanted }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        // Room for RocksDB's files, peer links and the listeners.
        let available = Int(min(limit.rlim_cur, 1 << 20)) - 256
        var limits = wanted
        if limits.maxHTTPConnections + limits.maxPeerConnections > available {
            limits.maxPeerConnections = max(8, min(limits.maxPeerConnections, available / 4))
            limits.maxHTTPConnections = max(8, available - limits.maxPeerConnections)
            logger.notice(
                "open-file limit \(limit.rlim_cur): at most \(limits.maxHTTPConnections) HTTP and \(limits.maxPeerConnections) peer connections")
        }
        return limits
    }

    var objectLimits: ObjectLimits {
        .configured(
            maxSiblings: maxSiblings, warnSiblings: warnSiblings, maxObjectBytes: maxObjectBytes,
            warnObjectBytes: warnObjectBytes)
    }

    /// `--host`, or loopback.
    var hostAddress: String { host ?? "127.0.0.1" }

    /// `--advertise`, else a specific `--listen` address, else `--host` (or loopback when
    /// `--listen` names no particular address: that is refused by `validate`).
    var advertisedHost: String {
        if let advertise { return advertise }
        if let listen, !HostAddress.isWildcard(listen) { return listen }
        return hostAddress
    }

    var seedList: [String] {
        seeds.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel)!
        let nodeName = name
        let json = logFormat == "json"
        LoggingSystem.bootstrap { label in
            if json {
                var handler = JSONLogHandler(label: label, node: nodeName)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "dynamo-node.\(nodeName)")
        let clusterKey: ClusterKey?
        do {
            clusterKey = try Self.clusterKey(file: clusterSecretFile)
        } catch {
            NodeService.fail("\(error)", logger: logger, json: json)
        }
        var config = NodeConfig(
            name: name, host: hostAddress, peerPort: peerPort, httpPort: httpPort, dataDir: dataDir, seeds: seedList,
            tokens: tokens,
            quorum: QuorumConfig(
                n: n, r: r, w: w, requestTimeoutMs: requestTimeoutMs, readRepairWindowMs: requestTimeoutMs,
                tombstoneGraceMs: tombstoneGraceMs),
            clocks: ClockPolicy(maxEntries: clockMaxEntries, conflicts: ConflictPolicy(rawValue: policy)!),
            gossipIntervalMs: gossipIntervalMs, hintIntervalMs: hintIntervalMs,
            antiEntropyIntervalMs: antiEntropyIntervalMs, maxKeyBytes: maxKeyBytes, maxValueBytes: maxValueBytes,
            durability: Durability(rawValue: durableWrites)!, sloppyQuorum: sloppyQuorum == "on", listenHost: listen,
            advertiseHost: advertisedHost,
            clusterKey: clusterKey,
            limits: Self.limits(
                ConnectionLimits(
                    maxHTTPConnections: maxConnections, idleTimeoutMs: idleTimeoutMs,
                    requestReadTimeoutMs: requestReadTimeoutMs), logger: logger),
            tls: tlsCert.map { NodeTLS(certificateFile: $0, privateKeyFile: tlsKey!, caFile: tlsCA!) },
            repairStore: repairStore, objectLimits: objectLimits)
        config.clockOffsetMs = clockOffsetMs
        if let httpThreads { config.httpThreads = httpThreads }

        let exitWithParent = ProcessInfo.processInfo.environment["DYNAMO_EXIT_WITH_PARENT"] == "1"
        // SIGTERM or SIGINT: drain, stop, exit 0 (swift-service-lifecycle, as hummingbird).
        // The group's signal handlers come first, so a signal during start-up is a
        // graceful stop too; the node leaving, or its parent gone, ends it the same way.
        let service = NodeService(config: config, logger: logger, exitWithParent: exitWithParent, json: json)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            NodeService.fail("\(error)", logger: logger, json: json)
        }
    }
}

/// The node as a service of a `ServiceGroup`: it runs until a graceful shutdown is asked
/// (a signal), a requested leave has handed everything off, or (when asked) the parent
/// process goes away, so a launcher that crashes never leaves orphan nodes behind. Then it
/// drains (the requests in flight finish, new ones get 503) and stops.
struct NodeService: Service, CustomStringConvertible {
    let config: NodeConfig
    let logger: Logger
    let exitWithParent: Bool
    let json: Bool

    var description: String { "dynamo-node" }

    /// A start that failed: one line on stderr (a log line with `--log-format json`), exit 1.
    static func fail(_ reason: String, logger: Logger, json: Bool) -> Never {
        if json {
            logger.critical("\(reason)")
        } else {
            FileHandle.standardError.write(Data("dynamo-node: \(reason)\n".utf8))
        }
        Foundation.exit(1)
    }

    func run() async throws {
        let server: DynamoNodeServer
        do {
            server = try await DynamoNodeServer.start(config: config, logger: logger)
        } catch {
            Self.fail("\(error)", logger: logger, json: json)
        }
        let (reasons, reason) = AsyncStream.makeStream(of: Void.self)
        server.whenLeft { reason.yield() }
        let shutdown = Task {
            try? await gracefulShutdown()
            reason.yield()
        }
        let parentWatch: Task<Void, Never>? =
            exitWithParent
            ? Task {
                let parent = getppid()
                while !Task.isCancelled, getppid() == parent { try? await Task.sleep(for: .milliseconds(500)) }
                reason.yield()
            } : nil
        for await _ in reasons { break }
        shutdown.cancel()
        parentWatch?.cancel()
        await server.drain(timeout: server.drainTimeout)
        await server.stop()
    }
}
