import DynamoCore
import DynamoWire
import Logging
import NIOCore
import NIOSSL

/// Runs one side of the peer handshake on a connection: sends what `PeerHandshake` asks,
/// lets big frames through once the peer proved itself, closes the connection when it
/// fails or does not finish within the deadline. Both peer handlers use it. (A class:
/// closing the connection re-enters the handler, which stops the driver.)
final class PeerHandshakeDriver {
    private var handshake: PeerHandshake
    private let channelState: PeerChannelState
    /// Frames are tagged after the handshake unless TLS already protects them.
    private let tagsFrames: Bool
    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    enum Outcome {
        case established(NodeName)
        case failed(String)
    }

    init(role: HandshakeRole, runtime: NodeRuntime, channelState: PeerChannelState, expectedPeer: NodeName? = nil) {
        var rng = SystemRandomNumberGenerator()
        let nonce = (0..<Hello.nonceBytes).map { _ in UInt8.random(in: 0...255, using: &rng) }
        handshake = PeerHandshake(
            role: role, me: runtime.name, key: runtime.config.clusterKey, nonce: nonce, expectedPeer: expectedPeer)
        self.channelState = channelState
        self.tagsFrames = runtime.tls == nil
        self.timeout = runtime.handshakeTimeout
    }

    /// The authenticated peer, once the handshake is done.
    var peer: NodeName? { handshake.peer }
    /// The name a dialer claimed in its hello (before it proved anything).
    private(set) var claimedPeer: NodeName?
    /// This side refused the peer (and said why).
    private(set) var failed = false

    /// The connection is up: arm the deadline (a stranger holding a socket open, or a peer
    /// that never answers, is closed), and the dialer opens.
    func start(_ context: ChannelHandlerContext) {
        let channel = context.channel
        let state = channelState
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            if !state.isEstablished { channel.close(promise: nil) }
        }
        if handshake.role == .dialer { context.writeAndFlush(NIOAny(handshake.opening()), promise: nil) }
    }

    func stop() { deadline?.cancel() }

    /// A message before the handshake finished; nil while it goes on.
    func receive(_ message: PeerMessage, _ context: ChannelHandlerContext) -> Outcome? {
        if case .hello(let hello) = message { claimedPeer = hello.name }
        var outcome: Outcome?
        for step in handshake.receive(message) {
            switch step {
            case .send(let reply): context.write(NIOAny(reply), promise: nil)
            case .established(let name, let session):
                deadline?.cancel()
                channelState.established(session: tagsFrames ? session : nil)
                outcome = .established(name)
            case .fail(let reason):
                failed = true
                context.close(promise: nil)
                outcome = .failed(reason)
            }
        }
        context.flush()
        return outcome
    }
}

/// Serves the peer port: runs the handshake (`PeerHandshake`) within a deadline, with only
/// small frames allowed until the peer proved the cluster secret, then answers requests in
/// any order. Anything malformed closes this connection only.
final class PeerServerHandler: ChannelInboundHandler {
    typealias InboundIn = PeerMessage

    private let runtime: NodeRuntime
    private let handshake: PeerHandshakeDriver
    private let admission: PeerAdmission
    /// Made room for a newer connection before it finished its handshake: nothing it sends
    /// is served while it closes.
    private var evicted = false

    init(runtime: NodeRuntime, channelState: PeerChannelState, admission: PeerAdmission) {
        self.runtime = runtime
        self.admission = admission
        self.handshake = PeerHandshakeDriver(role: .listener, runtime: runtime, channelState: channelState)
    }

    func channelActive(context: ChannelHandlerContext) {
        handshake.start(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshake.stop()
        if handshake.peer == nil, !handshake.failed, let name = handshake.claimedPeer {
            // The dialer left mid-handshake: typically it found this node's proof wrong
            // (a different secret on one side). Say so on this side too.
            let text = "'\(name)' left during the handshake: does it have the same cluster secret (and TLS setting)?"
            if let text = runtime.logLimiter.admit("peer left", text) { runtime.logger.warning("\(text)") }
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !evicted else { return }
        let message = unwrapInboundIn(data)
        guard let peer = handshake.peer else {
            switch handshake.receive(message, context) {
            case .established?:
                if !admission.proven(context.channel) {
                    evicted = true
                    context.close(promise: nil)
                }
            case .failed(let reason)?:
                let text = "refusing peer connection from \(context.remoteAddress?.description ?? "?"): \(reason)"
                if let text = runtime.logLimiter.admit("peer refused", text) { runtime.logger.warning("\(text)") }
            case nil:
                break
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
        let text = "closing peer connection from \(context.remoteAddress?.description ?? "?"): \(describe(peerError: error))"
        if let text = runtime.logLimiter.admit("peer error", text) { runtime.logger.warning("\(text)") }
        context.close(promise: nil)
    }
}

/// The dialing side of an outbound peer connection: runs the handshake, then releases the
/// requests queued on the link and hands responses back to the runtime by request id.
final class PeerClientHandler: ChannelInboundHandler {
    typealias InboundIn = PeerMessage

    private let runtime: NodeRuntime
    private let link: PeerLink
    private let handshake: PeerHandshakeDriver

    init(runtime: NodeRuntime, link: PeerLink, channelState: PeerChannelState, expectedPeer: NodeName?) {
        self.runtime = runtime
        self.link = link
        self.handshake = PeerHandshakeDriver(
            role: .dialer, runtime: runtime, channelState: channelState, expectedPeer: expectedPeer)
    }

    func channelActive(context: ChannelHandlerContext) {
        handshake.start(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard handshake.peer != nil else {
            switch handshake.receive(message, context) {
            case .established(let name)?: link.established(as: name, on: context.channel)
            case .failed(let reason)?:
                // The link is dialled again every few hundred ms: say so once per interval.
                let text = "peer link to \(link.address) refused: \(reason)"
                if let text = runtime.logLimiter.admit("link refused \(link.address)", text) {
                    runtime.logger.warning("\(text)")
                }
            case nil: break
            }
            return
        }
        guard case .response(let id, let response) = message else {
            context.close(promise: nil)
            return
        }
        runtime.complete(requestID: PeerRequestID(id), with: response)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshake.stop()
        runtime.linkClosed(link)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let text = "peer link to \(link.address) failed: \(describe(peerError: error))"
        if error is NIOSSLError || error is BoringSSLError {
            if let text = runtime.logLimiter.admit("link tls \(link.address)", text) { runtime.logger.warning("\(text)") }
        } else {
            runtime.logger.debug("\(text)")
        }
        context.close(promise: nil)
    }
}

/// A peer connection's error as a person can act on it (TLS errors say what to check).
func describe(peerError error: any Error) -> String {
    guard error is NIOSSLError || error is BoringSSLError else { return "\(error)" }
    return
        "TLS failed: the other side does not speak TLS, or its certificate is not signed by this node's --tls-ca or does not name the address used (\(error))"
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
    var inflight: Set<PeerRequestID> = []
    var peerName: NodeName?
    /// The TCP (or TLS) connection, once open, while the handshake runs.
    var channel: (any Channel)?

    init(address: String) { self.address = address }

    /// Queues the message, or writes it without a flush: the caller flushes the channel
    /// returned (once for everything written in this turn of the loop).
    func send(_ message: PeerMessage) -> (any Channel)? {
        switch state {
        case .connecting(var queued):
            queued.append(message)
            state = .connecting(queued: queued)
            return nil
        case .connected(let channel):
            channel.write(message, promise: nil)
            return channel
        case .closed:
            return nil
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
