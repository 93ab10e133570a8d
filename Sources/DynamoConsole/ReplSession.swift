public import DynamoAPI
public import DynamoClient
import DynamoCore
public import DynamoLauncher
import Foundation

/// What the console can do to node processes (only for nodes it started itself).
public protocol ClusterControl: AnyObject, Sendable {
    var nodeNames: [String] { get }
    func client(_ name: String) -> DynamoClient
    func kill(_ name: String) throws
    func stop(_ name: String) throws
    func restart(_ name: String) throws
    func addNode(_ name: String?) throws -> String
    /// Whether the node's process runs (nil: the console did not start it).
    func processRunning(_ name: String) -> Bool?
    /// Kills the node, deletes its data directory and starts it again.
    func wipe(_ name: String) throws
    /// Forgets a node that left the cluster and exited (gone from every view).
    func forget(_ name: String)
}

extension LocalCluster: ClusterControl {
    public var nodeNames: [String] { names }

    public func processRunning(_ name: String) -> Bool? { isRunning(name) }

    private func known(_ name: String) throws {
        guard names.contains(name) else {
            throw CommandError("no node named \(name) (nodes: \(names.joined(separator: " ")))")
        }
    }

    public func kill(_ name: String) throws {
        try running(name)
        stop(name, .kill)
    }

    public func stop(_ name: String) throws {
        try running(name)
        stop(name, .graceful)
    }

    /// A node that is not running cannot be stopped again: say so rather than "stopped".
    private func running(_ name: String) throws {
        try known(name)
        guard isRunning(name) else { throw CommandError("\(name) is not running (start it with `restart \(name)`)") }
    }

    public func restart(_ name: String) throws {
        try known(name)
        guard !isRunning(name) else { throw CommandError("\(name) is running") }
        try launch(name)
    }

    public func wipe(_ name: String) throws {
        try known(name)
        stop(name, .kill)
        if let directory = spec(name)?.dataDir { try? FileManager.default.removeItem(atPath: directory) }
        try launch(name)
    }

    public func addNode(_ name: String?) throws -> String {
        if let name, names.contains(name) { throw CommandError("there is already a node named \(name)") }
        let spec = try addNode(name: name)
        try launch(spec.name)
        return spec.name
    }
}

/// One console session: the state of the prompt (which node, R/W, tracing, the siblings
/// of the last read) and the execution of commands, with plain-text output.
public final class ReplSession: @unchecked Sendable {
    public let cluster: any ClusterControl
    public private(set) var node: String
    public private(set) var r: Int?
    public private(set) var w: Int?
    public private(set) var tracing = false
    /// The last read that returned several versions, for `resolve`.
    private var pending: (key: String, context: String?, siblings: [SiblingDocument.Sibling])?
    /// True right after a read showed siblings: the next line may resolve them.
    public private(set) var resolving = false

    /// `resolve> ` while siblings wait for a choice, else `dynamo> `.
    public var prompt: String { resolving ? "resolve> " : "dynamo> " }

    /// Keys used recently, for completion.
    public private(set) var recentKeys: [String] = []
    /// What this session did to the cluster, for the dashboard's event log (taken once).
    private var events: [String] = []
    /// What the session asked the dashboard to show (`view`, `events`), taken once; a plain
    /// prompt has no dashboard and says so.
    private var display: [Command] = []
    /// Whether a dashboard takes `display` (set by the screen).
    public var hasDashboard = false

    /// The partition last injected, as typed; empty after `heal`; nil when untouched.
    public private(set) var partitionText: String?

    /// The faults this session injected, per node: the peers it drops, and the delay,
    /// jitter and loss of what it sends to each peer. Every change sends a node its whole
    /// set (`POST /admin/faults` replaces them all).
    private var faults: [String: FaultsDocument] = [:]

    /// The slow and lossy links, for the dashboard's header (`n3 +300ms · n4 10% lost`);
    /// empty after `heal`; nil when untouched.
    public private(set) var linkText: String?

