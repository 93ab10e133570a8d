/// Slow and lossy links, injected for teaching and testing (`POST /admin/faults`): what
/// happens to each message this node sends to a peer. Cut links (`drop`) are the
/// machine's own business (`Gossip.dropped`); these only shape when, or whether, a
/// message leaves, so they live beside the machine, and the shell asks `fate` for each
/// message with a random source it injects.
public struct LinkFaults: Hashable, Sendable {
    /// Added to every message to the peer (ms).
    public private(set) var delayMs: [NodeName: UInt64] = [:]
    /// The delay varies uniformly by up to this much either way (never below 0).
    public private(set) var jitterMs: [NodeName: UInt64] = [:]
    /// The fraction of messages to the peer that are lost (0...1).
    public private(set) var loss: [NodeName: Double] = [:]

    public init() {}

    /// Values out of range are clamped: a delay to at most `maxMs`, loss to 0...1 (NaN: 0).
    public init(delayMs: [NodeName: UInt64], jitterMs: [NodeName: UInt64], loss: [NodeName: Double], maxMs: UInt64 = 60_000) {
        self.delayMs = delayMs.mapValues { min($0, maxMs) }.filter { $0.value > 0 }
        self.jitterMs = jitterMs.mapValues { min($0, maxMs) }.filter { $0.value > 0 }
        self.loss = loss.mapValues { $0.isFinite ? min(1, max(0, $0)) : 0 }.filter { $0.value > 0 }
    }

    public var isEmpty: Bool { delayMs.isEmpty && jitterMs.isEmpty && loss.isEmpty }

    public enum Fate: Hashable, Sendable {
        /// Send it after this many ms (0: now).
        case deliver(afterMs: UInt64)
        case lose
    }

    /// What happens to the next message to `peer`.
    public func fate(to peer: NodeName, using rng: inout some RandomNumberGenerator) -> Fate {
        if let fraction = loss[peer], Double.random(in: 0..<1, using: &rng) < fraction { return .lose }
        let base = delayMs[peer] ?? 0
        guard let jitter = jitterMs[peer] else { return .deliver(afterMs: base) }
        let offset = Int64.random(in: -Int64(jitter)...Int64(jitter), using: &rng)
        return .deliver(afterMs: UInt64(max(0, Int64(base) + offset)))
    }

    /// One line per shaped peer, for logs and the status: `n3 +200±50 ms, 10% lost`.
    public var summary: [String] {
        Set(delayMs.keys).union(jitterMs.keys).union(loss.keys).sorted().map { peer in
            var parts: [String] = []
            if delayMs[peer] != nil || jitterMs[peer] != nil {
                parts.append("+\(delayMs[peer] ?? 0)" + (jitterMs[peer].map { "±\($0)" } ?? "") + " ms")
            }
            if let fraction = loss[peer] { parts.append("\(Int((fraction * 100).rounded()))% lost") }
            return "\(peer) \(parts.joined(separator: ", "))"
        }
    }
}

/// What slow links may hold back at once, in messages and bytes: a long delay under a
/// heavy load must not fill the memory. Past the bound a message is lost, as a full
/// router queue would lose it.
public struct HoldBackBudget: Hashable, Sendable {
    public let maxMessages: Int
    public let maxBytes: Int
    public private(set) var messages = 0
    public private(set) var bytes = 0

    public init(maxMessages: Int = 20_000, maxBytes: Int = 64 << 20) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
    }

    /// Takes room for a message of `size` bytes; false (and nothing taken) when full.
    public mutating func take(_ size: Int) -> Bool {
        guard messages < maxMessages, size <= maxBytes - bytes else { return false }
        messages += 1
        bytes += size
        return true
    }

    /// A held message left (delivered): its room is free again.
    public mutating func give(_ size: Int) {
        messages = max(0, messages - 1)
        bytes = max(0, bytes - size)
    }
}
