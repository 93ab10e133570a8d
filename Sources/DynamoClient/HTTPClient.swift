public import DynamoAPI
import Foundation
import NIOConcurrencyHelpers
import NIOSSL
public import NIOCore
public import NIOHTTP1
public import NIOPosix

/// A response as the client sees it.
public struct HTTPResult: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// Why a request got no HTTP answer.
public enum ClientError: Error, CustomStringConvertible, Sendable {
    case connectionFailed(String, underlying: String)
    case connectionClosed(String)
    case timedOut(String)
    case badResponse(String)

    public var description: String {
        switch self {
        case .connectionFailed(let address, let reason): "cannot connect to \(address): \(reason)"
        case .connectionClosed(let address):
            "\(address) closed the connection before answering (if it serves HTTPS, set DYNAMO_TLS_CA to its CA file)"
        case .timedOut(let address): "\(address) did not answer in time"
        case .badResponse(let reason): "unexpected response: \(reason)"
        }
    }
}

/// A minimal HTTP/1.1 client with keep-alive connection reuse per address.
///
/// Enough for the node API (small requests, whole bodies); one request at a time per
/// connection, as many connections as callers in flight.
///
/// Not AsyncHTTPClient: measured side by side (Benchmarks/Sources/ClientCompare, 16
/// workers against 3 release nodes), AsyncHTTPClient made 25-35% fewer puts a second
/// (2,218-2,453 against 3,004-3,243) with gets about even, and its build adds minutes to
/// every fresh build (README, "Micro-benchmarks").
public final class HTTPClient: Sendable {
    private let group: any EventLoopGroup
    private let idle = NIOLockedValueBox<[String: [any Channel]]>([:])
    /// HTTPS, trusting this context's roots (nil: plain HTTP).
    private let tls: NIOSSLContext?
    /// Why this client cannot work at all (a CA file it could not use): every request fails
    /// with it, rather than falling back to plain HTTP quietly.
    private let unusable: String?

    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.group = group
        self.tls = nil
        self.unusable = nil
    }

    private init(unusable reason: String) {
        self.group = MultiThreadedEventLoopGroup.singleton
        self.tls = nil
        self.unusable = reason
    }

    /// A client for nodes serving HTTPS (`dynamo-node --tls-cert ...`): their certificates
    /// must be signed by the CA in `caFile`, for the address the client connects to.
    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, trusting caFile: String) throws {
        self.group = group
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(caFile)
        configuration.minimumTLSVersion = .tlsv12
        self.unusable = nil
        do {
            self.tls = try NIOSSLContext(configuration: configuration)
        } catch {
            throw ClientError.connectionFailed("TLS", underlying: "cannot use the CA file \(caFile): \(error)")
        }
    }

    /// One client for the process, from the environment (see `fromEnvironment`); with a CA
    /// file that cannot be used, every request fails saying so.
    public static let shared: HTTPClient = {
        do {
            return try fromEnvironment()
        } catch {
            return HTTPClient(unusable: "DYNAMO_TLS_CA: \(error)")
        }
    }()

    /// The client the `dynamo` tool uses: HTTPS when `DYNAMO_TLS_CA` names a CA file.
    public static func fromEnvironment() throws -> HTTPClient {
        guard let ca = ProcessInfo.processInfo.environment["DYNAMO_TLS_CA"], !ca.isEmpty else { return HTTPClient() }
        return try HTTPClient(trusting: ca)
    }

    public func request(
        _ method: HTTPMethod, host: String, port: Int, path: String, headers: [(String, String)] = [],
        body: [UInt8]? = nil, timeout: TimeAmount = .seconds(10)
    ) async throws -> HTTPResult {
        let address = "\(host):\(port)"
        if let unusable { throw ClientError.connectionFailed(address, underlying: unusable) }
        let channel = try await acquire(host: host, port: port)
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: address)
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body { head.headers.add(name: "Content-Length", value: String(body.count)) }
        let promise = channel.eventLoop.makePromise(of: HTTPResult.self)
        let timeoutTask = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(ClientError.timedOut(address))
            channel.close(promise: nil)
        }
        channel.writeAndFlush(PendingRequest(head: head, body: body, promise: promise), promise: nil)
        do {
            let result = try await promise.futureResult.get()
            timeoutTask.cancel()
            if result.header("connection")?.lowercased() == "close" {
                try? await channel.close()
            } else {
                release(channel, address: address)
            }
            return result
        } catch {
            timeoutTask.cancel()
            channel.close(promise: nil)
            throw error
        }
    }

    private func acquire(host: String, port: Int) async throws -> any Channel {
        let address = "\(host):\(port)"
        while let channel = idle.withLockedValue({ $0[address]?.popLast() }) {
            if channel.isActive { return channel }
        }
        do {
            return try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(3))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { [tls] channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(
                                try NIOSSLClientHandler(
                                    context: tls, serverHostname: HostAddress.isIPLiteral(host) ? nil : host))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ResponseCollector(address: address))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            throw ClientError.connectionFailed(address, underlying: "\(error)")
        }
    }

    private func release(_ channel: any Channel, address: String) {
        guard channel.isActive else { return }
        idle.withLockedValue { $0[address, default: []].append(channel) }
    }

    /// Closes idle connections.
    public func closeIdle() {
        let channels = idle.withLockedValue { state in
            defer { state = [:] }
            return state.values.flatMap { $0 }
        }
        for channel in channels { channel.close(promise: nil) }
    }
}

struct PendingRequest {
    var head: HTTPRequestHead
    var body: [UInt8]?
    var promise: EventLoopPromise<HTTPResult>
}

/// Writes one request and completes its promise with the whole response.
final class ResponseCollector: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = PendingRequest
    typealias OutboundOut = HTTPClientRequestPart

    private let address: String
    private var promise: EventLoopPromise<HTTPResult>?
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []

    init(address: String) { self.address = address }

    func write(context: ChannelHandlerContext, data: NIOAny, promise writePromise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        guard promise == nil else {
            request.promise.fail(ClientError.badResponse("connection busy"))
            return
        }
        promise = request.promise
        head = nil
        body = []
        context.write(wrapOutboundOut(.head(request.head)), promise: nil)
        if let bytes = request.body, !bytes.isEmpty {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))), promise: nil)
        }
        context.write(wrapOutboundOut(.end(nil)), promise: writePromise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let responseHead):
            head = responseHead
        case .body(var buffer):
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let head, let promise else { return }
            self.promise = nil
            promise.succeed(
                HTTPResult(
                    status: Int(head.status.code), headers: head.headers.map { ($0.name, $0.value) }, body: body))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise?.fail(ClientError.connectionClosed(address))
        promise = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise?.fail(ClientError.badResponse("\(error)"))
        promise = nil
        context.close(promise: nil)
    }
}
