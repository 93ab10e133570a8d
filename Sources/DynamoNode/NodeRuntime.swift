import DynamoAPI
import DynamoCore
import DynamoStorage
import DynamoWire
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The shell around one node's `NodeMachine`.
///
/// It only executes what the machine asks for: requests go out on persistent peer links,
/// answers go back on the connection they came from, storage operations run on `pool`
/// (they block; a loop turn's changes as one write batch), and client promises are
/// completed. Everything here runs on `loop`, the node's protocol loop, as do the peer
/// channel handlers and the HTTP frontend (HTTP connections live on loops of their own and
/// hand each request over), so no locks are needed.
final class NodeRuntime: @unchecked Sendable {
    let config: NodeConfig
    let loop: any EventLoop
    let pool: NIOThreadPool
    /// Encodes multi-megabyte sibling documents: off the event loop (which serves every
    /// peer) and off `pool` (whose threads the writes' own storage operations need).
    let renderPool = NIOThreadPool(numberOfThreads: 1)
    let store: ReplicaStore
    let logger: Logger
    let name: NodeName
    /// TLS for both ports and outbound peer links (nil: plain TCP).
    let tls: NodeTLS.Contexts?
    /// Keeps floods of bad connections from flooding the log.
    let logLimiter = LogLimiter()

    private(set) var machine: NodeMachine
    var links: [String: PeerLink] = [:]
    /// Outgoing request id -> the link it was written on (to fail it if the link drops).
    private var requestLinks: [PeerRequestID: PeerLink] = [:]
    /// Inbound request handle -> where to send the answer (and the id the peer gave it).
    private var inbound: [PeerHandle: (channel: any Channel, requestID: UInt64, peer: NodeName)] = [:]
    /// Slow and lossy links (`POST /admin/faults`): applied to each message sent.
    private(set) var linkFaults = LinkFaults()
    private var faultRandom = SystemRandomNumberGenerator()
    /// Messages slow links hold back (see `HoldBackBudget`), each until its delay passes,
    /// or the faults change: then what a cut link held is dropped and the rest goes now.
    private var heldBack = HoldBackBudget()
    private var held: [UInt64: (task: Scheduled<Void>, peer: NodeName, bytes: Int, deliver: () -> Void)] = [:]
    private var nextHeld: UInt64 = 0
    /// Client requests waiting for the machine's answer.
    private var reads: [ClientRequestID: EventLoopPromise<GetCoordinator.Outcome>] = [:]
    private var writes: [ClientRequestID: EventLoopPromise<WriteResult>] = [:]
    private var nextHandle: UInt64 = 1
    /// Recent events and client request statistics, for `/admin/events` and the status.
    var events = EventLog()
    private(set) var requestStats = RequestStats()
    /// `/metrics` (see `NodeMetrics`).
    let metrics = NodeMetrics()
    /// Client requests being served, for a graceful stop (see `DrainGate`).
    let drainGate = DrainGate()

    /// How often the machine's timers (deadlines, gossip, hints) are checked.
    static let tickIntervalMs: Int64 = 20

    /// A peer connection must finish its handshake within this, or it is closed.
    var handshakeTimeout: TimeAmount { .milliseconds(Int64(max(config.quorum.requestTimeoutMs, 5_000))) }

    /// Completed once a leaving node holds no data and no hints (the process then exits).
    let left: EventLoopPromise<Void>
    private var leaveRequestedAt: UInt64?

    init(
        config: NodeConfig, identity: NodeIdentity, loop: any EventLoop, pool: NIOThreadPool, store: ReplicaStore,
        logger: Logger, tls: NodeTLS.Contexts? = nil, keeper: StoreKeeper, storeLoss: String? = nil
    ) {
        self.keeper = keeper
        self.storeLoss = storeLoss
        self.tls = tls
        self.config = config
        self.loop = loop
        self.pool = pool
        renderPool.start()
        self.store = store
        self.logger = logger
        self.name = config.name
        self.requestPrefix = Self.requestIdPrefix(config.name)
        let settings = NodeSettings(
            name: config.name, peerAddress: config.peerAddress, httpAddress: config.httpAddress,
            tokens: identity.tokens, generation: identity.generation, seeds: config.seeds, quorum: config.quorum,
            clocks: config.clocks, gossipIntervalMs: config.gossipIntervalMs, hintIntervalMs: config.hintIntervalMs,
            tombstoneSweepIntervalMs: config.tombstoneSweepIntervalMs, durability: config.durability,
            freshIdentity: identity.isFresh, antiEntropyIntervalMs: config.antiEntropyIntervalMs,
            sloppyQuorum: config.sloppyQuorum, clusterKey: config.clusterKey, dotFloor: identity.dotFloor,
            objectLimits: config.objectLimits, awaitPeers: storeLoss != nil && identity.isFresh && config.seeds.isEmpty)
        self.machine = NodeMachine(settings: settings, seed: UInt64.random(in: .min ... .max))
        self.left = loop.makePromise(of: Void.self)
        if storeLoss != nil {
            events.append(.storeLost, on: config.name, wallMs: now.wallMs)
        }
    }

