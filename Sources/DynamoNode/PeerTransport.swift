import DynamoCore
import DynamoWire
import Logging
import NIOCore
import NIOPosix

/// Serves the peer port: expects a `hello` first, then answers requests in any order.
/// Anything malformed closes this connection only.
final class PeerServerHandler: ChannelInboundHandler {
    typealias InboundIn = PeerMessage
    typealias OutboundOut = PeerMessage

    private let runtime: NodeRuntime
    private var peer: NodeName?

    init(runtime: NodeRuntime) { self.runtime = runtime }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        switch (peer, message) {
        case (nil, .hello(let hello)):
            guard hello.protocolVersion == Hello.currentVersion else {
                runtime.logger.warning("peer \(hello.name) speaks protocol \(hello.protocolVersion); closing")
                context.close(promise: nil)
                return
            }
            peer = hello.name
            context.writeAndFlush(wrapOutboundOut(.hello(Hello(name: runtime.name))), promise: nil)
        case (let name?, .request(let id, let request)):
            runtime.received(request, id: id, from: name, on: context.channel)
        default:
            runtime.logger.info(
                "closing peer connection from \(context.remoteAddress?.description ?? "?"): unexpected message")
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        runtime.logger.info("closing peer connection from \(context.remoteAddress?.description ?? "?"): \(error)")
        context.close(promise: nil)
    }
}

/// The client side of an outbound peer connection: checks the peer's `hello` and hands
/// responses back to the runtime by request id.
final class PeerClientHandler: ChannelInboundHandler {
    typealias InboundIn = PeerMessage

    private let runtime: NodeRuntime
    private let link: PeerLink
    private var greeted = false

    init(runtime: NodeRuntime, link: PeerLink) {
        self.runtime = runtime
        self.link = link
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .hello(let hello) where !greeted:
            greeted = true
            link.peerName = hello.name
        case .response(let id, let response) where greeted:
            runtime.complete(requestID: id, with: response)
        default:
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        runtime.linkClosed(link)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        runtime.logger.debug("peer link to \(link.address) failed: \(error)")
        context.close(promise: nil)
    }
}

/// One persistent outbound connection to a peer address, reused by every request to it.
/// Confined to the node's event loop.
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
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(PeerFrameDecoder()),
                        MessageToByteHandler(PeerFrameEncoder()),
                        PeerClientHandler(runtime: runtime, link: link)
                    )
                }
            }
            .connect(host: host, port: port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    guard case .connecting(let queued) = link.state else {
                        channel.close(promise: nil)
                        return
                    }
                    link.state = .connected(channel)
                    channel.write(PeerMessage.hello(Hello(name: runtime.name)), promise: nil)
                    for message in queued { channel.write(message, promise: nil) }
                    channel.flush()
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
    return (String(address[..<colon]), port)
}
