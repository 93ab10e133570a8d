public import DynamoAPI
import DynamoCore
import DynamoStorage
import DynamoWire
import Foundation
public import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOConcurrencyHelpers

/// Counts a listener's open connections against a limit.
final class ConnectionGate: Sendable {
    let limit: Int
    private let open = NIOLockedValueBox(0)

    init(limit: Int) { self.limit = limit }

    /// Takes a place if one is free.
    func enter() -> Bool {
        open.withLockedValue { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func leave() { open.withLockedValue { $0 -= 1 } }
}

/// Who may hold the peer port's connections. A stranger cannot fill them: connections
/// still in their handshake have a small share of their own, and when it is full the
/// oldest of them makes room (it had its chance: a real peer finishes in milliseconds), so
/// a flood of idle sockets never locks real peers out. Proven peers have the rest.
final class PeerAdmission: Sendable {
    let limit: Int
    let handshakeLimit: Int
    private struct State {
        var proven: Set<ObjectIdentifier> = []
        /// Connections in their handshake, oldest first.
        var pending: [ObjectIdentifier: (order: UInt64, channel: any Channel)] = [:]
        var next: UInt64 = 0
        var open: Int { proven.count + pending.count }
    }
    private let state = NIOLockedValueBox(State())

    init(limit: Int) {
        self.limit = limit
        self.handshakeLimit = max(4, min(64, limit / 4))
    }

    /// A new connection: admitted (maybe after evicting the oldest unproven one), or not.
    func admit(_ channel: any Channel) -> Bool {
        let (admitted, evicted) = state.withLockedValue { state -> (Bool, (any Channel)?) in
            guard state.open < limit || !state.pending.isEmpty else { return (false, nil) }
            var evicted: (any Channel)?
            if state.pending.count >= handshakeLimit || state.open >= limit,
                let oldest = state.pending.min(by: { $0.value.order < $1.value.order })
            {
                state.pending[oldest.key] = nil
                evicted = oldest.value.channel
            }
            state.next += 1
            state.pending[ObjectIdentifier(channel)] = (state.next, channel)
            return (true, evicted)
        }
        evicted?.close(promise: nil)
        return admitted
    }

    /// The connection's peer proved the secret. False when it was evicted meanwhile (its
    /// close may take a moment, under TLS): then it must not be served.
    func proven(_ channel: any Channel) -> Bool {
        state.withLockedValue { state in
            guard state.pending.removeValue(forKey: ObjectIdentifier(channel)) != nil else { return false }
            state.proven.insert(ObjectIdentifier(channel))
            return true
        }
    }

    func closed(_ channel: any Channel) {
        state.withLockedValue { state in
            state.pending[ObjectIdentifier(channel)] = nil
            state.proven.remove(ObjectIdentifier(channel))
        }
    }

    /// Open connections: proven, and still in their handshake (for tests and status).
    var counts: (proven: Int, pending: Int) { state.withLockedValue { ($0.proven.count, $0.pending.count) } }
}

/// Says a repeated warning at most once per interval, with how often it happened since:
/// a flood of bad connections must not flood the log (or fill the disk) too.
final class LogLimiter: Sendable {
    private let intervalMs: UInt64
    private let last = NIOLockedValueBox<[String: (at: UInt64, suppressed: Int)]>([:])

    init(intervalMs: UInt64 = 10_000) { self.intervalMs = intervalMs }

    /// The text to log now for a warning of this kind, or nil to stay quiet.
    func admit(_ kind: String, _ text: String) -> String? {
        let now = NIODeadline.now().uptimeNanoseconds / 1_000_000
        return last.withLockedValue { entries in
            if let entry = entries[kind], now < entry.at + intervalMs {
                entries[kind] = (entry.at, entry.suppressed + 1)
                return nil
            }
            let suppressed = entries[kind]?.suppressed ?? 0
            entries[kind] = (now, 0)
            return suppressed > 0 ? "\(text) (and \(suppressed) more like it in the last \(intervalMs / 1000) s)" : text
        }
    }
}

/// Closes a connection when `IdleStateHandler` in front says nothing was read for too long.
final class CloseOnIdle: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

/// One storage node: opens its data dir, listens on the peer and HTTP ports, gossips,
/// and serves until `stop()`.
public final class DynamoNodeServer: Sendable {
    private let runtime: NodeRuntime
    private let group: MultiThreadedEventLoopGroup
    private let httpGroup: MultiThreadedEventLoopGroup?
    private let pool: NIOThreadPool
    private let channels: [any Channel]

    /// Starts the node; throws `NodeStartError` with a one-line reason if it cannot.
    public static func start(config: NodeConfig, logger: Logger) async throws -> DynamoNodeServer {
        if config.clusterKey == nil {
            guard config.listensOnLoopbackOnly else {
                throw NodeStartError(
                    "refusing to listen on \(config.listenHost) without a cluster secret (set DYNAMO_CLUSTER_SECRET or --cluster-secret-file)"
                )
            }
            logger.warning(
                "no cluster secret: any process on this machine can talk to this node as a peer (fine for a local cluster; set DYNAMO_CLUSTER_SECRET or --cluster-secret-file otherwise)"
            )
        }
        let opened = try OpenedStore.open(config: config, logger: logger)
        let (store, identity) = (opened.store, opened.identity)
        let tls = try config.tls?.contexts()
        if identity.tokens.count != config.tokens {
            logger.notice(
                "keeping the \(identity.tokens.count) tokens stored in the data dir (--tokens \(config.tokens) ignored)"
            )
        }
        // One event loop carries the node's whole protocol state; storage runs on the pool.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // HTTP connections on loops of their own (parsing, encoding, the connection's
        // timers), each request handed to the protocol loop and its reply handed back.
        let httpGroup = config.httpThreads > 0 ? MultiThreadedEventLoopGroup(numberOfThreads: config.httpThreads) : nil
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        let loop = group.next()
        let runtime = NodeRuntime(
            config: config, identity: identity, loop: loop, pool: pool, store: store, logger: logger, tls: tls,
            keeper: opened.keeper, storeLoss: opened.loss)

        var channels: [any Channel] = []
        do {
            channels.append(try await bindPeer(runtime: runtime, group: group))
            channels.append(try await bindHTTP(runtime: runtime, group: httpGroup ?? group))
        } catch {
            for channel in channels { try? await channel.close() }
            runtime.left.fail(error)
            try? await pool.shutdownGracefully()
            try? await runtime.renderPool.shutdownGracefully()
            try? await httpGroup?.shutdownGracefully()
            try? await group.shutdownGracefully()
            throw error
        }
        let server = DynamoNodeServer(
            runtime: runtime, group: group, httpGroup: httpGroup, pool: pool, channels: channels)
        loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(NodeRuntime.tickIntervalMs)) { _ in
            runtime.handle(.tick)
            runtime.checkLeft()
        }
        loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in runtime.refreshSeal() }
        logger.info(
            "node \(config.name) serving peers on \(config.peerAddress), \(tls == nil ? "HTTP" : "HTTPS") on \(config.httpAddress), \(store.keyCount) keys, generation \(identity.generation)"
        )
        return server
    }