    /// The diagram of the last traced request (`trace show`, `trace save`).
    public private(set) var lastDiagram: SpaceTimeDiagram?
    /// The width diagrams are drawn for (the screen's), and whether they may use Unicode.
    public var diagramWidth = 80
    public var unicode = ReplSession.localeIsUTF8

    /// Whether the locale (LC_ALL, else LC_CTYPE, else LANG) is UTF-8: else diagrams are
    /// drawn in ASCII (the dashboard asks the terminal; a plain prompt asks this).
    public static var localeIsUTF8: Bool {
        let environment = ProcessInfo.processInfo.environment
        let locale = ["LC_ALL", "LC_CTYPE", "LANG"].lazy.compactMap { environment[$0] }.first { !$0.isEmpty } ?? ""
        let lowered = locale.lowercased()
        return lowered.contains("utf-8") || lowered.contains("utf8")
    }
    /// How long to wait for a trace's late answers and deadlines to be recorded.
    public var traceSettleTimeout: Duration = .milliseconds(2500)

    public init(cluster: any ClusterControl) {
        self.cluster = cluster
        self.node = cluster.nodeNames.first ?? ""
    }

    /// Whether `line` asks to leave (at `resolve>` only `:quit` does: `quit` is a value there).
    public func isQuit(_ line: String) -> Bool {
        let trimmed = line.trimmed()
        if resolving {
            guard trimmed.hasPrefix(":") else { return false }
            return Command.parse(String(trimmed.dropFirst())) == .success(.quit)
        }
        return Command.parse(trimmed) == .success(.quit)
    }

    /// Runs one line; returns what to print and whether the session should end.
    public func run(_ line: String) async -> (output: [String], quit: Bool) {
        if resolving {
            // Right after a read with siblings the prompt is `resolve>`: a number keeps that
            // sibling, Enter leaves them, `:` runs a command, anything else is the merged
            // value (even text that starts with a command's name: `get well soon` once ran
            // `get` instead of being written).
            resolving = false
            let trimmed = line.trimmed()
            if trimmed.isEmpty { return (["left as is: the siblings stay until a write with their context"], false) }
            guard trimmed.hasPrefix(":") else { return await run("resolve \(trimmed)") }
            return await run(String(trimmed.dropFirst()))
        }
        switch Command.parse(line) {
        case .failure(let error):
            return (error.message.isEmpty ? [] : ["error: \(error.message)"], false)
        case .success(.quit):
            return ([], true)
        case .success(let command):
            do {
                return (try await execute(command), false)
            } catch let error as CommandError {
                return (["error: \(error.message)"], false)
            } catch {
                return (["error: \(error)"], false)
            }
        }
    }

    /// The session's actions since the last call (partitions, kills, restarts...).
    public func takeEvents() -> [String] {
        defer { events = [] }
        return events
    }

    /// The dashboard requests since the last call (`view` and `events` commands).
    public func takeDisplayRequests() -> [Command] {
        defer { display = [] }
        return display
    }

    private func remember(_ key: String) {
        recentKeys.removeAll { $0 == key }
        recentKeys.insert(key, at: 0)
        if recentKeys.count > 50 { recentKeys.removeLast() }
    }

    /// Sends each node in `nodes` its whole set of faults. A node that does not answer
    /// (down) cannot take its faults, which is fine and said; one that refuses (a wrong or
    /// missing cluster secret) makes the command fail, so nothing claims a fault that is
    /// not there.
    private func applyFaults(_ nodes: [String]) async throws -> [String] {
        var unreached: [String] = []
        var refusals: [String] = []
        for name in Set(nodes).sorted() {
            do {
                try await cluster.client(name).setFaults(faults[name] ?? FaultsDocument(drop: []))
            } catch ClientError.badResponse(let reason) {
                refusals.append(reason)
            } catch {
                unreached.append(name)
            }
        }
        guard refusals.isEmpty else {
            throw CommandError(
                refusals.joined(separator: "; ")
                    + " (the nodes need the cluster secret: set DYNAMO_CLUSTER_SECRET)")
        }
        return unreached.isEmpty ? [] : ["(not reached, down: \(unreached.joined(separator: ", ")))"]
    }

