import DynamoAPI
import DynamoCore
import DynamoStorage
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One client request, fully read.
struct HTTPRequestData: Sendable {
    var method: HTTPMethod
    var uri: String
    var headers: HTTPHeaders
    var body: [UInt8]
}

/// One response to send.
struct HTTPReply: Sendable {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders = HTTPHeaders()
    var body: [UInt8] = []

    func adding(_ name: String, _ value: String) -> HTTPReply {
        var copy = self
        copy.headers.add(name: name, value: value)
        return copy
    }

    func adding(_ extra: HTTPHeaders) -> HTTPReply {
        var copy = self
        copy.headers.add(contentsOf: extra)
        return copy
    }

    static func json(_ status: HTTPResponseStatus, _ document: some Encodable) -> HTTPReply {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var reply = HTTPReply(status: status, body: Array((try? encoder.encode(document)) ?? Data("{}".utf8)))
        reply.headers.add(name: "Content-Type", value: "application/json")
        return reply
    }
}

/// Errors a client can cause; mapped to HTTP status in exactly one place (`reply`).
enum APIError: Error {
    case badRequest(String)
    case keyTooLarge(Int, limit: Int)
    case valueTooLarge(Int, limit: Int)
    case notFound(String)
    case methodNotAllowed(HTTPMethod, String)
    /// An admin change without the cluster secret as a bearer token.
    case unauthorized(String)
    /// The request cannot be carried out in the node's current state.
    case conflict(String)

    var reply: HTTPReply {
        switch self {
        case .badRequest(let reason): .json(.badRequest, ErrorDocument(error: reason))
        case .keyTooLarge(let size, let limit):
            .json(.uriTooLong, ErrorDocument(error: "key is \(size) bytes; the limit is \(limit)"))
        case .valueTooLarge(let size, let limit):
            .json(.payloadTooLarge, ErrorDocument(error: "value is \(size) bytes; the limit is \(limit)"))
        case .notFound(let what): .json(.notFound, ErrorDocument(error: what))
        case .methodNotAllowed(let method, let path):
            .json(.methodNotAllowed, ErrorDocument(error: "\(method) is not supported on \(path)"))
        case .unauthorized(let reason):
            .json(.unauthorized, ErrorDocument(error: reason)).adding("WWW-Authenticate", "Bearer realm=\"dynamo admin\"")
        case .conflict(let reason): .json(.conflict, ErrorDocument(error: reason))
        }
    }
}

// MARK: Routing

/// The client and admin HTTP API of one node (spec sections 6 and 7): parses and checks
/// each request, asks the runtime, and renders the answer. Runs on the node's event loop.
struct HTTPFrontend: Sendable {
    let runtime: NodeRuntime

    private var loop: any EventLoop { runtime.loop }
    private var pool: NIOThreadPool { runtime.pool }
    private var config: NodeConfig { runtime.config }
    private var machine: NodeMachine { runtime.machine }
    private var store: ReplicaStore { runtime.store }
    private var name: NodeName { runtime.name }

