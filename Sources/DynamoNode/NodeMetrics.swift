import CoreMetrics
import DynamoAPI
import DynamoCore
import DynamoStorage
import Prometheus

/// The node's `GET /metrics`: swift-metrics handles on a Prometheus registry of this node's
/// own (not the process-global `MetricsSystem`, so several nodes can share a process in
/// tests).
///
/// Two kinds of figures, one source each:
/// - what happens once and is seen only here (a request's latency, a hint kept, a read
///   repair sent) is recorded as it happens;
/// - what the node already counts for `/admin/status` or the dashboard (requests by outcome,
///   replica requests per peer, hints delivered, exchanges, storage commits) is read from
///   that count when scraped: each counter goes up by what its source gained since the last
///   scrape, so both views always agree. Gauges (members, phi, hints pending, keys) are set
///   when scraped.
///
/// Confined to the node's protocol loop, as the runtime is.
final class NodeMetrics {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private var counters: [Series: CoreMetrics.Counter] = [:]
    /// What each mirrored counter's source held at the last scrape.
    private var mirrored: [Series: Int64] = [:]
    private var gauges: [Series: CoreMetrics.Gauge] = [:]
    // The per-request handles, by their one label (no series to build on the hot path).
    private var received: [RequestOp: CoreMetrics.Timer] = [:]
    private var coordination: [Coordinated: CoreMetrics.Timer] = [:]
    private lazy var readSiblings = CoreMetrics.Recorder(
        label: "dynamo_read_siblings", dimensions: [], aggregate: true, factory: factory)

    /// A metric name and its labels.
    private struct Series: Hashable {
        var name: String
        var labels: [String: String]