    /// Starts a graceful leave: every range and hint goes to other nodes, then the node exits.
    func leave() -> (keys: Int, hints: Int) {
        if leaveRequestedAt == nil { leaveRequestedAt = monotonicMs }
        handle(.leave)
        return (store.keyCount, store.hintCounts.values.reduce(0, +))
    }

    /// Called every tick: a leaving node that handed everything off, and gave gossip a few
    /// rounds to tell the others it is leaving, departs (declares itself `left` and tells
    /// every member); once a member took that, it records in its data dir that it left,
    /// and is done.
    func checkLeft() {
        guard let since = leaveRequestedAt, monotonicMs >= since + 3 * config.gossipIntervalMs,
            store.keyCount == 0, store.hintCounts.isEmpty
        else { return }
        if machine.membership.local.status == .leaving { handle(.depart) }
        guard machine.hasDeparted else { return }
        leaveRequestedAt = nil
        logger.notice("left the cluster: every range and hint handed to other nodes")
        let (store, logger, left, wallMs) = (self.store, self.logger, self.left, config.wallMs)
        pool.runIfActive(eventLoop: loop) { try NodeIdentity.markLeft(in: store, nowMs: wallMs) }.whenComplete {
            if case .failure(let error) = $0 { logger.error("cannot record the leave in the data dir: \(error)") }
            left.succeed()
        }
    }

    // MARK: Time

    /// Monotonic milliseconds, for deadlines.
    var monotonicMs: UInt64 { NIODeadline.now().uptimeNanoseconds / 1_000_000 }

    var now: NodeMachine.Now {
        let nanoseconds = NIODeadline.now().uptimeNanoseconds
        let wall = config.wallClock
        return NodeMachine.Now(
            monotonicMs: nanoseconds / 1_000_000, wallMs: wall.ms, monotonicUs: nanoseconds / 1_000, wallUs: wall.us)
    }

    // MARK: Driving the machine

    func handle(_ input: NodeMachine.Input) {
        loop.preconditionInEventLoop()
        execute(machine.handle(input, now: now))
    }

