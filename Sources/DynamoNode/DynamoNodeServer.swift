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
        let engine: RocksDBEngine
        do {
            try FileManager.default.createDirectory(atPath: config.dataDir, withIntermediateDirectories: true)
            engine = try RocksDBEngine(path: config.dataDir + "/rocksdb")
        } catch let error as StorageError {
            throw NodeStartError("cannot open data dir \(config.dataDir): \(error.message)")
        } catch {
            throw NodeStartError("cannot create data dir \(config.dataDir): \(error.localizedDescription)")
        }
        let tls = try config.tls?.contexts()
        let store = try ReplicaStore(engine: engine)
        let identity = try NodeIdentity.loadOrCreate(in: store, name: config.name, tokenCount: config.tokens)
        if identity.tokens.count != config.tokens {
            logger.notice(
                "keeping the \(identity.tokens.count) tokens stored in the data dir (--tokens \(config.tokens) ignored)"
            )
        }
        // One event loop carries the node's whole protocol state; storage runs on the pool.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        let loop = group.next()
        let runtime = NodeRuntime(
            config: config, identity: identity, loop: loop, pool: pool, store: store, logger: logger, tls: tls)

        var channels: [any Channel] = []
        do {
            channels.append(try await bindPeer(runtime: runtime, group: group))
            channels.append(try await bindHTTP(runtime: runtime, group: group))
        } catch {
            for channel in channels { try? await channel.close() }
            try? await pool.shutdownGracefully()
            try? await group.shutdownGracefully()
            throw error
        }
        let server = DynamoNodeServer(runtime: runtime, group: group, pool: pool, channels: channels)
        loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(NodeRuntime.tickIntervalMs)) { _ in
            runtime.handle(.tick)
            runtime.checkLeft()
        }
        logger.info(
            "node \(config.name) serving peers on \(config.peerAddress), \(tls == nil ? "HTTP" : "HTTPS") on \(config.httpAddress), \(store.keyCount) keys, generation \(identity.generation)"
        )
        return server
    }

    private init(runtime: NodeRuntime, group: MultiThreadedEventLoopGroup, pool: NIOThreadPool, channels: [any Channel])
    {
        self.runtime = runtime
        self.group = group
        self.pool = pool
        self.channels = channels
    }

    private static func bindPeer(runtime: NodeRuntime, group: MultiThreadedEventLoopGroup) async throws -> any Channel {
        let limits = runtime.config.limits
        let gate = ConnectionGate(limit: limits.maxPeerConnections)
        return try await listen(
            group: group, host: runtime.config.listenHost, port: runtime.config.peerPort, role: "peer port", gate: gate,
            refuse: { channel in
                runtime.logger.warning("refusing a peer connection: \(limits.maxPeerConnections) are open")
                channel.close(promise: nil)
            }
        ) {
            let state = PeerChannelState.forHandshake()
            if let tls = runtime.tls { try $0.addHandler(NIOSSLServerHandler(context: tls.peerServer)) }
            try $0.addHandlers(
                BackPressureHandler(),
                IdleStateHandler(readTimeout: .milliseconds(limits.peerIdleTimeoutMs)),
                CloseOnIdle(),
                ByteToMessageHandler(PeerFrameDecoder(state: state)),
                MessageToByteHandler(PeerFrameEncoder(state: state)),
                PeerServerHandler(runtime: runtime, channelState: state))
        }
    }

    private static func bindHTTP(runtime: NodeRuntime, group: MultiThreadedEventLoopGroup) async throws -> any Channel {
        let limit = runtime.config.limits.maxHTTPConnections
        return try await listen(
            group: group, host: runtime.config.listenHost, port: runtime.config.httpPort, role: "HTTP port",
            gate: ConnectionGate(limit: limit),
            refuse: { channel in
                // A plain answer without parsing anything, then close.
                let body = #"{"error":"too many connections: this node serves at most \#(limit) at once"}"#
                let response =
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
                channel.writeAndFlush(channel.allocator.buffer(string: response)).whenComplete { _ in
                    channel.close(promise: nil)
                }
            }
        ) {
            if let tls = runtime.tls { try $0.addHandler(NIOSSLServerHandler(context: tls.http)) }
            try $0.addHandler(BackPressureHandler())
            try $0.configureHTTPServerPipeline(withErrorHandling: true)
            try $0.addHandler(HTTPConnectionHandler(runtime: runtime))
        }
    }

    /// Binds a TCP listener whose connections get the handlers `configure` adds, at most
    /// `gate.limit` at once: the others are handed to `refuse` instead.
    private static func listen(
        group: MultiThreadedEventLoopGroup, host: String, port: Int, role: String, gate: ConnectionGate,
        refuse: @escaping @Sendable (any Channel) -> Void,
        configure: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void
    ) async throws -> any Channel {
        do {
            return try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 256)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.writeBufferWaterMark, value: .init(low: 64 * 1024, high: 256 * 1024))
                .childChannelInitializer { channel in
                    guard gate.enter() else {
                        refuse(channel)
                        return channel.eventLoop.makeSucceededVoidFuture()
                    }
                    channel.closeFuture.whenComplete { _ in gate.leave() }
                    return channel.eventLoop.makeCompletedFuture { try configure(channel.pipeline.syncOperations) }
                }
                .bind(host: host, port: port).get()
        } catch {
            throw NodeStartError("cannot listen on \(host):\(port) (\(role)): \(error)")
        }
    }

    /// Calls `body` once the node has left the cluster (after `POST /admin/leave`).
    public func whenLeft(_ body: @escaping @Sendable () -> Void) {
        runtime.left.futureResult.whenSuccess { body() }
    }

    /// Stops listening, closes peer links and storage; pending requests fail.
    public func stop() async {
        for channel in channels { try? await channel.close() }
        let runtime = self.runtime
        try? await runtime.loop.submit { runtime.closeAllLinks() }.get()
        runtime.left.fail(ChannelError.ioOnClosedChannel)
        try? await pool.shutdownGracefully()
        try? await group.shutdownGracefully()
        runtime.logger.info("node \(runtime.name) stopped")
    }
}