    /// Routes one request; runs on the loop.
    func handleHTTP(_ request: HTTPRequestData) -> EventLoopFuture<HTTPReply> {
        let (path, query) = RequestTarget.split(request.uri)
        // HEAD is GET without the body (the connection handler leaves the body out).
        var request = request
        if request.method == .HEAD { request.method = .GET }
        if path.hasPrefix("/kv/") { return handleKV(request, path: path, query: query) }
        do {
            switch (request.method, path) {
            case (.GET, "/admin/status"):
                return loop.makeSucceededFuture(.json(.ok, statusDocument()))
            case (.GET, "/metrics"):
                runtime.metrics.refresh(runtime: runtime, status: statusDocument())
                let registry = runtime.metrics.registry
                return runtime.renderPool.runIfActive(eventLoop: loop) {
                    var reply = HTTPReply(status: .ok, body: NodeMetrics.render(registry))
                    reply.headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
                    return reply
                }
            case (.GET, "/admin/events"):
                guard let since = UInt64(query["since"] ?? "0") else {
                    throw APIError.badRequest("since must be an event number (0 for every event kept)")
                }
                return loop.makeSucceededFuture(.json(.ok, EventsDocument(node: name, events: runtime.events.since(since))))
            case (.GET, "/admin/faults"):
                return loop.makeSucceededFuture(.json(.ok, faultsDocument()))
            case (.GET, "/admin/trace"):
                return loop.makeSucceededFuture(.json(.ok, TraceListDocument(node: name, ids: machine.traceIds)))
            case (.GET, _) where path.hasPrefix("/admin/trace/"):
                // One percent-encoded segment, as keys are (`:` may come as %3A).
                let segment = path.dropFirst("/admin/trace/".count)
                let id = PercentEncoding.decode(segment).flatMap { String(validating: $0, as: UTF8.self) } ?? String(segment)
                guard let steps = machine.traceSteps(id) else {
                    throw APIError.notFound("\(name) keeps no trace \(Self.excerpt(id, 64))")
                }
                return loop.makeSucceededFuture(.json(.ok, Self.traceDocument(node: name, id: id, steps: steps)))
            case (.POST, "/admin/faults"):
                try authorizeAdmin(request.headers)
                return loop.makeSucceededFuture(try setFaults(request.body))
            case (.POST, "/admin/leave"):
                try authorizeAdmin(request.headers)
                // (Members that left do not count: they hold nothing and take nothing.)
                let others = machine.membership.current.filter { $0.name != name }
                guard !others.isEmpty else {
                    throw APIError.conflict("this node is the only member: there is no one to hand its data to")
                }
                let held = runtime.leave()
                return loop.makeSucceededFuture(
                    .json(.accepted, LeaveDocument(leaving: true, keys: held.keys, hints: held.hints)))
            case (.GET, _) where path.hasPrefix("/admin/preflist/"):
                let key = try parseKey(path.dropFirst("/admin/preflist/".count))
                let position = RingPosition.of(key: key)
                let document = PreflistDocument(
                    hash: position.hex,
                    preferenceList: machine.membership.routingRing.preferenceList(for: position).home(config.quorum.n))
                return loop.makeSucceededFuture(.json(.ok, document))
            case (.GET, _) where path.hasPrefix("/admin/local/"):
                let key = try parseKey(path.dropFirst("/admin/local/".count))
                return handleLocal(key: key)
            default:
                throw APIError.notFound("no such endpoint: \(request.method) \(Self.excerpt(path, 100))")
            }
        } catch let error as APIError {
            return loop.makeSucceededFuture(error.reply)
        } catch {
            return loop.makeSucceededFuture(.json(.internalServerError, ErrorDocument(error: "\(error)")))
        }
    }

    /// A `/kv/` request, under its request id (the client's `X-Dynamo-Request-Id` if valid,
    /// else a new one): answered with that id, and logged (at debug) under it.
    private func handleKV(_ request: HTTPRequestData, path: String, query: [String: String])
        -> EventLoopFuture<HTTPReply>
    {
        let requestId = runtime.requestId(request.headers)
        let started = NIODeadline.now()
        let answer: EventLoopFuture<HTTPReply>
        var parsed: [UInt8]?
        do {
            let key = try parseKey(path.dropFirst(4))
            parsed = key
            // `X-Dynamo-Trace: 1`: every node records its part under the request id.
            let trace = request.headers.first(name: "X-Dynamo-Trace") == "1" ? requestId : nil
            switch request.method {
            case .GET: answer = try handleGet(key: key, query: query, headers: request.headers, trace: trace)
            case .PUT:
                answer = try handleWrite(
                    key: key, value: request.body, query: query, headers: request.headers, requestId: requestId,
                    trace: trace)
            case .DELETE:
                answer = try handleWrite(
                    key: key, value: nil, query: query, headers: request.headers, requestId: requestId, trace: trace)
            default: throw APIError.methodNotAllowed(request.method, "/kv")
            }
        } catch let error as APIError {
            if let op = Self.op(request.method) { runtime.recordRequest(op, .badRequest, nanoseconds: 0) }
            answer = loop.makeSucceededFuture(error.reply)
        } catch {
            answer = loop.makeSucceededFuture(.json(.internalServerError, ErrorDocument(error: "\(error)")))
        }
        let runtime = self.runtime
        let method = request.method
        let key = parsed
        return answer.map { reply in
            runtime.logRequest(
                requestId,
                "\(method) \(key.map(KeyText.short) ?? "?"): \(reply.status.code) in \((NIODeadline.now() - started).nanoseconds / 1000) us\(reply.headers.first(name: "X-Dynamo-Coordinator").map { ", coordinator \($0)" } ?? "")"
            )
            return reply.adding(RequestId.header, requestId)
        }
    }

