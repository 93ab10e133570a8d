import DynamoCore
import DynamoWire
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// Serves the peer port: runs the handshake (`PeerHandshake`) within a deadline, with only
/// small frames allowed until the peer proved the cluster secret, then answers requests in
/// any order. Anything malformed closes this connection only.
final class PeerServerHandler: ChannelInboundHandler {
    typealias InboundIn = PeerMessage
    typealias OutboundOut = PeerMessage

    private let runtime: NodeRuntime
    private var handshake: PeerHandshake
    private let frameLimit: PeerFrameLimit
    private var deadline: Scheduled<Void>?

    init(runtime: NodeRuntime, frameLimit: PeerFrameLimit) {
        self.runtime = runtime
        self.frameLimit = frameLimit
        self.handshake = PeerHandshake(
            role: .listener, me: runtime.name, key: runtime.config.clusterKey, nonce: PeerHandshake.freshNonce())
    }

    func channelActive(context: ChannelHandlerContext) {
        deadline = PeerHandshake.closeUnlessEstablished(context, within: runtime.handshakeTimeout) {
            self.handshake.peer != nil
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard let peer = handshake.peer else {
            for step in handshake.receive(message) {
                switch step {
                case .send(let reply): context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
                case .established:
                    deadline?.cancel()
                    frameLimit.bytes = PeerFrameDecoder.defaultMaxFrameSize
                case .fail(let reason):
                    runtime.logger.warning(
                        "refusing peer connection from \(context.remoteAddress?.description ?? "?"): \(reason)")
                    context.close(promise: nil)
                }
            }
            return
        }
        guard case .request(let id, let request) = message else {
            runtime.logger.info("closing peer connection from \(peer): unexpected message")
            context.close(promise: nil)
            return
        }
        runtime.received(request, id: id, from: peer, on: context.channel)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        runtime.logger.info("closing peer connection from \(context.remoteAddress?.description ?? "?"): \(error)")
        context.close(promise: nil)
    }
}

/// The dialing side of an outbound peer connection: runs the handshake, then releases the
/// requests queued on the link and hands responses back to the runtime by request id.
final class PeerClientHandler: ChannelInboundHandler {
    typealias InboundIn = PeerMessage
    typealias OutboundOut = PeerMessage

    private let runtime: NodeRuntime
    private let link: PeerLink
    private var handshake: PeerHandshake
    private let frameLimit: PeerFrameLimit
    private var deadline: Scheduled<Void>?

    init(runtime: NodeRuntime, link: PeerLink, frameLimit: PeerFrameLimit) {
        self.runtime = runtime
        self.link = link
        self.frameLimit = frameLimit
        self.handshake = PeerHandshake(
            role: .dialer, me: runtime.name, key: runtime.config.clusterKey, nonce: PeerHandshake.freshNonce())
    }

    func channelActive(context: ChannelHandlerContext) {
        deadline = PeerHandshake.closeUnlessEstablished(context, within: runtime.handshakeTimeout) {
            self.handshake.peer != nil
        }
        context.writeAndFlush(wrapOutboundOut(handshake.opening()), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard handshake.peer != nil else {
            for step in handshake.receive(message) {
                switch step {
                case .send(let reply): context.write(wrapOutboundOut(reply), promise: nil)
                case .established(let name):
                    deadline?.cancel()
                    frameLimit.bytes = PeerFrameDecoder.defaultMaxFrameSize
                    link.established(as: name, on: context.channel)
                case .fail(let reason):
                    runtime.logger.warning("peer link to \(link.address) refused: \(reason)")
                    context.close(promise: nil)
                }
            }
            context.flush()
            return
        }
        guard case .response(let id, let response) = message else {
            context.close(promise: nil)
            return
        }
        runtime.complete(requestID: id, with: response)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        runtime.linkClosed(link)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        runtime.logger.debug("peer link to \(link.address) failed: \(error)")
        context.close(promise: nil)
    }
}

extension PeerHandshake {
    /// Fresh random bytes for one handshake.
    static func freshNonce() -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return (0..<Hello.nonceBytes).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    /// Closes the connection if the handshake is not done in time (a stranger holding a
    /// socket open, or a peer that never answers).
    static func closeUnlessEstablished(
        _ context: ChannelHandlerContext, within timeout: TimeAmount, _ established: @escaping () -> Bool
    ) -> Scheduled<Void> {
        let channel = context.channel
        return context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            if !established() { channel.close(promise: nil) }
        }
    }
}

/// One persistent outbound connection to a peer address, reused by every request to it.
/// Requests sent before the handshake is done wait in `queued`. Confined to the node's
/// event loop.
final class PeerLink: @unchecked Sendable {  // only touched on the node's event loop
    enum State {
        case connecting(queued: [PeerMessage])
        case connected(any Channel)
        case closed
    }

    let address: String
    var state: State = .connecting(queued: [])
    /// Requests written on this link and not yet answered: failed if the link drops.
    var inflight: Set<UInt64> = []
    var peerName: NodeName?
    /// The TCP (or TLS) connection, once open, while the handshake runs.
    var channel: (any Channel)?

    init(address: String) { self.address = address }

    func send(_ message: PeerMessage) {
        switch state {
        case .connecting(var queued):
            queued.append(message)
            state = .connecting(queued: queued)
        case .connected(let channel):
            channel.writeAndFlush(message, promise: nil)
        case .closed:
            break
        }
    }

    /// The handshake succeeded: send everything that waited for it.
    func established(as name: NodeName, on channel: any Channel) {
        guard case .connecting(let queued) = state else { return }
        peerName = name
        state = .connected(channel)
        for message in queued { channel.write(message, promise: nil) }
        channel.flush()
    }
}

extension NodeRuntime {
    /// Opens a link to `address` (connect, then `hello`, then whatever was queued).
    func openLink(to address: String) -> PeerLink {
        let link = PeerLink(address: address)
        links[address] = link
        guard let (host, port) = splitHostPort(address) else {
            loop.execute { self.linkClosed(link) }
            return link
        }
        let runtime = self
        ClientBootstrap(group: loop)
            .connectTimeout(.milliseconds(Int64(config.quorum.requestTimeoutMs)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let limit = PeerFrameLimit.forHandshake()
                    if let tls = runtime.tls {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tls.peerClient, serverHostname: NodeTLS.serverHostname(host)))
                    }
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(PeerFrameDecoder(limit: limit)),
                        MessageToByteHandler(PeerFrameEncoder()),
                        PeerClientHandler(runtime: runtime, link: link, frameLimit: limit)
                    )
                }
            }
            .connect(host: host, port: port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    guard case .connecting = link.state else {
                        channel.close(promise: nil)
                        return
                    }
                    link.channel = channel
                case .failure(let error):
                    runtime.logger.debug("cannot connect to peer \(address): \(error)")
                    runtime.linkClosed(link)
                }
            }
        return link
    }

    /// A link went away: forget it and fail everything still waiting on it.
    func linkClosed(_ link: PeerLink) {
        loop.preconditionInEventLoop()
        if case .connected(let channel) = link.state { channel.close(promise: nil) }
        link.channel?.close(promise: nil)
        link.state = .closed
        if links[link.address] === link { links[link.address] = nil }
        let failed = link.inflight
        link.inflight = []
        for id in failed.sorted() { complete(requestID: id, with: nil) }
    }
}

func splitHostPort(_ address: String) -> (String, Int)? {
    guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
        return nil
    }
    var host = address[..<colon]
    if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
    return (String(host), port)
}
