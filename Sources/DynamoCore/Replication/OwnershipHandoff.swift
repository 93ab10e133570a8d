/// Ownership handoff: passes over this node's own data, in batches, that find keys it is
/// no longer a home node of (the ring changed: a node joined or left, or it stored a key
/// while it knew only part of the ring). Each such key goes to all of its home nodes and is
/// forgotten here only after every one of them acknowledged it, and only if it did not
/// change meanwhile. A pass that finds none tells the reaper this node holds no strays.
///
/// Pure: `NodeMachine` carries out its steps and feeds the answers back.
public struct OwnershipHandoff: Sendable {
    /// Where the current batch stands.
    public enum State: Hashable, Sendable {
        case idle
        /// Waiting for the store to scan a batch.
        case scanning
        /// Keys sent to their home nodes, and forgets asked of the store, still unanswered.
        case handing([[UInt8]: Pending], forgetting: Int)
    }

    /// A key offered to its home nodes.
    public struct Pending: Hashable, Sendable {
        public var object: VersionedObject
        /// Home nodes that have not answered yet.
        public var waiting: Set<NodeName>
        /// Some home node refused or did not answer: the key stays here for the next pass.
        public var failed = false
    }

    public enum Step: Hashable, Sendable {
        /// Scan up to `limit` own keys after `after` (from the start when nil; answer: `scanned`).
        case scan(after: [UInt8]?, limit: Int)
        /// Send the key to its home node `to`, kept there as its own (answer: `acked`).
        case send(key: [UInt8], object: VersionedObject, to: NodeName)
        /// Forget the key if it is still `object` (answer: `forgot`).
        case forget(key: [UInt8], ifStill: VersionedObject)
        case event(NodeEvent)
    }

    /// Keys scanned per batch.
    public static let batch = 128

    public private(set) var state: State = .idle
    /// Keys this node held without being one of their home nodes, handed to those nodes.
    public private(set) var keysHandedOff = 0
    /// What the last complete pass over this node's data found.
    public enum LastPass: Hashable, Sendable {
        /// None completed since the ring last changed.
        case none
        /// Every key it held has this node among its home nodes.
        case clean
        /// It found keys this node is not a home node of.
        case foundStrays
    }
    public private(set) var lastPass: LastPass = .none
    /// Full passes over this node's data completed.
    public private(set) var passesCompleted = 0
    private var strayThisPass = false
    private var nextBatchAt: UInt64 = 0
    private var cursor: [UInt8]?
    private var batchFull = false
    private let intervalMs: UInt64

    public init(intervalMs: UInt64) { self.intervalMs = intervalMs }

    /// Scans the next batch when one is due and none is in hand.
    public mutating func tick(now: UInt64) -> [Step] {
        guard now >= nextBatchAt, state == .idle else { return [] }
        state = .scanning
        return [.scan(after: cursor, limit: Self.batch)]
    }

    /// Ownership may have moved: look at once, and claim no clean pass until one under the
    /// new ring says so.
    public mutating func ringChanged() {
        nextBatchAt = 0
        strayThisPass = true
        if lastPass == .clean { lastPass = .none }
    }

    /// The node is leaving: look at once.
    public mutating func hurry() { nextBatchAt = 0 }

    /// The store answered a scan (nil: it failed). `home` gives a key's home nodes on the
    /// routing ring; `reachable` whether a node takes requests now. Keys whose home nodes
    /// are not all reachable wait for a later pass.
    public mutating func scanned(
        _ entries: [KeyedObject]?, me: NodeName, home: ([UInt8]) -> [NodeName], reachable: (NodeName) -> Bool,
        now: UInt64
    ) -> [Step] {
        guard state == .scanning else { return [] }
        guard let entries else {
            state = .idle
            nextBatchAt = now + intervalMs
            return []
        }
        batchFull = entries.count == Self.batch
        cursor = batchFull ? entries.last?.key : nil
        var pending: [[UInt8]: Pending] = [:]
        var steps: [Step] = []
        for entry in entries {
            let homes = home(entry.key)
            if !homes.contains(me) { strayThisPass = true }
            guard !homes.contains(me), !homes.isEmpty, homes.allSatisfy(reachable) else { continue }
            pending[entry.key] = Pending(object: entry.object, waiting: Set(homes))
            for node in homes { steps.append(.send(key: entry.key, object: entry.object, to: node)) }
        }
        if !steps.isEmpty { steps.append(.event(.handingOff(keys: pending.count))) }
        if !batchFull {
            // A full pass over this node's data is complete.
            lastPass = strayThisPass ? .foundStrays : .clean
            strayThisPass = false
            passesCompleted += 1
        }
        state = .handing(pending, forgetting: 0)
        return steps + finishIfDone(now: now)
    }

    /// A home node answered for a key (`stored` false: it refused, or did not answer).
    public mutating func acked(key: [UInt8], by node: NodeName, stored: Bool, now: UInt64) -> [Step] {
        guard case .handing(var pending, let forgetting) = state, var entry = pending[key] else { return [] }
        entry.waiting.remove(node)
        if !stored { entry.failed = true }
        guard entry.waiting.isEmpty else {
            pending[key] = entry
            state = .handing(pending, forgetting: forgetting)
            return []
        }
        pending[key] = nil
        if entry.failed {
            state = .handing(pending, forgetting: forgetting)
            return finishIfDone(now: now)
        }
        // Every home node has it now: forget the local copy unless it changed meanwhile.
        state = .handing(pending, forgetting: forgetting + 1)
        return [.forget(key: key, ifStill: entry.object)]
    }

    /// The store forgot a handed-off key (`removed` false: it changed, and stays).
    public mutating func forgot(removed: Bool, now: UInt64) -> [Step] {
        guard case .handing(let pending, let forgetting) = state else { return [] }
        if removed { keysHandedOff += 1 }
        state = .handing(pending, forgetting: max(0, forgetting - 1))
        return finishIfDone(now: now)
    }

    private mutating func finishIfDone(now: UInt64) -> [Step] {
        guard case .handing(let pending, 0) = state, pending.isEmpty else { return [] }
        state = .idle
        // A full batch means more to look at: go on at the next tick.
        nextBatchAt = batchFull ? 0 : now + intervalMs
        return []
    }
}