    /// The operation a `/kv/` request asks for (nil: a method the API does not take).
    static func op(_ method: HTTPMethod) -> RequestOp? {
        switch method {
        case .GET, .HEAD: .get
        case .PUT: .put
        case .DELETE: .delete
        default: nil
        }
    }

    /// State-changing admin requests need the cluster secret as a bearer token on a node
    /// that has one (a node without one listens on loopback only, a development cluster).
    private func authorizeAdmin(_ headers: HTTPHeaders) throws(APIError) {
        guard let key = config.clusterKey else { return }
        guard let value = headers.first(name: "authorization"), value.lowercased().hasPrefix("bearer ") else {
            throw .unauthorized(
                "this node has a cluster secret: send it as 'Authorization: Bearer SECRET' (dynamo sends DYNAMO_CLUSTER_SECRET)"
            )
        }
        guard key.matches(bearer: String(value.dropFirst(7))) else {
            throw .unauthorized("the bearer token is not this cluster's secret")
        }
    }

    private func parseKey(_ segment: Substring) throws(APIError) -> [UInt8] {
        guard let key = PercentEncoding.decode(segment) else {
            throw .badRequest("key is not a valid percent-encoded path segment")
        }
        guard !key.isEmpty else { throw .badRequest("key is empty") }
        guard key.count <= config.maxKeyBytes else { throw .keyTooLarge(key.count, limit: config.maxKeyBytes) }
        return key
    }

    private func quorumParameter(_ name: String, _ query: [String: String]) throws(APIError) -> Int? {
        guard let text = query[name] else { return nil }
        guard let value = Int(text), (1...config.quorum.n).contains(value) else {
            throw .badRequest("\(name) must be a whole number from 1 to N=\(config.quorum.n)")
        }
        return value
    }

    /// Seals and opens contexts: the cluster secret, or the development key without one.
    var contextSealer: ClusterKey { config.clusterKey ?? .development }

    private func sealedContext(_ clock: CausalHistory, key: [UInt8]) -> String {
        ContextHeader.encode(CausalContext(clock).sealed(forKey: key, with: contextSealer))
    }

    private func parseContext(_ headers: HTTPHeaders, key: [UInt8]) throws(APIError) -> CausalHistory? {
        guard let text = headers.first(name: "X-Dynamo-Context"), !text.isEmpty else { return nil }
        let sealed: [UInt8]
        do {
            sealed = try ContextHeader.decode(text)
        } catch {
            throw .badRequest("bad X-Dynamo-Context: \(error.reason)")
        }
        do {
            return try CausalContext(opening: sealed, forKey: key, with: contextSealer).clock
        } catch {
            throw .badRequest("bad X-Dynamo-Context: \(error.reason)")
        }
    }

    private func handleGet(key: [UInt8], query: [String: String], headers: HTTPHeaders, trace: String?)
        throws(APIError) -> EventLoopFuture<HTTPReply>
    {
        let r = try quorumParameter("r", query)
        let wantsJSON = headers.first(name: "accept")?.contains("application/json") ?? false
        let name = self.name
        let loop = self.loop
        return runtime.clientRead(key: key, r: r, trace: trace).flatMap { outcome in
            var headers = HTTPHeaders()
            headers.add(name: "X-Dynamo-Coordinator", value: name)
            headers.add(name: "X-Dynamo-Replicas", value: outcome.replies.joined(separator: ","))
            headers.add(name: "X-Dynamo-Asked", value: Self.traceHeader(outcome.asked))
            Self.addTimes(outcome.trace, to: &headers)
            let object = outcome.object
            guard outcome.succeeded else {
                let failure = ErrorDocument(
                    error: Self.readFailure(outcome), required: outcome.required, replies: outcome.replies.count)
                return loop.makeSucceededFuture(HTTPReply.json(.serviceUnavailable, failure).adding(headers))
            }
            guard !object.isEmpty, !object.isDeleted else {
                let missing = ErrorDocument(error: object.isEmpty ? "not found" : "deleted")
                var reply = HTTPReply.json(.notFound, missing)
                if object.isDeleted {
                    reply.headers.add(name: "X-Dynamo-Context", value: sealedContext(object.context, key: key))
                }
                return loop.makeSucceededFuture(reply.adding(headers))
            }
            // Sealed once: the same context goes in the header and the sibling document.
            let context = sealedContext(object.context, key: key)
            headers.add(name: "X-Dynamo-Context", value: context)
            guard wantsJSON || object.versions.count > 1 else {
                var reply = HTTPReply(status: .ok, body: object.versions[0].value ?? [])
                reply.headers.add(name: "Content-Type", value: "application/octet-stream")
                return loop.makeSucceededFuture(reply.adding(headers))
            }
            let status: HTTPResponseStatus = object.versions.count > 1 ? .multipleChoices : .ok
            return siblingReply(status, object, context: context, headers: headers)
        }
    }