    private func execute(_ actions: [NodeMachine.Action]) {
        for action in actions {
            switch action {
            case .send(let requestID, let address, let request):
                if let problem = PeerCodec.tooLarge(.request(id: requestID.value, request)) {
                    logger.warning("not sending a request to \(address): \(problem)")
                    loop.execute { self.handle(.peerResponse(requestID: requestID, .error(problem))) }
                    continue
                }
                // (A lost request's deadline fails it, as a lost packet would.)
                if !linkFaults.isEmpty, let peer = machine.membership.member(atAddress: address)?.name,
                    shaped(.request(id: requestID.value, request), to: peer, deliver: {
                        self.send(requestID, to: address, request)
                    })
                {
                    continue
                }
                send(requestID, to: address, request)
            case .respond(let handle, let response):
                if case .coordinated(let result) = response {
                    if let micros = result.trace?.repliedUs { metrics.coordinated(.write, micros: micros) }
                    if let (id, peer, at) = forwarded.removeValue(forKey: handle) {
                        logRequest(
                            id,
                            "coordinated a write forwarded by \(peer): \(result.succeeded ? "ok" : "failed"), acks \(result.acks.joined(separator: ",")) of \(result.required), \((NIODeadline.now() - at).nanoseconds / 1000) us"
                        )
                    }
                } else {
                    forwarded[handle] = nil
                }
                guard let target = inbound.removeValue(forKey: handle) else { continue }
                var message = PeerMessage.response(id: target.requestID, response)
                if let problem = PeerCodec.tooLarge(message) {
                    logger.warning("answering a peer with an error: \(problem)")
                    message = .response(id: target.requestID, .error(problem))
                }
                // (Checked first: without slow or lossy links no closure is built.)
                if !linkFaults.isEmpty {
                    let (channel, answer) = (target.channel, message)
                    if shaped(answer, to: target.peer, deliver: { channel.writeAndFlush(answer, promise: nil) }) { continue }
                }
                target.channel.write(message, promise: nil)
                flushSoon(target.channel)
            case .ignore(let handle):
                inbound[handle] = nil
                forwarded[handle] = nil
            case .identityChanged(let generation, let dotFloor):
                persistIdentity("the node's new generation") {
                    try NodeIdentity.update(in: $0, generation: generation, dotFloor: dotFloor)
                }
            case .joined(let dotFloor):
                persistIdentity("the completed join") { try NodeIdentity.markJoined(in: $0, dotFloor: dotFloor) }
            case .storage(let token, let op):
                if case .merge(_, _, let target?, _) = op { metrics.hintStored(for: target) }
                if op.changesData {
                    pendingChanges.append((token, op))
                } else if case .read = op {
                    pendingReads.append((token, op))
                } else {
                    // Scans (a tree build, a tombstone sweep, a handoff) run alone: a
                    // client's read must not wait behind one.
                    perform([(token, op)])
                }
                atEndOfTurn()
            case .readReply(let client, let outcome):
                if let micros = outcome.trace?.repliedUs { metrics.coordinated(.get, micros: micros) }
                if outcome.succeeded, !outcome.object.isEmpty { metrics.read(siblings: outcome.object.versions.count) }
                reads.removeValue(forKey: client)?.succeed(outcome)
            case .writeReply(let client, let result):
                // (A write forwarded to another coordinator comes back without a trace.)
                if let micros = result.trace?.repliedUs { metrics.coordinated(.write, micros: micros) }
                writes.removeValue(forKey: client)?.succeed(result)
            case .event(let event):
                metrics.observe(event)
                logger.info("\(event.text(node: name))")
                events.append(event, on: name, wallMs: now.wallMs)
            case .objectNearLimit(let report):
                if let text = logLimiter.admit("object-limits", Self.warning(report, limits: config.objectLimits)) {
                    logger.warning("\(text)")
                }
            }
        }
    }

    /// Whether a slow or lossy link takes `message` to `peer` out of this turn: lost, or
    /// held back for `deliver` to send later. False: it goes now.
    private func shaped(_ message: PeerMessage, to peer: NodeName, deliver: @escaping () -> Void) -> Bool {
        switch linkFaults.fate(to: peer, using: &faultRandom) {
        case .lose:
            return true
        case .deliver(let ms) where ms > 0:
            holdBack(message, to: peer, ms: ms, deliver: deliver)
            return true
        case .deliver:
            return false
        }
    }

    /// Runs `deliver` after `ms`, unless the messages held back are at their bound: the
    /// message is then lost (said in the log, at most once per interval).
    private func holdBack(_ message: PeerMessage, to peer: NodeName, ms: UInt64, deliver: @escaping () -> Void) {
        let bytes = PeerCodec.approximateBytes(message)
        guard heldBack.take(bytes) else {
            let text =
                "slow links hold back \(heldBack.messages) messages (\(heldBack.bytes >> 20) MiB), their bound: further ones are lost"
            if let text = logLimiter.admit("held back", text) { logger.warning("\(text)") }
            return
        }
        nextHeld += 1
        let id = nextHeld
        let task = loop.scheduleTask(in: .milliseconds(Int64(ms))) { self.release(held: id) }
        held[id] = (task, peer, bytes, deliver)
    }

    /// A held message's time came (or the faults changed): it goes, unless its peer is cut
    /// off by now.
    private func release(held id: UInt64) {
        guard let entry = held.removeValue(forKey: id) else { return }
        heldBack.give(entry.bytes)
        guard !machine.dropped.contains(entry.peer) else { return }
        entry.deliver()
    }