        init(_ name: String, _ dimensions: [(String, String)]) {
            self.name = name
            self.labels = Dictionary(dimensions, uniquingKeysWith: { first, _ in first })
        }
    }

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        // A request on loopback takes well under a millisecond; a slow replica, seconds.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        factory.valueHistogramBuckets["dynamo_read_siblings"] = [1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000]
        self.factory = factory
    }

    // MARK: As it happens

    /// A client request this node's API answered (`seconds` from its arrival to its reply).
    func requestReceived(_ op: RequestOp, seconds: Double) {
        Self.cached(&received, op) {
            CoreMetrics.Timer(label: "dynamo_request_duration_seconds", dimensions: [("op", op.rawValue)], factory: factory)
        }.recordNanoseconds(Self.nanoseconds(seconds))
    }

    /// What a coordinator ran: a read, or a write (a put or a delete: a write forwarded to
    /// this node does not say which).
    enum Coordinated: String { case get, write }

    /// A request this node coordinated (its own client's, or a write forwarded to it), from
    /// the coordinator's trace: `micros` from taking it to meeting its quorum (or failing).
    func coordinated(_ op: Coordinated, micros: UInt64) {
        Self.cached(&coordination, op) {
            CoreMetrics.Timer(
                label: "dynamo_coordination_duration_seconds", dimensions: [("op", op.rawValue)], factory: factory)
        }.recordNanoseconds(Int64(clamping: micros.multipliedReportingOverflow(by: 1000).partialValue))
    }

    /// The siblings a coordinated read returned (how close keys run to the sibling limits).
    func read(siblings: Int) {
        readSiblings.record(siblings)
    }

    /// A replica is being stored here as a hint for `target` (served for a coordinator, or
    /// this coordinator's own replica standing in for a home node).
    func hintStored(for target: NodeName) {
        counter("dynamo_hints_stored_total", [("target", target)]).increment()
    }

    func observe(_ event: NodeEvent) {
        switch event {
        case .readRepair(_, let peer): counter("dynamo_read_repairs_total", [("peer", peer)]).increment()
        case .nearLimit:
            // Told once per key as it enters the hot-key list; refusals count in
            // dynamo_writes_refused_total, each one.
            counter("dynamo_objects_near_limit_total", []).increment()
        default: break
        }
    }

    // MARK: When scraped

    /// Brings every figure the node counts elsewhere up to date (on the loop; cheap). The
    /// text is then rendered by `render`, off the loop: a flood of scrapes must not stall
    /// the node's protocol (peers would mark it down).
    func refresh(runtime: NodeRuntime, status: StatusDocument) {
        let machine = runtime.machine
        for (op, outcomes) in runtime.requestStats.counts {
            for (outcome, count) in outcomes {
                mirror("dynamo_requests_total", [("op", op.rawValue), ("outcome", outcome.rawValue)], count)
            }
        }
        let members = Set(machine.membership.members.keys)
        for (peer, counts) in machine.traffic.replicaRequests where members.contains(peer) {
            mirror("dynamo_replica_requests_sent_total", [("peer", peer)], counts.sent)
            mirror("dynamo_replica_requests_answered_total", [("peer", peer)], counts.answered)
            mirror("dynamo_replica_requests_timed_out_total", [("peer", peer)], counts.unanswered)
        }
        mirror("dynamo_gossip_rounds_total", [], machine.traffic.gossipRounds)
        for (target, count) in machine.hintsDelivered where members.contains(target) {
            mirror("dynamo_hints_delivered_total", [("target", target)], count)
        }
        mirror("dynamo_anti_entropy_exchanges_total", [], machine.exchangeCount)
        mirror("dynamo_anti_entropy_keys_differing_total", [], machine.keysDifferingByExchange)
        mirror("dynamo_anti_entropy_keys_repaired_total", [], machine.keysRepairedByExchange)
        mirror("dynamo_writes_refused_total", [], machine.hotKeys.refusedWrites)
        let commits = runtime.store.commitCounts
        mirror("dynamo_storage_write_batches_total", [], commits.batches)
        mirror("dynamo_storage_syncs_total", [], commits.syncs)
        mirror("dynamo_storage_batched_operations_total", [], commits.operations)
        mirror("dynamo_storage_errors_total", [], runtime.storageFailures.count)

        // Series of nodes the membership no longer holds (it keeps the last 64 that left)
        // go, so names seen over the years cannot grow the scrape without bound.
        forgetNodes(keeping: members)

        // Gauges, from the status document the admin API serves (one source).
        var byStatus = Dictionary(uniqueKeysWithValues: MemberStatus.allCases.map { ($0.rawValue, 0) })
        for member in status.members { byStatus[member.status, default: 0] += 1 }
        byStatus[MemberStatus.left.rawValue, default: 0] += status.departed?.count ?? 0
        for (state, count) in byStatus { gauge("dynamo_members", [("status", state)]).record(count) }
        let peers = Set(status.members.compactMap { $0.phi == nil ? nil : $0.name })
        for member in status.members {
            guard let phi = member.phi else { continue }
            gauge("dynamo_peer_phi", [("peer", member.name)]).record(phi.isFinite ? phi : 1e9)
        }
        forgetGauges("dynamo_peer_phi", keeping: peers)
        for (target, count) in status.hints.byTarget { gauge("dynamo_hints_pending", [("target", target)]).record(count) }
        forgetGauges("dynamo_hints_pending", keeping: Set(status.hints.byTarget.keys))
        gauge("dynamo_storage_keys", []).record(status.keys)
        if let bytes = runtime.store.engine.approximateBytes { gauge("dynamo_storage_bytes", []).record(Int64(clamping: bytes)) }
        if let objects = status.objects {
            gauge("dynamo_object_limit_siblings", [("limit", "warn")]).record(objects.warnSiblings)
            gauge("dynamo_object_limit_siblings", [("limit", "max")]).record(objects.maxSiblings)
            gauge("dynamo_objects_near_limit", []).record(objects.nearLimits.count)
        }
    }

    /// The whole registry as Prometheus text (version 0.0.4), with a HELP line for each
    /// metric. Any thread: the registry locks.
    static func render(_ registry: PrometheusCollectorRegistry) -> [UInt8] {
        var text: [UInt8] = []
        registry.emit(into: &text)
        return withHelp(text)
    }

    /// The labels that name another node.
    static let nodeLabels: Set<String> = ["peer", "target"]

    /// Drops every counter series labelled with a node not in `keeping` (with what its
    /// mirror remembered of it).
    func forgetNodes(keeping: Set<NodeName>) {
        for (series, counter) in counters {
            guard series.labels.contains(where: { Self.nodeLabels.contains($0.key) && !keeping.contains($0.value) })
            else { continue }
            counter.destroy()
            counters[series] = nil
            mirrored[series] = nil
        }
    }

    // MARK: Handles

    /// The handle `cache` holds for `key`, made by `make` the first time.
    private static func cached<Key: Hashable, Handle>(_ cache: inout [Key: Handle], _ key: Key, _ make: () -> Handle)
        -> Handle
    {
        if let existing = cache[key] { return existing }
        let made = make()
        cache[key] = made
        return made
    }

    private func counter(_ name: String, _ dimensions: [(String, String)]) -> CoreMetrics.Counter {
        Self.cached(&counters, Series(name, dimensions)) {
            CoreMetrics.Counter(label: name, dimensions: dimensions, factory: factory)
        }
    }

    private func gauge(_ name: String, _ dimensions: [(String, String)]) -> CoreMetrics.Gauge {
        Self.cached(&gauges, Series(name, dimensions)) {
            CoreMetrics.Gauge(label: name, dimensions: dimensions, factory: factory)
        }
    }

    /// Drops the series of `name` whose one label is not in `keeping` (a peer gone, a
    /// target whose hints were all delivered): they would show stale values for ever.
    private func forgetGauges(_ name: String, keeping: Set<String>) {
        for (series, gauge) in gauges where series.name == name && !series.labels.values.allSatisfy(keeping.contains) {
            gauge.destroy()
            gauges[series] = nil
        }
    }

    /// Raises a counter to its source's total (sources only grow while the process lives).
    private func mirror(_ name: String, _ dimensions: [(String, String)], _ total: some BinaryInteger) {
        let series = Series(name, dimensions)
        let total = Int64(clamping: total)
        let last = mirrored[series] ?? 0
        let handle = counter(name, dimensions)
        if total > last { handle.increment(by: total - last) }
        mirrored[series] = max(last, total)
    }

    private static func nanoseconds(_ seconds: Double) -> Int64 {
        guard seconds.isFinite, seconds > 0 else { return 0 }
        return Int64(min(seconds, 1e9) * 1e9)
    }

    // MARK: Help

    static let help: [String: String] = [
        "dynamo_requests_total": "Client requests this node's API answered, by operation and outcome.",
        "dynamo_request_duration_seconds": "Time from a client request's arrival at this node to its reply.",
        "dynamo_coordination_duration_seconds":
            "Time a request this node coordinated took to meet its quorum (or fail); op is get or write.",
        "dynamo_replica_requests_sent_total": "Replica reads and writes this node sent as a coordinator, per peer.",
        "dynamo_replica_requests_answered_total": "Replica requests the peer answered (a failure it reports counts).",
        "dynamo_replica_requests_timed_out_total": "Replica requests that got no answer in time, per peer.",
        "dynamo_hints_pending": "Hinted replicas this node keeps for a down home node, per target.",
        "dynamo_hints_stored_total": "Hinted replicas this node stored for another node, per target.",
        "dynamo_hints_delivered_total": "Hinted replicas delivered to their home node (and deleted here).",
        "dynamo_read_repairs_total": "Read repairs this node sent as a coordinator, per peer repaired.",
        "dynamo_anti_entropy_exchanges_total": "Merkle tree comparisons this node started with a replica.",
        "dynamo_anti_entropy_keys_differing_total": "Keys anti-entropy found differing, over every exchange.",
        "dynamo_anti_entropy_keys_repaired_total": "Keys anti-entropy fetched from a replica and merged here.",
        "dynamo_gossip_rounds_total": "Gossip exchanges this node started.",
        "dynamo_peer_phi": "This node's suspicion of a peer (phi accrual; down at 8).",
        "dynamo_members": "Members by status, as this node sees them.",
        "dynamo_storage_keys": "Keys this node stores as a home node (hints not counted).",
        "dynamo_storage_bytes": "Bytes in the store's table files and memtables (RocksDB's estimate).",
        "dynamo_storage_write_batches_total": "Storage write batches committed (group commit).",
        "dynamo_storage_syncs_total": "Write batches committed with an fsync.",
        "dynamo_storage_batched_operations_total": "Storage operations the write batches carried.",
        "dynamo_storage_errors_total": "Storage operations that failed (a full disk, say).",
        "dynamo_read_siblings": "Siblings a coordinated read returned.",
        "dynamo_writes_refused_total": "Writes the object limits refused (nothing was stored).",
        "dynamo_objects_near_limit_total": "Keys that entered the hot-key list: seen at or past a warning limit, or refused.",
        "dynamo_objects_near_limit": "Keys recently seen near or over the object limits (up to 10 kept).",
        "dynamo_object_limit_siblings": "The sibling limits: warn and max.",
    ]

    /// `text` with `# HELP` before each `# TYPE` line of a metric in `help`.
    static func withHelp(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count + 4096)
        for line in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if line.starts(with: "# TYPE ".utf8) {
                let name = String(decoding: line.dropFirst(7).prefix { $0 != UInt8(ascii: " ") }, as: UTF8.self)
                if let help = help[name] { out += Array("# HELP \(name) \(help)\n".utf8) }
            }
            out += line
            out.append(UInt8(ascii: "\n"))
        }
        // (Splitting kept the final empty line: drop the newline it added.)
        if out.last == UInt8(ascii: "\n"), text.last == UInt8(ascii: "\n") { out.removeLast() }
        return out
    }
}