    /// The slow and lossy links as the header says them.
    private func describeLinks() -> String {
        var parts: [String] = []
        for (node, document) in faults.sorted(by: { $0.key < $1.key }) {
            let others = cluster.nodeNames.filter { $0 != node }
            func scope(_ peers: [String]) -> String {
                Set(peers) == Set(others) ? node : "\(node)→\(peers.sorted().joined(separator: ","))"
            }
            // Group peers by the same setting.
            var delays: [String: [String]] = [:]
            for (peer, ms) in document.delay {
                let jitter = document.jitter[peer].map { "±\($0)" } ?? ""
                delays["+\(ms)\(jitter)ms", default: []].append(peer)
            }
            for (text, peers) in delays.sorted(by: { $0.key < $1.key }) { parts.append("\(scope(peers)) \(text)") }
            var losses: [String: [String]] = [:]
            for (peer, fraction) in document.loss {
                losses[Self.percent(fraction) + " lost", default: []].append(peer)
            }
            for (text, peers) in losses.sorted(by: { $0.key < $1.key }) { parts.append("\(scope(peers)) \(text)") }
        }
        return parts.joined(separator: " · ")
    }

    static func percent(_ fraction: Double) -> String {
        let value = fraction * 100
        return value == value.rounded() ? "\(Int(value))%" : String(format: "%.1f%%", value)
    }

    /// The peers a `slow`/`lossy` on `name` applies to: `peer`, or every other node.
    private func targets(of name: String, peer: String?) throws -> [String] {
        _ = try node(name)
        if let peer {
            _ = try node(peer)
            guard peer != name else { throw CommandError("a node's link to itself cannot be slowed") }
            return [peer]
        }
        return cluster.nodeNames.filter { $0 != name }
    }

    /// `slow` and `lossy`: changes NODE's faults for its link to PEER (or to every other
    /// node), sends NODE its whole set, and says what now happens (`text` of the scope).
    private func shapeLinks(
        of name: String, peer: String?, _ change: (inout FaultsDocument, String) -> Void,
        saying text: (String) -> String
    ) async throws -> [String] {
        for target in try targets(of: name, peer: peer) { change(&faults[name, default: FaultsDocument(drop: [])], target) }
        let unreached = try await applyFaults([name])
        linkText = describeLinks()
        let said = text(peer.map { "to \($0)" } ?? "to every node")
        events.append(said)
        return [said] + unreached
    }

    // MARK: Traces

    /// The diagram of traced request `id`: every node's part, fetched once the trace is
    /// complete (every message answered or past its deadline) or `traceSettleTimeout`
    /// passed; nil when no node kept one.
    private func diagram(of id: String) async -> SpaceTimeDiagram? {
        let deadline = ContinuousClock.now + traceSettleTimeout
        var parts: [TraceDocument] = []
        while true {
            parts = await traceParts(id)
            if SpaceTimeDiagram.isComplete(parts) || ContinuousClock.now >= deadline { break }
            try? await Task.sleep(for: .milliseconds(100))
        }
        guard !parts.isEmpty else { return nil }
        return SpaceTimeDiagram(id: id, parts: parts)
    }

    private func traceParts(_ id: String) async -> [TraceDocument] {
        let cluster = self.cluster
        return await withTaskGroup(of: TraceDocument?.self) { group in
            for name in cluster.nodeNames {
                group.addTask { try? await cluster.client(name).trace(id, timeout: .milliseconds(800)) }
            }
            var parts: [TraceDocument] = []
            for await part in group { if let part { parts.append(part) } }
            return parts.sorted { $0.node < $1.node }
        }
    }