    /// Writes a request on the link to `address` (opened if need be).
    private func send(_ requestID: PeerRequestID, to address: String, _ request: PeerRequest) {
        let link = links[address] ?? openLink(to: address)
        link.inflight.insert(requestID)
        requestLinks[requestID] = link
        if let channel = link.send(.request(id: requestID.value, request)) { flushSoon(channel) }
    }

    // MARK: The end of a turn of the loop

    /// Work gathered while the loop handles one wakeup's events (every request that
    /// arrived with it), and done once at the end: storage in batches, peer writes in one
    /// flush per connection.
    private var endOfTurnScheduled = false

    private func atEndOfTurn() {
        guard !endOfTurnScheduled else { return }
        endOfTurnScheduled = true
        loop.execute {
            self.endOfTurnScheduled = false
            while !self.pendingReads.isEmpty {
                let reads = Array(self.pendingReads.prefix(Self.maxBatch))
                self.pendingReads.removeFirst(reads.count)
                self.perform(reads)
            }
            self.writeBatch()
            let channels = self.unflushed.values
            self.unflushed = [:]
            for channel in channels { channel.flush() }
        }
    }

    /// Peer connections written to in this turn of the loop, flushed together at its end:
    /// the replica requests (or answers) of every client request that arrived with one
    /// wakeup leave in one system call per peer instead of one each.
    private var unflushed: [ObjectIdentifier: any Channel] = [:]

    private func flushSoon(_ channel: any Channel) {
        unflushed[ObjectIdentifier(channel)] = channel
        atEndOfTurn()
    }

    /// Key reads of this turn: they go to the pool as one job (one thread hop for all),
    /// beside a write batch.
    private var pendingReads: [(token: StorageToken, op: StorageOp)] = []

    // MARK: Group commit

    /// Storage changes waiting for the next write batch.
    private var pendingChanges: [(token: StorageToken, op: StorageOp)] = []
    /// A write batch is being written: changes wait for it, and go as the next one. One
    /// sync then covers every write of the batch.
    private var batchInFlight = false
    /// The most operations in one pool job (bounds its latency and memory).
    static let maxBatch = 512

    /// The most value bytes in one write batch (one log record): a batch of big objects
    /// stops here.
    static let maxBatchBytes = 8 << 20

    private func writeBatch() {
        guard !batchInFlight, !pendingChanges.isEmpty else { return }
        var count = 0
        var bytes = 0
        for entry in pendingChanges.prefix(Self.maxBatch) {
            bytes += entry.op.valueBytes
            if count > 0, bytes > Self.maxBatchBytes { break }
            count += 1
        }
        let batch = Array(pendingChanges.prefix(count))
        pendingChanges.removeFirst(count)
        batchInFlight = true
        perform(batch) {
            self.batchInFlight = false
            self.writeBatch()
        }
    }

    /// Runs storage operations on the pool (changes as one transaction) and hands each
    /// result to the machine; then `done`.
    private func perform(_ batch: [(token: StorageToken, op: StorageOp)], then done: @escaping @Sendable () -> Void = {}) {
        let store = self.store
        let policy = config.clocks
        let ops = batch.map(\.op)
        pool.runIfActive(eventLoop: loop) { store.perform(batch: ops, policy: policy) }.whenComplete { result in
            switch result {
            case .success(let completions):
                for (entry, completion) in zip(batch, completions) {
                    if case .failed(let reason) = completion.result { self.storageFailed(reason) }
                    self.handle(
                        .storageResult(token: entry.token, completion.result, treeUpdates: completion.treeUpdates))
                }
            case .failure(let error):
                // The pool stopped: the node is stopping, the store is fine.
                if !(error is NIOThreadPoolError.ThreadPoolInactive) { self.storageFailed("\(error)") }
                var treeUpdates = store.takeTreeUpdates()
                for entry in batch {
                    self.handle(.storageResult(token: entry.token, .failed("\(error)"), treeUpdates: treeUpdates))
                    treeUpdates = []
                }
            }
            done()
        }
    }

    /// Changes the persisted identity off the loop; a failure is logged as `what` not recorded.
    private func persistIdentity(_ what: String, _ change: @escaping @Sendable (ReplicaStore) throws -> Void) {
        let store = self.store
        let logger = self.logger
        pool.runIfActive(eventLoop: loop) { try change(store) }.whenFailure { error in
            logger.error("cannot record \(what): \(error)")
        }
    }