    /// A sibling document as a reply. Base64 and JSON of a multi-megabyte one take long
    /// enough to hold up every peer request behind it: those are rendered on a thread of
    /// their own.
    private func siblingReply(
        _ status: HTTPResponseStatus, _ object: VersionedObject, context: String, headers: HTTPHeaders
    ) -> EventLoopFuture<HTTPReply> {
        let render = { HTTPReply.json(status, SiblingDocument(object, context: context)).adding(headers) }
        guard object.valueBytes > Self.renderOnLoopBytes else { return loop.makeSucceededFuture(render()) }
        return runtime.renderPool.runIfActive(eventLoop: loop, render)
    }

    /// The largest sibling document (by value bytes) encoded on the event loop itself.
    static let renderOnLoopBytes = 64 << 10

    private func handleWrite(
        key: [UInt8], value: [UInt8]?, query: [String: String], headers: HTTPHeaders, requestId: String,
        trace: String?
    ) throws(APIError) -> EventLoopFuture<HTTPReply> {
        let w = try quorumParameter("w", query)
        let context = try parseContext(headers, key: key)
        if let value, value.count > config.maxValueBytes {
            throw .valueTooLarge(value.count, limit: config.maxValueBytes)
        }
        return runtime.clientWrite(key: key, value: value, context: context, w: w, requestId: requestId, trace: trace)
            .map { result in
            var reply: HTTPReply
            if let refusal = result.refusal {
                reply = .json(.conflict, ErrorDocument(refusal: refusal))
            } else if let error = result.error {
                reply = .json(
                    .serviceUnavailable,
                    ErrorDocument(error: error, acks: result.acks.count, required: result.required))
            } else if !result.succeeded {
                reply = .json(
                    .serviceUnavailable,
                    ErrorDocument(
                        error:
                            "only \(result.acks.count) of the required \(result.required) replicas acknowledged in time",
                        acks: result.acks.count, required: result.required))
            } else {
                reply = HTTPReply(status: .noContent)
                reply.headers.add(name: "X-Dynamo-Context", value: sealedContext(result.context, key: key))
            }
            reply.headers.add(name: "X-Dynamo-Coordinator", value: result.coordinator)
            reply.headers.add(name: "X-Dynamo-Replicas", value: result.acks.joined(separator: ","))
            reply.headers.add(name: "X-Dynamo-Asked", value: Self.traceHeader(result.asked))
            Self.addTimes(result.trace, to: &reply.headers)
            return reply
        }
    }

    /// At most `limit` characters of something a client sent, for an error message: errors
    /// never echo arbitrarily much back.
    static func excerpt(_ text: String, _ limit: Int) -> String {
        text.count > limit ? text.prefix(limit) + "…" : text
    }