    /// A traced request's diagram lines (and it becomes the last diagram), or `fallback`
    /// (the coordinator's own account) when no node kept a trace.
    private func traced(_ requestId: String?, fallback: [String]) async -> [String] {
        guard tracing else { return [] }
        guard let requestId, let diagram = await diagram(of: requestId) else {
            return fallback + ["(no node kept a trace of this request)"]
        }
        lastDiagram = diagram
        return diagram.lines(width: diagramWidth, unicode: unicode)
    }

    private func node(_ name: String) throws -> String {
        guard cluster.nodeNames.contains(name) else {
            throw CommandError("no node named \(name) (nodes: \(cluster.nodeNames.joined(separator: " ")))")
        }
        return name
    }

    private var client: DynamoClient { cluster.client(node) }

    private func execute(_ command: Command) async throws -> [String] {
        switch command {
        case .help(let topic):
            guard let topic else {
                return ["commands:"]
                    + Command.reference.map {
                        "  \($0.usage.padding(toLength: 26, withPad: " ", startingAt: 0)) \($0.summary)"
                    }
            }
            guard let entry = Command.reference.first(where: { $0.name == topic.lowercased() }) else {
                throw CommandError("no command '\(topic)'; type help for the list")
            }
            return ["\(entry.usage)", "  \(entry.summary)"]
        case .status:
            var lines: [String] = []
            for name in cluster.nodeNames {
                do {
                    let status = try await cluster.client(name).status()
                    let view = status.members.map { "\($0.name):\($0.status)" }.joined(separator: " ")
                    lines.append("\(name)  \(status.keys) keys  \(status.hints.pending) hints  sees \(view)")
                } catch {
                    lines.append("\(name)  not answering")
                }
            }
            if let partitionText, !partitionText.isEmpty { lines.append("injected: partition \(partitionText)") }
            if let linkText, !linkText.isEmpty { lines.append("injected: slow/lossy \(linkText)") }
            return lines
        case .get(let key):
            remember(key)
            let result = try await client.get(Array(key.utf8), r: r, trace: tracing, requestId: newTraceId())
            let trace = await traced(
                result.requestId,
                fallback: Render.trace(
                    result.times, repliedMs: result.repliedMs, coordinator: result.coordinator, asked: result.asked,
                    answered: result.replicas, verb: "answered", succeeded: result.status < 500))
            if result.status == 300, let document = result.document {
                pending = (key, result.context, document.siblings)
                resolving = true
                return Render.read(result).split(separator: "\n").map(String.init) + trace + [
                    "resolve: a number keeps that sibling, other text is the merged value, Enter leaves them, :CMD runs a command"
                ]
            }
            pending = nil
            return Render.read(result).split(separator: "\n").map(String.init) + trace
        case .put(let key, let value):
            // Like a real client: read first, then write with the context of what was read,
            // so the write supersedes it (a blind write would only add a sibling).
            remember(key)
            let read = try await client.get(Array(key.utf8), r: r)
            return await render(
                try await client.put(
                    Array(key.utf8), value: Array(value.utf8), context: read.context, w: w, trace: tracing,
                    requestId: newTraceId()), after: read)
        case .delete(let key):
            remember(key)
            let read = try await client.get(Array(key.utf8), r: r)
            if read.status == 404 { return ["\(key): not found (never written, or already deleted): nothing to delete"] }
            return await render(
                try await client.delete(
                    Array(key.utf8), context: read.context, w: w, trace: tracing, requestId: newTraceId()), after: read)
        case .preflist(let key):
            remember(key)
            let document = try await client.preferenceList(Array(key.utf8))
            return ["\(key): hash \(document.hash), home nodes \(document.preferenceList.joined(separator: " "))"]
        case .use(let name):
            node = try node(name)
            return ["requests now go to \(node)"]
        case .setR(let n):
            try await checkQuorum("R", n)
            r = n
            return ["R = \(n) for this session"]
        case .setW(let n):
            try await checkQuorum("W", n)
            w = n
            return ["W = \(n) for this session"]
        case .trace(let on):
            tracing = on
            return [
                on
                    ? "trace on: each get, put and delete is drawn as a diagram of its messages (trace save FILE.svg keeps the last)"
                    : "trace off"
            ]
        case .traceShow:
            guard let lastDiagram else { throw CommandError("no traced request yet: trace on, then get, put or delete") }
            return lastDiagram.lines(width: diagramWidth, unicode: unicode)
        case .traceSave(let path):
            guard let lastDiagram else { throw CommandError("no traced request yet: trace on, then get, put or delete") }
            try Self.writeRegularFile(path, lastDiagram.svg())
            return ["saved the diagram of \(lastDiagram.request) to \(path) (\(lastDiagram.lanes.count) lanes, \(lastDiagram.messages.count) messages)"]
        case .slow(let name, let ms, let jitter, let peer):
            return try await shapeLinks(of: name, peer: peer) { document, target in
                document.delay[target] = ms > 0 ? ms : nil
                document.jitter[target] = ms > 0 && jitter > 0 ? jitter : nil
            } saying: { scope in
                ms == 0
                    ? "\(name): messages \(scope) no longer delayed"
                    : "\(name): messages \(scope) take \(ms) ms longer\(jitter > 0 ? " (± \(jitter) ms)" : ""): every round trip through that link is that much slower"
            }
        case .lossy(let name, let percent, let peer):
            return try await shapeLinks(of: name, peer: peer) { document, target in
                document.loss[target] = percent > 0 ? percent / 100 : nil
            } saying: { scope in
                percent == 0
                    ? "\(name): no messages \(scope) lost any more"
                    : "\(name): loses \(Self.percent(percent / 100)) of its messages \(scope): requests to it time out now and then, and lost gossip gets it marked down at times (fallbacks then keep hints for it)"
            }
        case .latency:
            var lines = [
                "write latency by W, from each node's stats (the writes it received, last 256 per W):",
                "  node  W   writes       p50       p99",
            ]
            var unreached: [String] = []
            for name in cluster.nodeNames {
                guard let status = try? await cluster.client(name).status(timeout: .seconds(2)) else {
                    unreached.append(name)
                    continue
                }
                let byW = (status.requests?.writesByW ?? [:]).sorted { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }
                for (w, q) in byW {
                    lines.append(
                        "  " + [
                            name.padding(toLength: 5, withPad: " ", startingAt: 0), w.padding(toLength: 2, withPad: " ", startingAt: 0),
                            Render.right("\(q.count)", 7), Render.right(Render.ms(q.p50Ms) + " ms", 9),
                            Render.right(Render.ms(q.p99Ms) + " ms", 9),
                        ].joined(separator: " "))
                }
            }
            if lines.count == 2 { lines = ["no writes yet: put or fill some keys first"] }
            return lines + (unreached.isEmpty ? [] : ["(not answering: \(unreached.joined(separator: ", ")))"])
        case .repeated(let count, let command):
            var errors = 0
            var last: [String] = []
            var done = 0
            let deadline = ContinuousClock.now + Self.repeatLimit
            for _ in 0..<count {
                // Bounded in time too: a slow or lossy cluster must not hold the prompt.
                guard ContinuousClock.now < deadline else { break }
                done += 1
                do {
                    last = try await execute(command)
                } catch let error as CommandError {
                    last = ["error: \(error.message)"]
                }
                if last.contains(where: { $0.hasPrefix("error") }) { errors += 1 }
            }
            var summary = "ran it \(done) times: \(done - errors) ok" + (errors > 0 ? ", \(errors) with an error" : "")
            if done < count { summary += " (stopped after \(Self.repeatLimit); \(count - done) not run)" }
            return [summary] + (errors > 0 ? ["last: " + (last.first ?? "")] : [])
        case .resolvePick(let index):
            guard let pending else { throw CommandError("nothing to resolve: get a key with siblings first") }
            guard (1...pending.siblings.count).contains(index), let bytes = pending.siblings[index - 1].bytes else {
                throw CommandError("pick a live sibling between 1 and \(pending.siblings.count)")
            }
            return try await resolve(with: bytes)
        case .resolveValue(let value):
            guard pending != nil else { throw CommandError("nothing to resolve: get a key with siblings first") }
            return try await resolve(with: Array(value.utf8))
        case .partition(let groups):
            for name in groups.flatMap({ $0 }) { _ = try node(name) }
            for (name, drop) in FaultsDocument.partition(groups, of: cluster.nodeNames) {
                var document = faults[name] ?? FaultsDocument(drop: [])
                document.drop = drop
                faults[name] = document
            }
            let unreached = try await applyFaults(cluster.nodeNames)
            let text = groups.map { $0.joined(separator: ",") }.joined(separator: " | ")
            partitionText = text
            events.append("partition injected: \(text)")
            return ["partitioned: " + text] + unreached
        case .isolate(let name):
            _ = try node(name)
            return try await execute(.partition([[name], cluster.nodeNames.filter { $0 != name }]))
        case .heal:
            let hadLinks = !(linkText ?? "").isEmpty
            let hadPartition = !(partitionText ?? "").isEmpty
            faults = [:]
            let unreached = try await applyFaults(cluster.nodeNames)
            partitionText = ""
            linkText = ""
            if hadPartition || !hadLinks { events.append("partition healed") }
            if hadLinks { events.append("slow and lossy links healed") }
            return ["healed: every node talks to every node, no link slowed or lossy"] + unreached
        case .kill(let name):
            try cluster.kill(name)
            events.append("\(name) killed (SIGKILL) from the console")
            return ["\(name) killed (SIGKILL)"]
        case .stop(let name):
            try cluster.stop(name)
            events.append("\(name) stopped (SIGTERM) from the console")
            return ["\(name) stopped"]
        case .restart(let name):
            try cluster.restart(name)
            events.append("\(name) restarted from the console")
            return ["\(name) restarting"]
        case .addNode(let name):
            let added = try cluster.addNode(name)
            events.append("\(added) added: joining")
            return ["\(added) starting; it joins and takes its ranges"]
        case .remove(let name):
            let result = try await cluster.client(try node(name)).raw(.POST, "/admin/leave")
            guard result.status == 202 else { throw CommandError("\(name) refused to leave: \(result.bodyText)") }
            events.append("\(name) asked to leave")
            return ["\(name) is leaving: handing its ranges to the others, then it exits"]
        case .fill(let prefix, let count):
            var failed = 0
            for i in 1...count {
                let result = try await client.put(Array("\(prefix)\(i)".utf8), value: Array("v\(i)".utf8), w: w)
                if !result.succeeded { failed += 1 }
            }
            events.append("filled \(count) keys \(prefix)1..\(prefix)\(count)")
            return ["ok: wrote \(count - failed) of \(count) keys \(prefix)1..\(prefix)\(count) via \(node)"]
                + (failed > 0 ? ["error: \(failed) writes failed"] : [])
        case .local(let name, let key):
            remember(key)
            guard let document = try await cluster.client(try node(name)).local(Array(key.utf8)) else {
                return ["\(name) stores nothing for \(key)"]
            }
            return ["\(name) stores \(document.siblings.count) version(s) of \(key):"]
                + document.siblings.map { sibling in
                    "  \(sibling.deleted ? "<deleted>" : Render.printable(sibling.bytes ?? []))    clock \(Render.clock(sibling.clock))"
                }
        case .wipe(let name):
            try cluster.wipe(name)
            events.append("\(name) wiped: killed, data deleted, restarted empty")
            return ["\(name) wiped and restarting empty: it rejoins and pulls its ranges back"]
        case .ring(let name):
            if let name { _ = try node(name) }
            let status = try await client.status()
            var tokens: [String: [RingPosition]] = [:]
            for member in status.members { tokens[member.name] = member.tokens.compactMap(RingPosition.init(hex:)) }
            let focus = recentKeys.first.map { RingPosition.of(key: Array($0.utf8)) }
            return RingView.tableLines(ring: Ring(nodes: tokens), n: status.quorum?.n ?? 3, node: name, focus: focus)
        case .view(let panel):
            guard hasDashboard else { return ["(view \(panel.rawValue): a view of the dashboard, and this prompt has none)"] }
            display.append(command)
            return [panel == .all ? "view all: every panel (F2)" : "view \(panel.rawValue): \(panel.summary) (\(panel.key); F2 or view all for every panel)"]
        case .events(let action):
            guard hasDashboard else { return ["(events changes the dashboard's log: this prompt has none)"] }
            display.append(command)
            switch action {
            case .pause: return ["events paused: new ones are counted in the log's title (events resume)"]
            case .resume: return ["events resumed"]
            case .filter(let text?): return ["events: only those containing '\(text)' (events all shows every one)"]
            case .filter(nil): return ["events: every event"]
            }
        case .quit:
            return []
        }
    }