    /// The log line for a key near or over the object limits.
    static func warning(_ report: ObjectReport, limits: ObjectLimits) -> String {
        let key = KeyText.short(report.key)
        let size = "\(report.size.siblings) siblings, \(report.size.bytes) bytes"
        let bounds =
            "warn at \(limits.warnSiblings) siblings or \(limits.warnObjectBytes) bytes, refused beyond \(limits.maxSiblings) siblings or \(limits.maxObjectBytes) bytes"
        return report.refused
            ? "refused a write to key \"\(key)\": it holds \(size) (\(bounds)); its clients should resolve its siblings"
            : "key \"\(key)\" holds \(size) (\(bounds)); its clients should resolve its siblings"
    }

    /// Keeps the store's seal and gets it writing again after a fault.
    let keeper: StoreKeeper
    /// What the store had lost when the node started (nil: nothing), for the status.
    let storeLoss: String?

    /// Records the store's sequence in its seal, off the loop; a failure counts as a storage failure.
    func refreshSeal() {
        let keeper = self.keeper
        pool.runIfActive(eventLoop: loop) { try keeper.refreshSeal() }.whenFailure { error in
            // The pool stops at shutdown, which seals the store itself: not a fault (a
            // leaving node logged "storage degraded" as it exited).
            if error is NIOThreadPoolError.ThreadPoolInactive { return }
            self.storageFailed("cannot refresh the store seal: \(error)")
        }
    }

    /// Storage failures so far and the last one (for the status and the log).
    private(set) var storageFailures: (count: UInt64, last: String?, atMs: UInt64) = (0, nil, 0)
    /// Set from a storage failure until the store takes writes again ("disk full").
    private(set) var storageDegraded: String?
    private var resumeScheduled = false
    static let resumeIntervalMs: Int64 = 2000

    /// A storage operation failed (a full disk, a damaged store): logged, rate-limited, and
    /// shown in the status, so the fault does not hide behind quorum errors; and from now
    /// on, every two seconds, the store is checked until it takes writes again.
    private func storageFailed(_ reason: String) {
        storageFailures = (storageFailures.count + 1, reason, monotonicMs)
        let what = StoreKeeper.degradation(reason)
        if storageDegraded == nil {
            let every = "every \(Self.resumeIntervalMs / 1000) s"
            let advice =
                what == "disk full"
                ? "free space on the disk of \(config.dataDir); meanwhile other replicas take this node's writes, and it checks \(every)"
                : "it checks \(every) whether the store takes writes again"
            logger.error("storage degraded (\(what)): \(reason); \(advice)")
            events.append(.storage(degraded: what), on: name, wallMs: now.wallMs)
        }
        storageDegraded = what
        if let text = logLimiter.admit("storage", "storage operation failed: \(reason)") { logger.error("\(text)") }
        scheduleResume()
    }

    private func scheduleResume() {
        guard !resumeScheduled else { return }
        resumeScheduled = true
        loop.scheduleTask(in: .milliseconds(Self.resumeIntervalMs)) {
            let keeper = self.keeper
            self.pool.runIfActive(eventLoop: self.loop) { try keeper.resume() }.whenComplete { result in
                self.resumeScheduled = false
                switch result {
                case .success(let reopened):
                    self.storageDegraded = nil
                    self.events.append(.storage(degraded: nil), on: self.name, wallMs: self.now.wallMs)
                    self.logger.notice(
                        "storage recovered: the store takes writes again\(reopened ? " (reopened after the fault)" : "")"
                    )
                case .failure(let error):
                    self.storageFailed("the store does not take writes yet: \(error)")
                }
            }
        }
    }

    /// A response arrived on a link (nil: the request failed with the link).
    func complete(requestID id: PeerRequestID, with response: PeerResponse?) {
        loop.preconditionInEventLoop()
        guard let link = requestLinks.removeValue(forKey: id) else { return }
        link.inflight.remove(id)
        handle(.peerResponse(requestID: id, response))
    }