    /// Why a read did not reach R: the replicas that failed and how, else a timeout.
    static func readFailure(_ outcome: GetCoordinator.Outcome) -> String {
        let head = "only \(outcome.replies.count) of the required \(outcome.required) replicas answered"
        guard !outcome.failed.isEmpty else { return head + " in time" }
        let reasons = outcome.failed.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.prefix(200))" }
        return head + "; failed: " + reasons.joined(separator: "; ")
    }

    /// `X-Dynamo-Replica-Times: n1:0.000:0.412,n5>n3:1.203:-` (each replica asked: name,
    /// `>home` for a fallback, ms after the request came when it was sent, and when it
    /// answered: `-` not before the reply, `x` with a failure) and `X-Dynamo-Replied-Ms`.
    static func addTimes(_ trace: ReplicaTrace?, to headers: inout HTTPHeaders) {
        guard let trace else { return }
        // Microseconds as milliseconds with three decimals (String(format:) cost more than
        // the rest of a request's reply).
        func ms(_ us: UInt64) -> String {
            let fraction = String(us % 1000)
            return "\(us / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
        }
        let replicas = trace.replicas.map { replica in
            let name = replica.hintFor.map { "\(replica.node)>\($0)" } ?? replica.node
            let answered = replica.failure != nil ? "x" : replica.answeredUs.map(ms) ?? "-"
            return "\(name):\(ms(replica.sentUs)):\(answered)"
        }
        headers.add(name: "X-Dynamo-Replica-Times", value: replicas.joined(separator: ","))
        if let replied = trace.repliedUs { headers.add(name: "X-Dynamo-Replied-Ms", value: ms(replied)) }
    }

    /// `n1,n2,n5>n3`: the replicas asked, a fallback followed by the home node it stands in for.
    static func traceHeader(_ asked: [HintedReplica]) -> String {
        asked.map { replica in replica.hintFor.map { "\(replica.node)>\($0)" } ?? replica.node }.joined(separator: ",")
    }

    private func handleLocal(key: [UInt8]) -> EventLoopFuture<HTTPReply> {
        let store = self.store
        let loop = self.loop
        return pool.runIfActive(eventLoop: loop) { try store.object(for: key) }.flatMap { object in
            guard let object, !object.isEmpty else {
                return loop.makeSucceededFuture(.json(.notFound, ErrorDocument(error: "not stored on this node")))
            }
            let context = sealedContext(object.context, key: key)
            var headers = HTTPHeaders()
            headers.add(name: "X-Dynamo-Context", value: context)
            return siblingReply(.ok, object, context: context, headers: headers)
        }
    }

    /// Replaces this node's injected faults: the peers it cuts itself off from (both
    /// directions), and the delay, jitter and loss of what it sends to each peer.
    private func setFaults(_ body: [UInt8]) throws(APIError) -> HTTPReply {
        guard let document = try? JSONDecoder().decode(FaultsDocument.self, from: Data(body)) else {
            throw .badRequest(
                #"expected {"drop": ["NODE", ...], "delay": {"NODE": MS}, "jitter": {"NODE": MS}, "loss": {"NODE": 0.1}} (each optional)"#
            )
        }
        if let problem = document.problem { throw .badRequest(problem) }
        let unknown = document.peers.sorted().filter { machine.membership.member($0) == nil }
        guard unknown.isEmpty else {
            // Name a few, never echo an arbitrarily long list back.
            let shown = unknown.prefix(5).map { Self.excerpt($0, 32) }
            let more = unknown.count > shown.count ? " and \(unknown.count - shown.count) more" : ""
            throw .badRequest("unknown node(s): \(shown.joined(separator: ", "))\(more)")
        }
        if document.peers.subtracting(document.drop).contains(name) {
            throw .badRequest("a node's link to itself cannot be slowed or made lossy (\(name))")
        }
        let links = LinkFaults(
            delayMs: document.delay.mapValues { UInt64(clamping: $0) },
            jitterMs: document.jitter.mapValues { UInt64(clamping: $0) }, loss: document.loss)
        runtime.setFaults(drop: Set(document.drop), links: links)
        return .json(.ok, faultsDocument())
    }

    private func faultsDocument() -> FaultsDocument {
        let links = runtime.linkFaults
        return FaultsDocument(
            drop: machine.dropped.sorted(), delay: links.delayMs.mapValues { Int($0) },
            jitter: links.jitterMs.mapValues { Int($0) }, loss: links.loss)
    }

    static func traceDocument(node: NodeName, id: String, steps: [TraceStep]) -> TraceDocument {
        TraceDocument(
            node: node, id: id,
            steps: steps.map {
                TraceDocument.Step(
                    kind: $0.kind.rawValue, peer: $0.peer, message: $0.message?.name, detail: $0.detail,
                    monotonicUs: $0.monotonicUs, wallUs: $0.wallUs)
            })
    }

    func statusDocument() -> StatusDocument {
        let now = runtime.monotonicMs
        let membership = machine.membership
        // Members that left are listed apart; a node that left itself says `leaving` for
        // the moment until it exits.
        let members = membership.table.filter { $0.status != .left || $0.name == name }.map { member in
            let status = machine.status(of: member.name, at: now) ?? member.status
            return StatusDocument.MemberInfo(
                name: member.name,
                status: (status == .left ? .leaving : status).rawValue,
                peerAddress: member.peerAddress,
                httpAddress: member.httpAddress,
                tokens: member.tokens.map(\.hex),
                heartbeat: member.heartbeat,
                generation: member.generation,
                heartbeatAgeMs: membership.lastHeard[member.name].map { now > $0 ? now - $0 : 0 },
                phi: member.name == name
                    ? nil : (membership.detector.phi(of: member.name, at: now) * 100).rounded() / 100,
                reachable: member.name == name ? nil : runtime.isReachable(member.name))
        }
        let hintCounts = store.hintCounts
        return StatusDocument(
            node: name, members: members,
            hints: .init(
                pending: hintCounts.values.reduce(0, +), byTarget: hintCounts, delivered: machine.hintsDelivered),
            keys: store.keyCount,
            quorum: .init(
                n: config.quorum.n, r: config.quorum.r, w: config.quorum.w, policy: config.clocks.conflicts.rawValue,
                sloppy: config.sloppyQuorum),
            joined: membership.hasJoined, antiEntropy: antiEntropyStatus(), requests: runtime.requestStats.document,
            storage: .init(
                failures: runtime.storageFailures.count, lastError: runtime.storageFailures.last,
                lastErrorMsAgo: runtime.storageFailures.last == nil ? nil : now - min(now, runtime.storageFailures.atMs),
                lostAtStart: runtime.storeLoss, degraded: runtime.storageDegraded,
                batches: store.commitCounts.batches, syncs: store.commitCounts.syncs,
                batchedOperations: store.commitCounts.operations),
            objects: objectsStatus(now: now), departed: departed(now: now))
    }

    private func departed(now: UInt64) -> [StatusDocument.Departed] {
        let membership = machine.membership
        return membership.table.filter { $0.status == .left && $0.name != name }.map { member in
            .init(name: member.name, msAgo: now - min(now, membership.lastHeard[member.name] ?? now))
        }
    }

    private func objectsStatus(now: UInt64) -> StatusDocument.Objects {
        let limits = config.objectLimits
        let hot = machine.hotKeys
        return .init(
            warnSiblings: limits.warnSiblings, maxSiblings: limits.maxSiblings,
            warnObjectBytes: limits.warnObjectBytes, maxObjectBytes: limits.maxObjectBytes,
            writesRefused: hot.refusedWrites,
            nearLimits: hot.reports.map { report in
                .init(
                    key: KeyText.short(report.key), siblings: report.size.siblings, bytes: report.size.bytes,
                    refused: report.refused, msAgo: now - min(now, report.atMs))
            })
    }

    private func antiEntropyStatus() -> StatusDocument.AntiEntropy {
        let wall = config.wallMs
        let ranges = machine.exchanges.values.sorted { ($0.range, $0.peer) < ($1.range, $1.peer) }.map { record in
            StatusDocument.AntiEntropy.Exchange(
                range: record.range.description, peer: record.peer,
                lastComparedMsAgo: wall > record.at ? wall - record.at : 0, inSync: record.inSync,
                keysDiffering: record.keysDiffering, keysRepaired: record.keysRepaired,
                bytesReceived: record.bytesReceived)
        }
        return .init(
            trees: machine.trees.count, keysTracked: machine.trees.values.reduce(0) { $0 + $1.tree.count },
            exchanges: machine.exchangeCount, keysRepaired: machine.keysRepairedByExchange, ranges: ranges,
            tracked: machine.trees.values.sorted { $0.range < $1.range }.map {
                .init(range: $0.range.description, peers: $0.peers)
            })
    }
}
