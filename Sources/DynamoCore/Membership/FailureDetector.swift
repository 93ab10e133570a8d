#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Phi accrual failure detection (Hayashibara et al., as in Cassandra and Akka).
///
/// Instead of a yes/no timeout, each peer gets a suspicion level phi that grows with the
/// time since its last heartbeat, scaled by how regularly its heartbeats have arrived:
/// phi = -log10(P(a heartbeat this late)). Heartbeats are gossip rows whose heartbeat
/// counter advanced, whoever relayed them.
public struct PhiAccrualDetector: Sendable, Hashable {
    /// Recent inter-arrival times (ms), oldest first.
    private var intervals: [Double] = []
    public private(set) var lastArrival: UInt64?
    private let windowSize: Int
    /// Floor for the standard deviation, so a very regular history does not make phi explode.
    private let minStdDevMs: Double
    /// Silence tolerated on top of the mean interval before suspicion starts to climb (as
    /// Akka's acceptable heartbeat pause): gossip relays heartbeats irregularly, and a busy
    /// machine delays them; a crashed peer is caught sooner by refused requests anyway.
    private let acceptablePauseMs: Double
    /// Pauses longer than this many mean intervals are restarts, not samples.
    private static let restartFactor = 10.0
    /// The window's mean and standard deviation, kept with each heartbeat: phi is asked
    /// on every request (is this replica up?), heartbeats come once a gossip interval.
    private var mean: Double
    private var standardDeviation: Double

    public init(expectedIntervalMs: UInt64, windowSize: Int = 100) {
        self.windowSize = windowSize
        self.minStdDevMs = max(Double(expectedIntervalMs) / 2, 10)
        self.acceptablePauseMs = max(Double(expectedIntervalMs) * 2, 300)
        // Seed with the expected interval so a fresh peer is judged sensibly.
        self.intervals = [Double(expectedIntervalMs)]
        self.mean = Double(expectedIntervalMs)
        self.standardDeviation = minStdDevMs
    }

    public mutating func heartbeat(at now: UInt64) {
        if let last = lastArrival, now >= last {
            let interval = Double(now - last)
            if interval <= mean * Self.restartFactor {
                intervals.append(interval)
                if intervals.count > windowSize { intervals.removeFirst() }
                let m = intervals.reduce(0, +) / Double(intervals.count)
                let variance = intervals.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(intervals.count)
                mean = m
                standardDeviation = max(variance.squareRoot(), minStdDevMs)
            }
        }
        lastArrival = now
    }

    /// Suspicion level at `now`: about 1 means "10% chance it is just late", 8 means
    /// "one in 10^8". Zero before the first heartbeat.
    public func phi(at now: UInt64) -> Double {
        guard let last = lastArrival else { return 0 }
        let elapsed = Double(now > last ? now - last : 0)
        // Logistic approximation of the normal CDF (as in Akka's detector).
        let expected = mean + acceptablePauseMs
        let y = (elapsed - expected) / standardDeviation
        let e = exp(-y * (1.5976 + 0.070566 * y * y))
        let probabilityLater = elapsed > expected ? e / (1 + e) : 1 - 1 / (1 + e)
        return -log10(max(probabilityLater, 1e-300))
    }
}

/// One node's view of which peers it can use: heartbeat suspicion (phi) plus what it saw
/// itself. A peer that failed to answer this node is avoided at once, without waiting for
/// its heartbeats to stop or for anyone else to agree, until it answers this node again.
public struct FailureDetector: Sendable {
    public var threshold: Double
    private let expectedIntervalMs: UInt64
    private var detectors: [NodeName: PhiAccrualDetector] = [:]
    /// Peers whose requests from this node failed, since when (monotonic ms).
    public private(set) var unreachable: [NodeName: UInt64] = [:]

    public init(expectedIntervalMs: UInt64, threshold: Double = 8) {
        self.expectedIntervalMs = expectedIntervalMs
        self.threshold = threshold
    }

    public mutating func heartbeat(from node: NodeName, at now: UInt64) {
        detectors[node, default: PhiAccrualDetector(expectedIntervalMs: expectedIntervalMs)].heartbeat(at: now)
    }

    /// A request to `node` failed or timed out.
    public mutating func requestFailed(to node: NodeName, at now: UInt64) {
        if unreachable[node] == nil { unreachable[node] = now }
    }

    /// `node` answered this node directly.
    public mutating func requestSucceeded(to node: NodeName) {
        unreachable[node] = nil
    }

    public func phi(of node: NodeName, at now: UInt64) -> Double {
        detectors[node]?.phi(at: now) ?? 0
    }

    public func isAvailable(_ node: NodeName, at now: UInt64) -> Bool {
        unreachable[node] == nil && phi(of: node, at: now) < threshold
    }

    /// Forgets a node (it left the cluster).
    public mutating func remove(_ node: NodeName) {
        detectors[node] = nil
        unreachable[node] = nil
    }
}