    /// A request from peer `from` arrived on `channel`.
    func received(_ request: PeerRequest, id requestID: UInt64, from peer: NodeName, on channel: any Channel) {
        let handle = PeerHandle(nextHandle)
        nextHandle += 1
        inbound[handle] = (channel, requestID, peer)
        if logsRequests, case .coordinatePut(let put) = request, let id = put.requestId, ForwardedPut.isValid(requestId: id) {
            forwarded[handle] = (id, peer, NIODeadline.now())
        }
        self.handle(.peerRequest(handle: handle, from: peer, request))
    }

    /// Writes forwarded to this node to coordinate, with their client request's id, until
    /// answered: the answer is logged under that id (kept only when requests are logged).
    private var forwarded: [PeerHandle: (requestId: String, from: NodeName, at: NIODeadline)] = [:]

    /// A new request id: this node's name, a number drawn at start, a counter. (Any loop
    /// may ask: the HTTP loops' own refusals carry one too.)
    func newRequestId() -> String {
        let count = requestCounter.withLockedValue { count in
            count += 1
            return count
        }
        return "\(requestPrefix)-\(requestNonce)-\(count)"
    }
    /// The node's name as a request id may carry it (valid characters, at most 32 bytes),
    /// so every id this node makes is valid (and fits a forwarded write).
    private let requestPrefix: String

    static func requestIdPrefix(_ name: NodeName) -> String {
        let kept = String(String.UnicodeScalarView(name.unicodeScalars.filter { ForwardedPut.isValid(requestId: String($0)) }.prefix(32)))
        return kept.isEmpty ? "node" : kept
    }
    private let requestCounter = NIOLockedValueBox<UInt64>(0)
    private let requestNonce = String(UInt32.random(in: 0...0xff_ffff), radix: 16)

    /// The request id a `/kv` request goes by: its client's if valid, else a new one.
    func requestId(_ headers: HTTPHeaders) -> String {
        headers.first(name: RequestId.header).flatMap { ForwardedPut.isValid(requestId: $0) ? $0 : nil } ?? newRequestId()
    }

    /// Whether requests are logged one by one (`--log-level debug` or below).
    var logsRequests: Bool { logger.logLevel <= .debug }

    /// Logs `message` at debug under the request id (metadata `request_id`). Nothing is
    /// built when requests are not logged: this is on every request's path.
    func logRequest(_ id: String, _ message: @autoclosure () -> Logger.Message) {
        guard logsRequests else { return }
        var logger = self.logger
        logger[metadataKey: "request_id"] = .string(id)
        logger.debug(message())
    }

    // MARK: Client requests

    /// Hands a client request to the machine; `waiting` holds its promise until the machine
    /// answers (with the reply type of that kind of request).
    private func clientRequest<Reply>(
        _ op: RequestOp, _ waiting: ReferenceWritableKeyPath<NodeRuntime, [ClientRequestID: EventLoopPromise<Reply>]>,
        outcome: @escaping @Sendable (Reply) -> RequestOutcome, _ make: (ClientRequestID) -> NodeMachine.Input
    ) -> EventLoopFuture<Reply> {
        let id = ClientRequestID(nextHandle)
        nextHandle += 1
        let promise = loop.makePromise(of: Reply.self)
        self[keyPath: waiting][id] = promise
        let started = NIODeadline.now()
        handle(make(id))
        return promise.futureResult.map { reply in
            let nanos = max(0, (NIODeadline.now() - started).nanoseconds)
            self.recordRequest(op, outcome(reply), nanoseconds: nanos)
            return reply
        }
    }

    /// A client request answered: counted once, for the status and `/metrics` alike.
    func recordRequest(_ op: RequestOp, _ outcome: RequestOutcome, nanoseconds: Int64) {
        requestStats.record(op, outcome, micros: UInt64(nanoseconds / 1000))
        if outcome != .badRequest { metrics.requestReceived(op, seconds: Double(nanoseconds) / 1e9) }
    }

    /// `trace`: the request's id when the client asked for a trace (`X-Dynamo-Trace: 1`).
    func clientRead(key: [UInt8], r: Int?, trace: String? = nil) -> EventLoopFuture<GetCoordinator.Outcome> {
        clientRequest(.get, \.reads, outcome: Self.outcome) { .clientGet(id: $0, key: key, r: r, trace: trace) }
    }

