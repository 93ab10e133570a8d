import DynamoAPI
import DynamoCore
import NIOCore
import NIOHTTP1

/// One client connection of the HTTP API: reads whole requests (bodies bounded by the
/// value limit), hands them to the runtime and writes its replies, in order.
///
/// Every resource a client can hold is bounded:
/// - a connection waiting for its next request is closed after the idle timeout, and a
///   request must arrive whole within the read timeout of its head (slowloris, or a
///   Content-Length larger than the body, get 408 and the connection closed);
/// - a client that does not read its responses gets no further request served, and is
///   closed if it stays that way past the idle timeout (`BackPressureHandler` in front
///   stops reading from it meanwhile), so unread responses never pile up;
/// - an oversize body is refused with 413 as soon as its length is known.
final class HTTPConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// Between requests (the idle deadline runs).
        case idle
        /// Reading a request's body (the read deadline runs).
        case reading(HTTPRequestHead, body: [UInt8])
        /// A complete request waits for the client to read earlier responses.
        case waitingForWritable(HTTPRequestData, HTTPRequestHead)
        /// The runtime is working on a request.
        case serving
        /// Refused (413, 408): nothing more is read; the connection closes after the reply.
        case closing
    }

    private let runtime: NodeRuntime
    private var state = State.idle
    /// The current deadline and what happens when it passes (nil: none runs).
    private var deadline: (at: NIODeadline, expired: (HTTPConnectionHandler, ChannelHandlerContext) -> Void)?
    /// The one timer of the connection, and when it fires: at or before the deadline. A
    /// timer per request was a good share of a request's cost; this one moves only when
    /// a deadline comes sooner than it, or when it fires early (then to the deadline).
    private var timer: (task: Scheduled<Void>, at: NIODeadline)?
    private var stalled: Scheduled<Void>?

    init(runtime: NodeRuntime) { self.runtime = runtime }

    private var bodyLimit: Int { runtime.config.maxValueBytes }
    private var limits: ConnectionLimits { runtime.config.limits }

    func channelActive(context: ChannelHandlerContext) {
        armIdleDeadline(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        release(held)
        deadline = nil
        timer?.task.cancel()
        timer = nil
        stalled?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), .idle):
            state = .reading(head, body: [])
            // A request counts for a graceful stop from its head on (one still arriving
            // is waited for too); one that comes while the node drains gets 503.
            guard runtime.drainGate.enter() else {
                refuse(
                    .json(.serviceUnavailable, ErrorDocument(error: "node \(runtime.name) is shutting down; ask another node")),
                    as: .unavailable, context: context)
                return
            }
            held += 1
            arm(context, in: limits.requestReadTimeout) { handler, context in
                handler.refuse(
                    .json(.requestTimeout, ErrorDocument(error: "the request did not arrive whole in time")),
                    context: context)
            }
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > bodyLimit {
                refuse(APIError.valueTooLarge(length, limit: bodyLimit).reply, context: context)
            }
        case (.body(var buffer), .reading(let head, var body)):
            guard body.count + buffer.readableBytes <= bodyLimit else {
                refuse(APIError.valueTooLarge(body.count + buffer.readableBytes, limit: bodyLimit).reply, context: context)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
            state = .reading(head, body: body)
        case (.end, .reading(let head, let body)):
            deadline = nil
            let request = HTTPRequestData(method: head.method, uri: head.uri, headers: head.headers, body: body)
            state = .waitingForWritable(request, head)
            // On the next turn of the loop, not here: an answer that is ready at once
            // (a 404, say) ends its reply, which makes the pipelining handler deliver the next
            // buffered request inside that write, and so on: thousands of pipelined requests
            // would recurse until the stack runs out.
            context.eventLoop.assumeIsolated().execute {
                guard case .waitingForWritable = self.state, context.channel.isWritable else { return }
                self.serve(request, head: head, context: context)
            }
        case (_, .closing):
            break
        default:
            // The pipelining handler in front delivers one request at a time, so this is a
            // broken client; say so and stop.
            refuse(.json(.badRequest, ErrorDocument(error: "unexpected request data")), context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            stalled?.cancel()
            stalled = nil
            if case .waitingForWritable(let request, let head) = state { serve(request, head: head, context: context) }
        } else if stalled == nil {
            let channel = context.channel
            let timeout = limits.idleTimeout
            stalled = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
                channel.close(promise: nil)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    /// Requests of this connection counted in the drain gate (from their head to their
    /// reply written): more than one for a moment, as a pipelined request's head arrives
    /// while the reply before it is written.
    private var held = 0

    /// One request of this connection is answered (or gone).
    private func release(_ count: Int = 1) {
        let count = min(count, held)
        held -= count
        for _ in 0..<count { runtime.drainGate.leave() }
    }

    private func serve(_ request: HTTPRequestData, head: HTTPRequestHead, context: ChannelHandlerContext) {
        state = .serving
        let channel = context.channel
        let frontend = HTTPFrontend(runtime: runtime)
        // The frontend runs on the node's protocol loop; the reply comes back to this one.
        let answer =
            runtime.loop.inEventLoop
            ? frontend.handleHTTP(request)
            : runtime.loop.flatSubmit { frontend.handleHTTP(request) }.hop(to: context.eventLoop)
        answer.assumeIsolated().whenComplete { result in
            let reply: HTTPReply
            switch result {
            case .success(let value): reply = value
            case .failure(let error):
                reply = .json(.internalServerError, ErrorDocument(error: "internal error: \(error)"))
            }
            guard channel.isActive else {
                self.release()
                return
            }
            // Idle first: writing the end of this reply makes the pipelining handler in
            // front deliver the next request at once.
            if head.isKeepAlive {
                self.state = .idle
                self.armIdleDeadline(context)
            } else {
                self.state = .closing
            }
            self.write(reply, for: head, on: channel).assumeIsolated().whenComplete { _ in self.release() }
        }
    }

    /// Answers with `reply` and closes: nothing more is read from this client. A `/kv`
    /// request refused here (too large, too slow, or the node stopping) is still counted
    /// (as `outcome`), answered with its request id and logged under it, as the frontend
    /// does with the requests it answers.
    private func refuse(_ reply: HTTPReply, as outcome: RequestOutcome = .badRequest, context: ChannelHandlerContext) {
        deadline = nil
        var reply = reply
        var version = HTTPVersion.http1_1
        if case .reading(let head, _) = state {
            version = head.version
            if head.uri.hasPrefix("/kv/"), let op = HTTPFrontend.op(head.method) {
                let runtime = self.runtime
                let id = runtime.requestId(head.headers)
                reply.headers.add(name: RequestId.header, value: id)
                runtime.logRequest(
                    id, "\(head.method) \(HTTPFrontend.excerpt(head.uri, 100)): \(reply.status.code) before it reached the node")
                runtime.loop.execute { runtime.recordRequest(op, outcome, nanoseconds: 0) }
            }
        }
        state = .closing
        // The refused request leaves the gate once its answer is written (the connection
        // then closes, which releases whatever else it held).
        let written = Self.write(reply, version: version, isHead: false, keepAlive: false, on: context.channel)
        if outcome != .unavailable { written.assumeIsolated().whenComplete { _ in self.release() } }
    }

    /// Writes the reply (completed once it is written, or failed to be).
    private func write(_ reply: HTTPReply, for head: HTTPRequestHead, on channel: any Channel) -> EventLoopFuture<Void> {
        Self.write(reply, version: head.version, isHead: head.method == .HEAD, keepAlive: head.isKeepAlive, on: channel)
    }

    /// A HEAD request gets the GET answer's head (with its Content-Length) and no body.
    @discardableResult
    private static func write(
        _ reply: HTTPReply, version: HTTPVersion, isHead: Bool, keepAlive: Bool, on channel: any Channel
    ) -> EventLoopFuture<Void> {
        var headers = reply.headers
        headers.replaceOrAdd(name: "Content-Length", value: String(reply.body.count))
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: version, status: reply.status, headers: headers)
        channel.write(HTTPServerResponsePart.head(head), promise: nil)
        if !reply.body.isEmpty, !isHead {
            channel.write(
                HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(bytes: reply.body))), promise: nil)
        }
        let done = channel.writeAndFlush(HTTPServerResponsePart.end(nil))
        if !keepAlive { done.whenComplete { _ in channel.close(promise: nil) } }
        return done
    }

    private func armIdleDeadline(_ context: ChannelHandlerContext) {
        arm(context, in: limits.idleTimeout) { _, context in context.close(promise: nil) }
    }

    private func arm(
        _ context: ChannelHandlerContext, in timeout: TimeAmount,
        _ expired: @escaping (HTTPConnectionHandler, ChannelHandlerContext) -> Void
    ) {
        let at = NIODeadline.now() + timeout
        deadline = (at, expired)
        if let timer, timer.at <= at { return }
        timer?.task.cancel()
        schedule(context, at: at)
    }

    private func schedule(_ context: ChannelHandlerContext, at: NIODeadline) {
        let task = context.eventLoop.assumeIsolated().scheduleTask(deadline: at) { [self] in
            timer = nil
            guard let deadline else { return }
            if deadline.at <= NIODeadline.now() {
                self.deadline = nil
                deadline.expired(self, context)
            } else {
                schedule(context, at: deadline.at)
            }
        }
        timer = (task, at)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Parser errors reach here after every earlier response was written, and were
        // answered with 400 by the protocol error handler in front.
        state = .closing
        deadline = nil
        context.close(promise: nil)
    }
}