    /// Writes the chosen or merged value with the merged context of the siblings read.
    /// R and W count replicas: more than N can never be met (every read or write would fail).
    private func checkQuorum(_ name: String, _ n: Int) async throws {
        guard let replicas = try? await client.status(timeout: .seconds(2)).quorum?.n, n > replicas else { return }
        throw CommandError("\(name) \(n) is more than the \(replicas) replicas of each key (N=\(replicas)): at most \(replicas)")
    }

    private func resolve(with value: [UInt8]) async throws -> [String] {
        guard let pending else { return [] }
        let result = try await client.put(
            Array(pending.key.utf8), value: value, context: pending.context, w: w, trace: tracing,
            requestId: newTraceId())
        self.pending = nil
        return await render(result)
    }

    /// A fresh, unguessable id for a traced request, so no other client's request (by
    /// chance or on purpose) lands in its diagram; nil when not tracing.
    private func newTraceId() -> String? {
        guard tracing else { return nil }
        var rng = SystemRandomNumberGenerator()
        return "trace-" + String(rng.next() as UInt64, radix: 16)
    }

    /// `after`: the read the write took its context from (a failed one is said: the write
    /// then went without a context, and may add a sibling).
    private func render(_ result: WriteResponse, after read: ReadResult? = nil) async -> [String] {
        var lines = Render.write(result).split(separator: "\n").map(String.init)
        if result.succeeded { lines.removeLast() }  // the context line
        if let read, read.status >= 500 {
            lines.append(
                "note: the read before this write failed (\(read.status)), so it went without a context and may add a sibling")
        }
        lines += await traced(
            result.requestId,
            fallback: Render.trace(
                result.times, repliedMs: result.repliedMs, coordinator: result.coordinator, asked: result.asked,
                answered: result.replicas, verb: "acknowledged", succeeded: result.succeeded))
        return lines
    }

    /// The longest a `repeat` runs.
    static let repeatLimit: Duration = .seconds(60)

    /// Writes `text` to `path`, a regular file (made if missing, its mode kept if not);
    /// anything else (a directory, a device, a pipe, a symbolic link) is refused, never
    /// replaced.
    static func writeRegularFile(_ path: String, _ text: String) throws {
        if let attributes = try? FileManager.default.attributesOfItem(atPath: path) {
            let type = attributes[.type] as? FileAttributeType
            guard type == .typeRegular else {
                let what: String
                switch type {
                case .typeDirectory?: what = "a directory"
                case .typeSymbolicLink?: what = "a symbolic link (give the file it points to)"
                default: what = "not a regular file"
                }
                throw CommandError("cannot write \(path): it is \(what)")
            }
        }
        do {
            try text.write(toFile: path, atomically: false, encoding: .utf8)
        } catch {
            let reason = (error as NSError).userInfo[NSUnderlyingErrorKey].map { "\($0)" } ?? error.localizedDescription
            throw CommandError("cannot write \(path): \(reason)")
        }
    }
}