    func clientWrite(
        key: [UInt8], value: [UInt8]?, context: CausalHistory?, w: Int?, requestId: String? = nil, trace: String? = nil
    ) -> EventLoopFuture<WriteResult> {
        let quorum = w ?? config.quorum.w
        let started = NIODeadline.now()
        return clientRequest(value == nil ? .delete : .put, \.writes, outcome: Self.outcome) {
            .clientWrite(id: $0, key: key, value: value, context: context, w: w, requestId: requestId, trace: trace)
        }.map { result in
            if result.succeeded {
                self.requestStats.recordWrite(w: quorum, micros: UInt64(max(0, (NIODeadline.now() - started).nanoseconds) / 1000))
            }
            return result
        }
    }

    /// How a read ended, as the frontend answers it (503, 404, 200 or 300).
    static func outcome(_ read: GetCoordinator.Outcome) -> RequestOutcome {
        guard read.succeeded else { return .unavailable }
        return read.object.isEmpty || read.object.isDeleted ? .notFound : .ok
    }

    /// How a write ended, as the frontend answers it (409, 503 or 204).
    static func outcome(_ write: WriteResult) -> RequestOutcome {
        if write.refusal != nil { return .refused }
        if write.error != nil { return .failed }
        return write.succeeded ? .ok : .unavailable
    }

    /// Replaces the injected faults; links to newly cut peers close now, so nothing already
    /// queued on them slips through.
    func setFaults(drop: Set<NodeName>, links shaping: LinkFaults = LinkFaults()) {
        let previous = machine.dropped
        let changed = shaping != linkFaults || drop.subtracting([name]) != previous
        if shaping != linkFaults {
            linkFaults = shaping
            let summary = shaping.summary
            logger.notice(
                "\(summary.isEmpty ? "links healed: no injected delay or loss" : "slowed or lossy links (messages this node sends): \(summary.joined(separator: "; "))")"
            )
        }
        handle(.setFaults(drop: drop))
        // What slow links held back goes now (to a peer still reachable): a heal or a new
        // delay applies from this moment, not a minute later.
        for id in held.keys.sorted() where changed {
            held[id]?.task.cancel()
            release(held: id)
        }
        for peer in machine.dropped.subtracting(previous) {
            if let address = machine.membership.member(peer)?.peerAddress, let link = links[address] {
                linkClosed(link)
            }
        }
    }

    func isReachable(_ node: NodeName) -> Bool { machine.isReachable(node, at: monotonicMs) }

    /// Shutdown: drops every link and fails what waits on them, then every client request
    /// still waiting (their answers reach the HTTP loops before those stop).
    func closeForShutdown() {
        for link in Array(links.values) { linkClosed(link) }
        let (pendingReads, pendingWrites) = (reads, writes)
        reads = [:]
        writes = [:]
        for promise in pendingReads.values { promise.fail(NodeStopping()) }
        for promise in pendingWrites.values { promise.fail(NodeStopping()) }
    }

    // MARK: Peer links

    /// Opens a link to `address` (connect, then `hello`, then whatever was queued).
    func openLink(to address: String) -> PeerLink {
        let link = PeerLink(address: address)
        links[address] = link
        guard let (host, port) = HostAddress.split(address) else {
            loop.execute { self.linkClosed(link) }
            return link
        }
        let runtime = self
        // Only the member known at this address may answer there.
        let expected = machine.membership.member(atAddress: address)?.name
        ClientBootstrap(group: loop)
            .connectTimeout(.milliseconds(Int64(config.quorum.requestTimeoutMs)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let state = PeerChannelState.forHandshake()
                    if let tls = runtime.tls {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tls.peerClient, serverHostname: NodeTLS.serverHostname(host)))
                    }
                    // Close an unused link before the listener's idle timeout would, so a
                    // request never races the listener closing it.
                    let idle = TimeAmount.milliseconds(runtime.config.limits.peerIdleTimeoutMs * 3 / 4)
                    try channel.pipeline.syncOperations.addHandlers(
                        IdleStateHandler(allTimeout: idle),
                        CloseOnIdle(),
                        ByteToMessageHandler(PeerFrameDecoder(state: state)),
                        MessageToByteHandler(PeerFrameEncoder(state: state)),
                        PeerClientHandler(runtime: runtime, link: link, channelState: state, expectedPeer: expected)
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

/// A client request the node could not finish because it is stopping.
struct NodeStopping: Error, CustomStringConvertible {
    var description: String { "the node is stopping" }
}
