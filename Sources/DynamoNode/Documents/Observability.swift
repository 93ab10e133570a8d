public import DynamoAPI
public import DynamoCore

/// What a node remembers for people watching it: its recent events and how fast it
/// serves clients. Pure values; the node runtime feeds them, the admin API shows them.

/// The last `capacity` events, numbered so a watcher can ask for only the new ones.
public struct EventLog: Sendable {
    public let capacity: Int
    /// Up to twice `capacity`: old events are dropped in one go when it fills, so appending
    /// (on the node's event loop, once per hint kept) is O(1) amortised, not a shift per event.
    private var stored: [EventsDocument.Event] = []
    /// The sequence number the next event gets (numbers start at 1).
    public private(set) var nextSeq: UInt64 = 1

    public init(capacity: Int = 512) { self.capacity = capacity }

    /// The last `capacity` events, oldest first.
    public var entries: ArraySlice<EventsDocument.Event> { stored.suffix(capacity) }

    public mutating func append(_ event: NodeEvent, on node: NodeName, wallMs: UInt64) {
        stored.append(.init(seq: nextSeq, timeMs: wallMs, node: node, event))
        nextSeq += 1
        if stored.count >= 2 * capacity { stored.removeFirst(stored.count - capacity) }
    }

    /// Events numbered above `seq`, oldest first, at most `limit` of the newest.
    public func since(_ seq: UInt64, limit: Int = 200) -> [EventsDocument.Event] {
        Array(entries.filter { $0.seq > seq }.suffix(limit))
    }
}

/// What a client asked for, as `/metrics` labels it (`op`).
public enum RequestOp: String, CaseIterable, Sendable {
    case get, put, delete
}

/// How a client request ended, as `/metrics` labels it (`outcome`).
public enum RequestOutcome: String, CaseIterable, Sendable {
    /// Read or written with its quorum (a read of several siblings too).
    case ok
    /// Read with its quorum, and nothing there (or a tombstone).
    case notFound = "not_found"
    /// Too few replicas answered in time (503).
    case unavailable
    /// The object limits refused the write (409).
    case refused
    /// The coordinator failed outright (a storage error, say).
    case failed
    /// The request itself was wrong (400, 413, 414): it reached no coordinator.
    case badRequest = "bad_request"
}

/// Client requests served, by operation and outcome, and the latency of the most recent
/// ones: the one source of `/admin/status`'s `requests` and `/metrics`'s
/// `dynamo_requests_total`.
public struct RequestStats: Sendable {
    /// Requests since the node started, per (op, outcome).
    public private(set) var counts: [RequestOp: [RequestOutcome: UInt64]] = [:]
    /// Latencies of the last `window` requests.
    private var recent: LatencyWindow

    /// Latencies of the last `perQuorumWindow` successful writes for each W asked for
    /// (the session's or the cluster's), so a class can compare W=1, 2 and 3.
    private var writesByW: [Int: LatencyWindow] = [:]
    public static let perQuorumWindow = 256

    public init(window: Int = 1024) { recent = LatencyWindow(capacity: window) }

    /// A write that met (or missed) quorum `w` took `micros` (W beyond 64 is not kept).
    public mutating func recordWrite(w: Int, micros: UInt64) {
        guard (1...64).contains(w) else { return }
        writesByW[w, default: LatencyWindow(capacity: Self.perQuorumWindow)].record(micros)
    }

    /// Requests that reached a coordinator (bad ones did not).
    private func served(_ ops: [RequestOp]) -> UInt64 {
        ops.reduce(0) { sum, op in
            sum + (counts[op] ?? [:]).filter { $0.key != .badRequest }.values.reduce(0, +)
        }
    }
    public var gets: UInt64 { served([.get]) }
    public var writes: UInt64 { served([.put, .delete]) }

    /// One request answered; a bad request's latency says nothing of the cluster and is
    /// left out of the quantiles.
    public mutating func record(_ op: RequestOp, _ outcome: RequestOutcome, micros: UInt64) {
        counts[op, default: [:]][outcome, default: 0] += 1
        guard outcome != .badRequest else { return }
        recent.record(micros)
    }

    public var document: StatusDocument.Requests {
        let quantiles = recent.quantilesMs([0.5, 0.99])
        var byW: [String: StatusDocument.Requests.Quantiles] = [:]
        for (w, window) in writesByW {
            guard let q = window.quantilesMs([0.5, 0.99]) else { continue }
            byW[String(w)] = .init(count: window.count, p50Ms: q[0], p99Ms: q[1])
        }
        return .init(
            gets: gets, writes: writes, p50Ms: quantiles?[0], p99Ms: quantiles?[1], writesByW: byW.isEmpty ? nil : byW)
    }
}

/// The latencies (µs) of the last `capacity` samples, a ring, and their quantiles.
struct LatencyWindow: Sendable {
    let capacity: Int
    private var samples: [UInt64] = []
    private var next = 0

    init(capacity: Int) { self.capacity = capacity }

    var count: Int { samples.count }

    mutating func record(_ micros: UInt64) {
        if samples.count < capacity {
            samples.append(micros)
        } else {
            samples[next] = micros
            next = (next + 1) % capacity
        }
    }

    /// Each quantile of the window in ms, by rank (one sort for all); nil when empty.
    func quantilesMs(_ qs: [Double]) -> [Double]? {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        return qs.map { q in
            let index = min(sorted.count - 1, Int((Double(sorted.count) * q).rounded(.up)) - 1)
            return Double(sorted[max(0, index)]) / 1000
        }
    }
}