    private init(
        runtime: NodeRuntime, group: MultiThreadedEventLoopGroup, httpGroup: MultiThreadedEventLoopGroup?,
        pool: NIOThreadPool, channels: [any Channel]
    ) {
        self.runtime = runtime
        self.group = group
        self.httpGroup = httpGroup
        self.pool = pool
        self.channels = channels
    }

    private static func bindPeer(runtime: NodeRuntime, group: MultiThreadedEventLoopGroup) async throws -> any Channel {
        let limits = runtime.config.limits
        let admission = PeerAdmission(limit: limits.maxPeerConnections)
        return try await listen(
            group: group, host: runtime.config.listenHost, port: runtime.config.peerPort, role: "peer port"
        ) { channel in
            guard admission.admit(channel) else {
                if let text = runtime.logLimiter.admit(
                    "peer cap", "refusing a peer connection: \(limits.maxPeerConnections) proven peers are connected")
                {
                    runtime.logger.warning("\(text)")
                }
                channel.close(promise: nil)
                return
            }
            let state = PeerChannelState.forHandshake()
            channel.closeFuture.whenComplete { _ in admission.closed(channel) }
            let pipeline = channel.pipeline.syncOperations
            if let tls = runtime.tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls.peerServer)) }
            try pipeline.addHandlers(
                BackPressureHandler(),
                IdleStateHandler(readTimeout: .milliseconds(limits.peerIdleTimeoutMs)),
                CloseOnIdle(),
                ByteToMessageHandler(PeerFrameDecoder(state: state)),
                MessageToByteHandler(PeerFrameEncoder(state: state)),
                PeerServerHandler(runtime: runtime, channelState: state, admission: admission))
        }
    }

    private static func bindHTTP(runtime: NodeRuntime, group: MultiThreadedEventLoopGroup) async throws -> any Channel {
        let limit = runtime.config.limits.maxHTTPConnections
        let gate = ConnectionGate(limit: limit)
        return try await listen(
            group: group, host: runtime.config.listenHost, port: runtime.config.httpPort, role: "HTTP port"
        ) { channel in
            guard gate.enter() else {
                // A plain answer without parsing anything, then close.
                let body = #"{"error":"too many connections: this node serves at most \#(limit) at once"}"#
                let response =
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
                channel.writeAndFlush(channel.allocator.buffer(string: response)).whenComplete { _ in
                    channel.close(promise: nil)
                }
                return
            }
            channel.closeFuture.whenComplete { _ in gate.leave() }
            let pipeline = channel.pipeline.syncOperations
            if let tls = runtime.tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls.http)) }
            try pipeline.addHandler(BackPressureHandler())
            try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
            try pipeline.addHandler(HTTPConnectionHandler(runtime: runtime))
        }
    }

    /// Binds a TCP listener; `accept` sets up each new connection (or refuses it).
    private static func listen(
        group: MultiThreadedEventLoopGroup, host: String, port: Int, role: String,
        accept: @escaping @Sendable (any Channel) throws -> Void
    ) async throws -> any Channel {
        do {
            return try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 256)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.writeBufferWaterMark, value: .init(low: 64 * 1024, high: 256 * 1024))
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try accept(channel) }
                }
                .bind(host: HostAddress.unbracketed(host), port: port).get()
        } catch {
            throw NodeStartError("cannot listen on \(host):\(port) (\(role)): \(error)")
        }
    }

    /// Calls `body` once the node has left the cluster (after `POST /admin/leave`).
    public func whenLeft(_ body: @escaping @Sendable () -> Void) {
        runtime.left.futureResult.whenSuccess { body() }
    }

    /// A graceful stop's first half: the HTTP port stops taking connections, requests
    /// arriving on open ones get 503 ("shutting down", `Connection: close`), and those
    /// already being served finish, for at most `timeout`. The node keeps serving its
    /// peers meanwhile (it is still a replica of the writes in flight).
    public func drain(timeout: Duration) async {
        runtime.drainGate.close()
        if channels.count > 1 { try? await channels[1].close() }
        let start = ContinuousClock.now
        let deadline = start + timeout
        // At least a moment, so a request already on its way on an open connection gets
        // its 503 rather than a closed connection; then until nothing is being served.
        while ContinuousClock.now < deadline,
            runtime.drainGate.inside > 0 || ContinuousClock.now < start + Self.drainGrace
        {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let left = runtime.drainGate.inside
        if left > 0 { runtime.logger.warning("stopping with \(left) client requests unanswered after \(timeout)") }
    }

    /// The shortest drain.
    static let drainGrace: Duration = .milliseconds(250)

    /// How long a graceful stop waits for the requests in flight: each is answered within
    /// the request timeout (a replica that never answers counts as failed then), twice
    /// that leaves room for a forwarded write; at least 2 s.
    public var drainTimeout: Duration {
        .milliseconds(max(2_000, 2 * Int64(clamping: runtime.config.quorum.requestTimeoutMs)))
    }

    /// Stops listening, closes peer links and storage; pending requests fail.
    public func stop() async {
        for channel in channels { try? await channel.close() }
        let runtime = self.runtime
        try? await runtime.loop.submit { runtime.closeForShutdown() }.get()
        runtime.left.fail(ChannelError.ioOnClosedChannel)
        // The HTTP loops first (closing their connections), while the protocol loop can
        // still answer what they handed it; then storage, then the protocol loop.
        try? await httpGroup?.shutdownGracefully()
        try? await pool.shutdownGracefully()
        try? await runtime.renderPool.shutdownGracefully()
        try? runtime.keeper.refreshSeal()
        try? await group.shutdownGracefully()
        // Nothing uses the store any more: every loop and pool has stopped.
        runtime.store.engine.close()
        runtime.logger.info("node \(runtime.name) stopped")
    }
}
