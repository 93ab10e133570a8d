public import DynamoAPI
import Foundation
public import NIOCore
public import NIOHTTP1

/// The result of a read: every version the cluster returned, and how it was served.
public struct ReadResult: Sendable {
    /// 200 (one version), 300 (siblings), 404 (absent or deleted), 503 (quorum not met).
    public var status: Int
    public var document: SiblingDocument?
    public var context: String?
    public var coordinator: String?
    public var replicas: [String]
    public var error: String?
    /// Every replica asked; a fallback as `n5>n3` (standing in for n3).
    public var asked: [String] = []
    /// When each replica was sent its part and answered, and when the reply went (ms).
    public var times: [ReplicaTime] = []
    public var repliedMs: Double?
    /// The request's id (`X-Dynamo-Request-Id`): a traced request's trace goes by it.
    public var requestId: String?

    /// Live values, in sibling order.
    public var values: [[UInt8]] { document?.siblings.compactMap(\.bytes) ?? [] }
}

/// The result of a write or delete.
public struct WriteResponse: Sendable {
    /// 204 on success; 503, 413, 414, 400 otherwise, and 409 when the key would pass the
    /// node's sibling or object size limit (`error` says how to resolve it).
    public var status: Int
    public var context: String?
    public var coordinator: String?
    public var replicas: [String]
    public var error: String?
    /// Every replica the write was sent to; a fallback as `n5>n3` (keeping a hint for n3).
    public var asked: [String] = []
    /// When each replica was sent the write and acknowledged it, and when the reply went
    /// (ms; none when the write was coordinated by the node it was forwarded to).
    public var times: [ReplicaTime] = []
    public var repliedMs: Double?
    public var requestId: String?

    public var succeeded: Bool { status == 204 }
}

/// Talks to one node's HTTP API (spec sections 6 and 7).
public struct DynamoClient: Sendable {
    public let host: String
    public let port: Int
    private let http: HTTPClient
    /// The cluster secret, sent as a bearer token on admin requests (nodes with a secret
    /// refuse `POST /admin/faults` and `/admin/leave` without it).
    public let bearer: String?

    /// - Parameter bearer: the cluster secret; by default `DYNAMO_CLUSTER_SECRET`.
    public init(address: String, http: HTTPClient = .shared, bearer: String? = DynamoClient.environmentSecret) {
        // Accept a URL's scheme: HTTPS comes from the client (DYNAMO_TLS_CA), not the address.
        var address = Substring(address)
        for scheme in ["https://", "http://"] where address.hasPrefix(scheme) { address = address.dropFirst(scheme.count) }
        while address.hasSuffix("/") { address = address.dropLast() }
        let parts = address.split(separator: ":")
        self.host = parts.count == 2 ? String(parts[0]) : "127.0.0.1"
        self.port = parts.count == 2 ? Int(parts[1]) ?? 0 : Int(address) ?? 0
        self.http = http
        self.bearer = bearer
    }

    public static var environmentSecret: String? {
        ProcessInfo.processInfo.environment["DYNAMO_CLUSTER_SECRET"].flatMap { $0.isEmpty ? nil : $0 }
    }

    public var address: String { "\(host):\(port)" }

    public func raw(
        _ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
        timeout: TimeAmount = .seconds(10)
    ) async throws -> HTTPResult {
        var headers = headers
        if let bearer, path.hasPrefix("/admin/"), !headers.contains(where: { $0.0.lowercased() == "authorization" }) {
            headers.append(("Authorization", "Bearer \(bearer)"))
        }
        return try await http.request(
            method, host: host, port: port, path: path, headers: headers, body: body, timeout: timeout)
    }

    private static func query(_ name: String, _ value: Int?) -> String { value.map { "?\(name)=\($0)" } ?? "" }

    /// Reads a key, always as the JSON sibling document. (`timeout`: how long to wait for
    /// the node's answer; it answers within its own request timeout.)
    /// `trace`: ask every node that handles it to record its steps (`trace(_:)` fetches them),
    /// under `requestId` if given (else one the node makes).
    public func get(
        _ key: [UInt8], r: Int? = nil, trace: Bool = false, requestId: String? = nil, timeout: TimeAmount = .seconds(10)
    ) async throws -> ReadResult {
        let result = try await raw(
            .GET, "/kv/\(PercentEncoding.encode(key))\(Self.query("r", r))",
            headers: [("Accept", "application/json")] + Self.traceHeaders(trace, requestId), timeout: timeout)
        let document =
            (result.status == 200 || result.status == 300)
            ? try? JSONDecoder().decode(SiblingDocument.self, from: Data(result.body)) : nil
        return ReadResult(
            status: result.status, document: document, context: result.header("X-Dynamo-Context"),
            coordinator: result.header("X-Dynamo-Coordinator"),
            replicas: Self.names(result.header("X-Dynamo-Replicas")),
            error: Self.errorText(result), asked: Self.names(result.header("X-Dynamo-Asked")),
            times: ReplicaTime.parse(result.header("X-Dynamo-Replica-Times")),
            repliedMs: Self.milliseconds(result.header("X-Dynamo-Replied-Ms")), requestId: result.header(RequestId.header))
    }

    private static func traceHeaders(_ trace: Bool, _ requestId: String?) -> [(String, String)] {
        (trace ? [("X-Dynamo-Trace", "1")] : []) + (requestId.map { [(RequestId.header, $0)] } ?? [])
    }