/// Bounds on what clients and peers can hold (`--max-connections`, `--idle-timeout-ms`,
/// `--request-read-timeout-ms`).
public struct ConnectionLimits: Sendable, Hashable {
    /// Open HTTP connections; more are answered 503 and closed.
    public var maxHTTPConnections: Int
    /// Open inbound peer connections; more are closed at once.
    public var maxPeerConnections: Int
    public var idleTimeoutMs: Int64
    public var requestReadTimeoutMs: Int64
    /// An inbound peer connection with nothing read for this long is closed (the dialer
    /// opens a new one when it needs it).
    public var peerIdleTimeoutMs: Int64

    public init(
        maxHTTPConnections: Int = 1024, maxPeerConnections: Int = 256, idleTimeoutMs: Int64 = 30_000,
        requestReadTimeoutMs: Int64 = 10_000, peerIdleTimeoutMs: Int64 = 120_000
    ) {
        self.maxHTTPConnections = maxHTTPConnections
        self.maxPeerConnections = maxPeerConnections
        self.idleTimeoutMs = idleTimeoutMs
        self.requestReadTimeoutMs = requestReadTimeoutMs
        self.peerIdleTimeoutMs = peerIdleTimeoutMs
    }

    var idleTimeout: TimeAmount { .milliseconds(idleTimeoutMs) }
    var requestReadTimeout: TimeAmount { .milliseconds(requestReadTimeoutMs) }
}