    /// Writes a value; without a context the write becomes a sibling of whatever is there.
    public func put(
        _ key: [UInt8], value: [UInt8], context: String? = nil, w: Int? = nil, trace: Bool = false,
        requestId: String? = nil, timeout: TimeAmount = .seconds(10)
    ) async throws -> WriteResponse {
        try await write(
            .PUT, key, body: value, context: context, w: w, trace: trace, requestId: requestId, timeout: timeout)
    }

    /// Deletes (writes a tombstone) what `context` covers.
    public func delete(
        _ key: [UInt8], context: String? = nil, w: Int? = nil, trace: Bool = false, requestId: String? = nil
    ) async throws -> WriteResponse {
        try await write(.DELETE, key, body: nil, context: context, w: w, trace: trace, requestId: requestId)
    }

    private func write(
        _ method: HTTPMethod, _ key: [UInt8], body: [UInt8]?, context: String?, w: Int?, trace: Bool = false,
        requestId: String? = nil, timeout: TimeAmount = .seconds(10)
    ) async throws -> WriteResponse {
        var headers: [(String, String)] = Self.traceHeaders(trace, requestId)
        if let context { headers.append(("X-Dynamo-Context", context)) }
        let result = try await raw(
            method, "/kv/\(PercentEncoding.encode(key))\(Self.query("w", w))", headers: headers, body: body ?? [],
            timeout: timeout)
        return WriteResponse(
            status: result.status, context: result.header("X-Dynamo-Context"),
            coordinator: result.header("X-Dynamo-Coordinator"),
            replicas: Self.names(result.header("X-Dynamo-Replicas")),
            error: Self.errorText(result), asked: Self.names(result.header("X-Dynamo-Asked")),
            times: ReplicaTime.parse(result.header("X-Dynamo-Replica-Times")),
            repliedMs: Self.milliseconds(result.header("X-Dynamo-Replied-Ms")), requestId: result.header(RequestId.header))
    }

    /// This node's part of trace `id` (nil: it keeps none).
    public func trace(_ id: String, timeout: TimeAmount = .seconds(5)) async throws -> TraceDocument? {
        let result = try await raw(.GET, "/admin/trace/\(PercentEncoding.encode(Array(id.utf8)))", timeout: timeout)
        if result.status == 404 { return nil }
        return try decode(TraceDocument.self, from: result)
    }

    private static func milliseconds(_ header: String?) -> Double? {
        header.flatMap(Double.init).flatMap { $0.isFinite && $0 >= 0 ? $0 : nil }
    }

    public func status(timeout: TimeAmount = .seconds(10)) async throws -> StatusDocument {
        try decode(StatusDocument.self, from: try await raw(.GET, "/admin/status", timeout: timeout))
    }

    /// The node's `GET /metrics`: Prometheus text.
    public func metrics(timeout: TimeAmount = .seconds(10)) async throws -> String {
        let result = try await raw(.GET, "/metrics", timeout: timeout)
        guard result.status == 200 else {
            throw ClientError.badResponse("\(address) answered \(result.status): \(result.bodyText)")
        }
        return result.bodyText
    }

    public func preferenceList(_ key: [UInt8]) async throws -> PreflistDocument {
        try decode(PreflistDocument.self, from: try await raw(.GET, "/admin/preflist/\(PercentEncoding.encode(key))"))
    }

    /// This node's own stored versions of a key (nil when it holds none).
    public func local(_ key: [UInt8]) async throws -> SiblingDocument? {
        let result = try await raw(.GET, "/admin/local/\(PercentEncoding.encode(key))")
        if result.status == 404 { return nil }
        return try decode(SiblingDocument.self, from: result)
    }

    /// The node's events numbered above `since` (0: all it keeps).
    public func events(since: UInt64, timeout: TimeAmount = .seconds(10)) async throws -> EventsDocument {
        try decode(EventsDocument.self, from: try await raw(.GET, "/admin/events?since=\(since)", timeout: timeout))
    }

    /// Makes this node drop all traffic with `nodes` (an empty list heals).
    public func setFaults(drop nodes: [String]) async throws { try await setFaults(FaultsDocument(drop: nodes)) }

    /// Replaces this node's injected faults (cut, slow and lossy links).
    public func setFaults(_ faults: FaultsDocument) async throws {
        let body = try JSONEncoder().encode(faults)
        let result = try await raw(
            .POST, "/admin/faults", headers: [("Content-Type", "application/json")], body: Array(body))
        guard result.status == 200 else {
            throw ClientError.badResponse("\(address) refused faults: \(result.bodyText)")
        }
    }

    private func decode<T: Decodable>(_ type: T.Type, from result: HTTPResult) throws -> T {
        guard result.status == 200 else {
            throw ClientError.badResponse("\(address) answered \(result.status): \(result.bodyText)")
        }
        do {
            return try JSONDecoder().decode(type, from: Data(result.body))
        } catch {
            throw ClientError.badResponse("\(address) sent an unreadable \(type): \(error)")
        }
    }

    private static func names(_ header: String?) -> [String] {
        header?.split(separator: ",").map(String.init) ?? []
    }

    private static func errorText(_ result: HTTPResult) -> String? {
        guard result.status >= 400 else { return nil }
        return (try? JSONDecoder().decode(ErrorDocument.self, from: Data(result.body)))?.error ?? result.bodyText
    }
}
