public import DynamoCore
import DynamoStorage

/// A deterministic simulation of a cluster: the real `NodeMachine`s of several nodes wired
/// through an in-memory network driven by one seeded random generator.
///
/// The network drops, delays, duplicates and reorders messages, partitions and heals the
/// cluster; nodes crash (losing everything in flight, and sometimes the tail of their
/// write-ahead log) and restart from their durable stores; disks fill up and free again. Clients write and read throughout. Invariants are checked after every storage
/// step and at the end; a failure names the seed, and the same seed replays the same run.
public final class Simulation {
    /// How hostile the run is.
    public struct Faults: Sendable {
        public var dropRate = 0.02
        public var duplicateRate = 0.02
        public var maxDelayMs: UInt64 = 15
        /// Chance per second that a partition starts (when none is active).
        public var partitionsPerSecond = 0.15
        /// Chance per second that a running node crashes (at most one down at a time).
        public var crashesPerSecond = 0.1
        /// Chance that a crash also loses the last writes of the node's log (up to 64): the
        /// node notices (as the product does by its seal) and refills from its replicas.
        public var tailLossPerCrash = 0.5
        /// Chance per second that a node's disk fills up (for 0.2 to 1.5 s): its writes fail.
        public var diskFullsPerSecond = 0.1

        public init() {}

        public static let none: Faults = {
            var f = Faults()
            f.dropRate = 0
            f.duplicateRate = 0
            f.partitionsPerSecond = 0
            f.crashesPerSecond = 0
            f.tailLossPerCrash = 0
            f.diskFullsPerSecond = 0
            return f
        }()
    }

    /// Why a run failed: always prefixed with the seed so it can be replayed.
    public struct Violation: Error, CustomStringConvertible {
        public var seed: UInt64
        public var message: String
        public var description: String { "seed \(seed): \(message)  (replay: Simulation(seed: \(seed)))" }
    }

    /// Every simulated cluster has a secret: member rows are signed and checked, as in the
    /// product, through restarts (new generations) and joins.
    static let clusterKey = try! ClusterKey(text: "simulated cluster secret")

    struct Node {
        var settings: NodeSettings
        var machine: NodeMachine?
        let disk: SimulatedDisk
        /// Rebuilt from the disk at each restart, as the product opens its store.
        var store: ReplicaStore
        /// The last crash lost writes: the restart refills from the replicas.
        var lostData = false
        /// Bumped at each crash so messages and storage results of an old life are dropped.
        var incarnation: UInt64 = 0
        /// Started at all (a joining node starts mid-run).
        var started = false
        /// Left the cluster for good.
        var left = false
        var leaveRequested: UInt64?
    }

    enum Event {
        case tick(NodeName, incarnation: UInt64)
        case request(from: NodeName, fromIncarnation: UInt64, to: NodeName, requestID: UInt64, PeerRequest)
        case response(to: NodeName, incarnation: UInt64, requestID: UInt64, PeerResponse?)
        case storage(NodeName, incarnation: UInt64, token: UInt64, StorageResult, updates: [TreeUpdate])
        case client(ClientOp)
        case crash(NodeName)
        case restart(NodeName)
        case disk(NodeName, full: Bool)
        case partition([[NodeName]])
        case heal
        case join(NodeName)
        case leave(NodeName)
        /// The faults stop for good: no partitions, loss or duplication from here on.
        case calm
    }

    enum ClientOp {
        case write(key: [UInt8], value: [UInt8]?, readFirst: Bool)
        case read(key: [UInt8])
    }

    /// An acknowledged write: its version must survive (or be superseded by a later write
    /// whose context covered it).
    public struct AckedWrite: Hashable, Sendable {
        public var key: [UInt8]
        public var dot: Dot
        public var deleted: Bool
        /// The context the client sent: versions it covers must never come back.
        public var covered: CausalHistory?
    }

    public let seed: UInt64
    public let names: [NodeName]
    public let faults: Faults
    public private(set) var now: UInt64 = 0
    public private(set) var steps = 0
    public private(set) var acked: [AckedWrite] = []
    public private(set) var log: [String] = []
    public private(set) var writesAttempted = 0
    public var tombstonesReaped: Int { names.compactMap { nodes[$0]!.machine?.tombstonesReaped }.reduce(0, +) }
    public private(set) var readsAnswered = 0
    /// Disk faults that happened: writes lost from log tails, restarts that refilled, and
    /// storage writes a full disk refused (coordinated writes among them).
    public private(set) var writesLostFromTails = 0
    public private(set) var refills = 0
    public private(set) var writesRefusedByFullDisks = 0
    public private(set) var coordinationsRefusedByFullDisks = 0
    /// Tombstones reaped, per key: the versions they superseded must never return.
    public private(set) var reaped: [[UInt8]: [VersionedObject]] = [:]
    var rng: SeededRandom
    var nodes: [NodeName: Node] = [:]
    private var queue: [(time: UInt64, seq: UInt64, event: Event)] = []
    private var seq: UInt64 = 0
    private var nextClientID: UInt64 = 1
    private var clientOps: [UInt64: (node: NodeName, op: ClientOp)] = [:]
    /// Handles of peer requests being served -> who asked.
    private var inbound: [UInt64: (from: NodeName, incarnation: UInt64, requestID: UInt64)] = [:]
    private var nextHandle: UInt64 = 1
    private var partition: [[NodeName]]?
    private var calm = false
    let policy = ClockPolicy()
    public let keys: [[UInt8]]
    public var tracing = false

    /// With `membershipChanges`, a sixth node joins during the run and another node leaves.
    public let membershipChanges: Bool
    /// Read repair and hinted handoff off, anti-entropy every 500 ms: replicas must converge
    /// through Merkle exchanges alone (the faults are then message loss, duplication and
    /// delay, which make replicas miss writes without sloppy hints standing in).
    public let antiEntropyOnly: Bool

    public init(
        seed: UInt64, nodes count: Int = 5, keys keyCount: Int = 6, faults: Faults = Faults(),
        membershipChanges: Bool = false, antiEntropyOnly: Bool = false
    ) throws {
        self.seed = seed
        var faults = faults
        if antiEntropyOnly {
            faults.partitionsPerSecond = 0
            faults.crashesPerSecond = 0
            faults.dropRate = max(faults.dropRate, 0.1)
        }
        self.faults = faults
        self.membershipChanges = membershipChanges
        self.antiEntropyOnly = antiEntropyOnly
        self.rng = SeededRandom(seed: seed)
        self.names = (1...(count + (membershipChanges ? 1 : 0))).map { "n\($0)" }
        self.keys = (0..<keyCount).map { Array("k\($0)".utf8) }
        for (i, name) in names.enumerated() {
            let settings = NodeSettings(
                name: name, peerAddress: "\(name):7000", httpAddress: "\(name):8000",
                tokens: Token.defaultPositions(for: name, count: 8), generation: 1,
                seeds: i == 0 ? [] : ["n1:7000", "n2:7000"].filter { $0 != "\(name):7000" },
                quorum: QuorumConfig(
                    n: 3, r: 2, w: 2, requestTimeoutMs: 300, readRepairWindowMs: 300, tombstoneGraceMs: 2_000),
                gossipIntervalMs: 100, hintIntervalMs: 200, tombstoneSweepIntervalMs: 500,
                freshIdentity: i >= count, antiEntropyIntervalMs: antiEntropyOnly ? 500 : 2_000,
                readRepair: !antiEntropyOnly, hintedHandoff: !antiEntropyOnly,
                clusterKey: Self.clusterKey)
            let disk = SimulatedDisk()
            nodes[name] = Node(settings: settings, machine: nil, disk: disk, store: try ReplicaStore(engine: disk))
            if i < count { start(name) }
        }
    }

    // MARK: Scheduling

    private func schedule(_ event: Event, in delay: UInt64) {
        seq += 1
        let entry = (now + delay, seq, event)
        // Keep the queue sorted by (time, seq); insertion from the back is cheap for near events.
        var index = queue.count
        while index > 0, (queue[index - 1].time, queue[index - 1].seq) > (entry.0, entry.1) { index -= 1 }
        queue.insert(entry, at: index)
    }

    private func start(_ name: NodeName) {
        var node = nodes[name]!
        node.started = true
        node.machine = NodeMachine(settings: node.settings, seed: rng.next())
        nodes[name] = node
        schedule(.tick(name, incarnation: node.incarnation), in: UInt64.random(in: 0..<20, using: &rng))
    }

    private var timestamps: NodeMachine.Now { NodeMachine.Now(monotonicMs: now, wallMs: 1_700_000_000_000 + now) }

    private func feed(_ name: NodeName, _ input: NodeMachine.Input) throws {
        guard var node = nodes[name], var machine = node.machine else { return }
        let actions = machine.handle(input, now: timestamps)
        node.machine = machine
        nodes[name] = node
        for action in actions { try execute(action, at: name) }
    }

    private func address(_ address: String) -> NodeName? {
        names.first { nodes[$0]!.settings.peerAddress == address }
    }

    private func canTalk(_ a: NodeName, _ b: NodeName) -> Bool {
        guard let partition else { return true }
        return partition.contains { $0.contains(a) && $0.contains(b) }
    }

    private var delay: UInt64 { UInt64.random(in: 1...max(1, faults.maxDelayMs), using: &rng) }

    private func execute(_ action: NodeMachine.Action, at name: NodeName) throws {
        let incarnation = nodes[name]!.incarnation
        switch action {
        case .send(let requestID, let toAddress, let request):
            guard let target = address(toAddress), nodes[target]?.machine != nil else {
                // Connection refused: the sender learns at once.
                schedule(.response(to: name, incarnation: incarnation, requestID: requestID, nil), in: 1)
                return
            }
            guard canTalk(name, target), calm || Double.random(in: 0..<1, using: &rng) >= faults.dropRate else {
                return  // lost: the sender's deadline turns it into a failure
            }
            let event = Event.request(
                from: name, fromIncarnation: incarnation, to: target, requestID: requestID, request)
            schedule(event, in: delay)
            if !calm, Double.random(in: 0..<1, using: &rng) < faults.duplicateRate { schedule(event, in: delay) }
        case .respond(let handle, let response):
            guard let asker = inbound.removeValue(forKey: handle) else { return }
            guard canTalk(name, asker.from), calm || Double.random(in: 0..<1, using: &rng) >= faults.dropRate else {
                return
            }
            schedule(
                .response(to: asker.from, incarnation: asker.incarnation, requestID: asker.requestID, response),
                in: delay)
        case .ignore(let handle):
            inbound[handle] = nil
        case .identityChanged(let generation, let floor):
            nodes[name]!.settings.generation = max(nodes[name]!.settings.generation, generation)
            nodes[name]!.settings.dotFloor = max(nodes[name]!.settings.dotFloor, floor)
        case .joined(let floor):
            // Persisted in the product: a restart after this does not join again.
            nodes[name]!.settings.freshIdentity = false
            nodes[name]!.settings.awaitPeers = false
            nodes[name]!.settings.dotFloor = max(nodes[name]!.settings.dotFloor, floor)
            if tracing { log.append("\(now) JOINED \(name)") }
        case .storage(let token, let op):
            // The operation takes effect now (durably); its result arrives a little later,
            // and is lost if the node crashes meanwhile, as with a real thread pool.
            let result = nodes[name]!.store.execute(op, policy: policy)
            if case .failed = result, nodes[name]!.disk.isFull {
                writesRefusedByFullDisks += 1
                if case .coordinateWrite = op { coordinationsRefusedByFullDisks += 1 }
            }
            // A forgotten all-tombstone object is a reaped grave; a forgotten live object was
            // handed off and must still be found at its home nodes.
            if case .forget(let key, let object) = op, case .removed(true) = result, object.isDeleted {
                reaped[key, default: []].append(object)
                if tracing {
                    log.append(
                        "\(now) REAPED \(String(decoding: key, as: UTF8.self)) on \(name) clock \(object.context)")
                }
            }
            if tracing {
                switch op {
                case .forget(let key, let object):
                    log.append(
                        "\(now) FORGET \(String(decoding: key, as: UTF8.self)) on \(name) \(object.versions.map(\.dot)) -> \(result)"
                    )
                case .coordinateWrite(let key, _, let context, _, _, let hintFor, _, _, _):
                    log.append(
                        "\(now) COORDINATE \(String(decoding: key, as: UTF8.self)) on \(name) hintFor \(hintFor ?? "-") ctx \(context?.description ?? "none") -> \(result)"
                    )
                case .removeHint(let hint):
                    log.append(
                        "\(now) REMOVEHINT \(String(decoding: hint.key, as: UTF8.self)) on \(name) for \(hint.target) \(hint.object.versions.map(\.dot)) -> \(result)"
                    )
                default: break
                }
            }
            if tracing, case .merge(let key, let object, let hintFor, _) = op {
                log.append(
                    "\(now) MERGE \(String(decoding: key, as: UTF8.self)) on \(name)\(hintFor.map { " (hint for \($0))" } ?? "") versions \(object.versions.map { "\($0.dot)\($0.isTombstone ? "†" : "") past \($0.past)" })"
                )
            }
            try checkKey(of: op)
            let updates = nodes[name]!.store.takeTreeUpdates()
            schedule(
                .storage(name, incarnation: incarnation, token: token, result, updates: updates),
                in: UInt64.random(in: 0...3, using: &rng))
        case .reply(let client, let reply):
            try clientReplied(client, reply)
        case .event(let text):
            if tracing { log.append("\(now) \(text)") }
        case .objectNearLimit:
            break
        }
    }

    // MARK: Running

    /// Runs the workload with faults for `duration` ms, then heals everything and lets the
    /// cluster settle for `settle` ms, then checks the final invariants.
    public func run(duration: UInt64 = 6_000, settle: UInt64 = 6_000, clientOpsPerSecond: Double = 40) throws {
        // Client operations and faults are planned up front from the seed.
        var t: UInt64 = 500
        while t < duration {
            t += UInt64(Double.random(in: 0.2...1.8, using: &rng) * 1000 / clientOpsPerSecond)
            let key = keys.randomElement(using: &rng)!
            let op: ClientOp
            switch Int.random(in: 0..<10, using: &rng) {
            case 0...1: op = .read(key: key)
            case 2: op = .write(key: key, value: nil, readFirst: true)
            case 3...5: op = .write(key: key, value: Array("v\(t)".utf8), readFirst: false)
            default: op = .write(key: key, value: Array("v\(t)".utf8), readFirst: true)
            }
            schedule(.client(op), in: t)
        }
        var f: UInt64 = 1_000
        while f < duration {
            f += 250
            if Double.random(in: 0..<1, using: &rng) < faults.partitionsPerSecond / 4 {
                let shuffled = names.shuffled(using: &rng)
                let cut = Int.random(in: 1..<names.count, using: &rng)
                schedule(.partition([Array(shuffled[..<cut]), Array(shuffled[cut...])]), in: f)
                f += UInt64.random(in: 300...1_500, using: &rng)
                schedule(.heal, in: f)
            }
            if Double.random(in: 0..<1, using: &rng) < faults.crashesPerSecond / 4 {
                let victim = names.randomElement(using: &rng)!
                schedule(.crash(victim), in: f)
                f += UInt64.random(in: 200...1_500, using: &rng)
                schedule(.restart(victim), in: f)
            }
            if Double.random(in: 0..<1, using: &rng) < faults.diskFullsPerSecond / 4 {
                let victim = names.randomElement(using: &rng)!
                schedule(.disk(victim, full: true), in: f)
                schedule(.disk(victim, full: false), in: f + UInt64.random(in: 200...1_500, using: &rng))
            }
        }
        if membershipChanges {
            schedule(.join(names.last!), in: UInt64.random(in: 1_500...2_500, using: &rng))
            schedule(
                .leave(names.dropFirst().dropLast().randomElement(using: &rng)!),
                in: UInt64.random(in: 3_000...4_000, using: &rng))
        }
        schedule(.calm, in: duration)
        try runUntil(duration + settle)
        try checkFinal()
    }

    func runUntil(_ end: UInt64) throws {
        while let next = queue.first, next.time <= end {
            queue.removeFirst()
            now = next.time
            steps += 1
            try step(next.event)
        }
        now = end
    }

    private func step(_ event: Event) throws {
        switch event {
        case .tick(let name, let incarnation):
            guard nodes[name]?.incarnation == incarnation, nodes[name]?.machine != nil else { return }
            try feed(name, .tick)
            // A leaving node that holds nothing any more exits, as the product's shell does.
            if let since = nodes[name]!.leaveRequested, now >= since + 300, nodes[name]!.store.keyCount == 0,
                nodes[name]!.store.hintCounts.isEmpty
            {
                nodes[name]!.machine = nil
                nodes[name]!.left = true
                nodes[name]!.incarnation += 1
                if tracing { log.append("\(now) LEFT \(name)") }
                return
            }
            schedule(.tick(name, incarnation: incarnation), in: 20)
        case .join(let name):
            guard !nodes[name]!.started else { return }
            start(name)
            if tracing { log.append("\(now) JOIN \(name)") }
        case .leave(let chosen):
            // If the chosen node is down right now, another one leaves instead.
            let candidates = [chosen] + names.dropFirst().filter { $0 != chosen }
            guard names.allSatisfy({ nodes[$0]!.leaveRequested == nil }),
                let name = candidates.first(where: { nodes[$0]!.machine != nil && $0 != names.last })
            else { return }
            nodes[name]!.leaveRequested = now
            try feed(name, .leave)
            if tracing { log.append("\(now) LEAVE \(name)") }
        case .request(let from, let fromIncarnation, let to, let requestID, let request):
            guard nodes[to]?.machine != nil else {
                schedule(.response(to: from, incarnation: fromIncarnation, requestID: requestID, nil), in: 1)
                return
            }
            guard canTalk(from, to) else { return }
            let handle = nextHandle
            nextHandle += 1
            inbound[handle] = (from, fromIncarnation, requestID)
            try feed(to, .peerRequest(handle: handle, from: from, request))
        case .response(let to, let incarnation, let requestID, let response):
            guard nodes[to]?.incarnation == incarnation else { return }
            try feed(to, .peerResponse(requestID: requestID, response))
        case .storage(let name, let incarnation, let token, let result, let updates):
            guard nodes[name]?.incarnation == incarnation else { return }
            if !updates.isEmpty { try feed(name, .treeUpdates(updates)) }
            try feed(name, .storageResult(token: token, result))
        case .client(let op):
            let alive = names.filter { nodes[$0]!.machine != nil && nodes[$0]!.leaveRequested == nil }
            guard let node = alive.randomElement(using: &rng) else { return }
            try issue(op, at: node)
        case .crash(let name):
            // A leaving node is left alone, so the leave itself is what is tested.
            guard nodes[name]!.machine != nil, nodes[name]!.leaveRequested == nil else { return }
            nodes[name]!.machine = nil
            nodes[name]!.incarnation += 1
            var lost = 0
            if Double.random(in: 0..<1, using: &rng) < faults.tailLossPerCrash {
                lost = nodes[name]!.disk.loseTail(Int.random(in: 1...SimulatedDisk.journalLimit, using: &rng))
                if lost > 0 { nodes[name]!.lostData = true }
                writesLostFromTails += lost
            }
            if tracing { log.append("\(now) CRASH \(name)\(lost > 0 ? " losing its last \(lost) writes" : "")") }
            for key in keys { try checkDurability(of: key) }
        case .disk(let name, let full):
            nodes[name]!.disk.isFull = full && !calm
            if tracing { log.append("\(now) DISK \(name) \(full ? "FULL" : "FREED")") }
        case .restart(let name):
            step(restart: name)
        case .partition(let groups):
            partition = groups
            if tracing { log.append("\(now) PARTITION \(groups)") }
        case .heal:
            partition = nil
            if tracing { log.append("\(now) HEAL") }
        case .calm:
            partition = nil
            calm = true
            for name in names { nodes[name]!.disk.isFull = false }
            for name in names where nodes[name]!.machine == nil { step(restart: name) }
            if membershipChanges { try step(.join(names.last!)) }
            if tracing { log.append("\(now) CALM") }
        }
    }

    private func step(restart name: NodeName) {
        guard nodes[name]!.machine == nil, nodes[name]!.started, !nodes[name]!.left else { return }
        nodes[name]!.settings.generation += 1
        nodes[name]!.store = try! ReplicaStore(engine: nodes[name]!.disk)
        if nodes[name]!.lostData {
            // The product's seal shows the store went back: it refills as a new node does.
            nodes[name]!.settings.freshIdentity = true
            nodes[name]!.settings.awaitPeers = nodes[name]!.settings.seeds.isEmpty
            nodes[name]!.settings.dotFloor = max(nodes[name]!.settings.dotFloor, timestamps.wallMs)
            nodes[name]!.lostData = false
            refills += 1
        }
        start(name)
        if tracing { log.append("\(now) RESTART \(name)\(nodes[name]!.settings.freshIdentity ? " to refill" : "")") }
    }

    // MARK: Clients

    private func issue(_ op: ClientOp, at node: NodeName) throws {
        let id = nextClientID
        nextClientID += 1
        clientOps[id] = (node, op)
        switch op {
        case .read(let key), .write(let key, _, readFirst: true):
            try feed(node, .clientGet(id: id, key: key, r: nil))
        case .write(let key, let value, readFirst: false):
            writesAttempted += 1
            try feed(node, .clientWrite(id: id, key: key, value: value, context: nil, w: nil))
        }
    }

    private var contexts: [UInt64: CausalHistory?] = [:]

    private func clientReplied(_ id: UInt64, _ reply: ClientReply) throws {
        guard let (node, op) = clientOps.removeValue(forKey: id) else { return }
        switch (op, reply) {
        case (.read, .read(let outcome)):
            if outcome.succeeded { readsAnswered += 1 }
            readProbe?(outcome)
        case (.write(let key, let value, true), .read(let outcome)):
            // Read-modify-write: write with the context of what was read (if the read worked).
            guard outcome.succeeded, nodes[node]?.machine != nil else { return }
            let context = outcome.object.isEmpty ? nil : outcome.object.context
            let writeID = nextClientID
            nextClientID += 1
            clientOps[writeID] = (node, .write(key: key, value: value, readFirst: false))
            contexts[writeID] = context
            writesAttempted += 1
            try feed(node, .clientWrite(id: writeID, key: key, value: value, context: context, w: nil))
        case (.write(let key, let value, false), .write(let result)):
            if tracing {
                log.append(
                    "\(now) \(result.succeeded ? "ACK" : "FAIL") \(value == nil ? "delete" : "put") \(String(decoding: key, as: UTF8.self)) dot \(result.dot.map(\.description) ?? "-") ctx \((contexts[id] ?? nil)?.description ?? "none") via \(node)"
                )
            }
            if result.succeeded, let dot = result.dot {
                let covered = contexts.removeValue(forKey: id) ?? nil
                acked.append(AckedWrite(key: key, dot: dot, deleted: value == nil, covered: covered))
            }
            contexts[id] = nil
        default:
            throw violation("client \(id) got a mismatched reply \(reply)")
        }
    }

    // MARK: Invariants

    func violation(_ message: String) -> Violation {
        Violation(seed: seed, message: "at \(now) ms after \(steps) steps: \(message)")
    }

    /// Everything the cluster holds for `key`: own data and hints on every node, merged.
    public func everything(for key: [UInt8]) -> VersionedObject {
        names.reduce(VersionedObject()) { merged, name in
            guard case .object(let object?) = nodes[name]!.store.execute(.read(key: key), policy: policy) else {
                return merged
            }
            return merged.merged(with: object, policy: policy)
        }
    }

    /// Where a version is held: "n2 (own)", "n5 (hint for n4)".
    func holders(of version: Version, key: [UInt8]) -> [String] {
        names.flatMap { name -> [String] in
            let store = nodes[name]!.store
            var found: [String] = []
            if (try? store.object(for: key))??.versions.contains(version) == true { found.append("\(name) (own)") }
            if case .hints(let hints, _) = store.execute(.loadHints(limit: 1000, targets: Set(names)), policy: policy) {
                for hint in hints where hint.key == key && hint.object.versions.contains(version) {
                    found.append("\(name) (hint for \(hint.target))")
                }
            }
            return found
        }
    }

    private func checkKey(of op: StorageOp) throws {
        switch op {
        case .merge(let key, _, _, _), .coordinateWrite(let key, _, _, _, _, _, _, _, _), .forget(let key, _):
            try checkDurability(of: key)
        default: break
        }
    }

    /// No acknowledged version of `key` is gone from the whole cluster unless a version
    /// that supersedes it is there; no version an acknowledged write covered is back.
    func checkDurability(of key: [UInt8]) throws {
        let all = everything(for: key)
        // A dot names one version: two different versions with one dot mean a coordinator
        // reused it (it lost the history that held it), and one of them can silently win.
        var byDot: [Dot: Version] = [:]
        var held: [Version] = []
        for name in names {
            let store = nodes[name]!.store
            held += ((try? store.object(for: key)) ?? nil)?.versions ?? []
            if case .hints(let hints, _) = store.execute(.loadHints(limit: 1000, targets: Set(names)), policy: policy) {
                for hint in hints where hint.key == key { held += hint.object.versions }
            }
        }
        for version in held {
            if let other = byDot.updateValue(version, forKey: version.dot), other != version {
                throw violation(
                    "dot \(version.dot) of \(String(decoding: key, as: UTF8.self)) names two versions, on \(holders(of: version, key: key)) and \(holders(of: other, key: key))"
                )
            }
        }
        let graves = reaped[key] ?? []
        // The reaped tombstones themselves may linger on replicas that have not reaped yet
        // (or be spread again by read repair); what they superseded must never return.
        for version in all.versions
        where graves.contains(where: { $0.context.covers(version.dot) && !$0.versions.contains(version) }) {
            throw violation(
                "version \(version.dot) of \(String(decoding: key, as: UTF8.self)) came back after its tombstone was reaped, on \(holders(of: version, key: key))"
            )
        }
        for write in acked where write.key == key {
            let present =
                Self.holds(write, in: all)
                || graves.contains { $0.context.covers(write.dot) }
            if !present {
                throw violation("acknowledged write \(write.dot) of \(String(decoding: key, as: UTF8.self)) is lost")
            }
            if let covered = write.covered,
                let ghost = all.versions.first(where: { covered.covers($0.dot) && $0.dot != write.dot })
            {
                throw violation("version \(ghost.dot) came back after \(write.dot) replaced it")
            }
        }
    }

    /// After the faults stop: membership converged, every hint delivered and deleted, and
    /// a quorum read through any node returns every acknowledged write (or what replaced it).
    /// Nodes that are part of the cluster at the end.
    var active: [NodeName] { names.filter { nodes[$0]!.started && !nodes[$0]!.left } }

    func checkFinal() throws {
        if antiEntropyOnly { return try checkConverged() }
        if let leaver = names.first(where: { nodes[$0]!.leaveRequested != nil }), !nodes[leaver]!.left {
            throw violation("\(leaver) never finished leaving")
        }
        for key in keys {
            try checkDurability(of: key)
            // Tombstones do not pile up: well past the grace period, every all-tombstone key is gone.
            let all = everything(for: key)
            let wallNow = timestamps.wallMs
            if all.isDeleted, all.versions.allSatisfy({ $0.timestamp + 4_000 < wallNow }) {
                throw violation("tombstone of \(String(decoding: key, as: UTF8.self)) was never reaped")
            }
        }
        for name in active {
            let machine = nodes[name]!.machine!
            let seen = Set(machine.membership.members.keys)
            if !seen.isSuperset(of: active) { throw violation("\(name) knows only \(seen.sorted())") }
            for other in active where machine.status(of: other, at: now) != .up {
                throw violation("\(name) sees \(other) as \(machine.status(of: other, at: now).map(\.rawValue) ?? "?")")
            }
            let hints = nodes[name]!.store.hintCounts
            if !hints.isEmpty { throw violation("\(name) still holds hints \(hints)") }
            for key in keys where (try? nodes[name]!.store.object(for: key)) ?? nil != nil {
                let home = machine.membership.routingRing.preferenceList(forKey: key).home(3)
                if !home.contains(name) {
                    throw violation(
                        "\(name) still holds \(String(decoding: key, as: UTF8.self)) though its home is \(home)")
                }
            }
        }
        for key in keys {
            let id = nextClientID
            nextClientID += 1
            let node = active.randomElement(using: &rng)!
            var answer: GetCoordinator.Outcome?
            clientOps[id] = (node, .read(key: key))
            readProbe = { answer = $0 }
            try feed(node, .clientGet(id: id, key: key, r: 2))
            try runUntil(now + 1_000)
            readProbe = nil
            guard let outcome = answer, outcome.succeeded else {
                throw violation("final read of \(String(decoding: key, as: UTF8.self)) via \(node) failed")
            }
            for write in acked where write.key == key {
                let visible =
                    Self.holds(write, in: outcome.object)
                    || (reaped[key] ?? []).contains { $0.context.covers(write.dot) }
                if !visible {
                    throw violation(
                        "final read via \(node) misses acknowledged write \(write.dot) of \(String(decoding: key, as: UTF8.self))"
                    )
                }
            }
        }
    }

    private var readProbe: ((GetCoordinator.Outcome) -> Void)?

    /// Anti-entropy alone: every home replica of every key holds the same versions, which
    /// include every acknowledged write (or what superseded it).
    func checkConverged() throws {
        for key in keys {
            try checkDurability(of: key)
            let machine = nodes[names[0]]!.machine!
            let home = machine.membership.routingRing.preferenceList(forKey: key).home(3)
            let copies = home.map { (try? nodes[$0]!.store.object(for: key)) ?? nil }
            guard let first = copies.first, copies.allSatisfy({ $0 == first }) else {
                throw violation(
                    "replicas of \(String(decoding: key, as: UTF8.self)) on \(home) did not converge: \(copies.map { $0?.versions.map(\.dot) ?? [] })"
                )
            }
            let merged = copies.compactMap { $0 }.first ?? VersionedObject()
            for write in acked where write.key == key {
                if !Self.holds(write, in: merged) {
                    throw violation("converged replicas of \(String(decoding: key, as: UTF8.self)) miss \(write.dot)")
                }
            }
        }
    }

    /// Whether `object` holds the version of `write`, or a version that superseded it.
    static func holds(_ write: AckedWrite, in object: VersionedObject) -> Bool {
        object.versions.contains { $0.dot == write.dot || $0.past.covers(write.dot) }
    }

    /// How many keys anti-entropy repaired across the cluster.
    public var keysRepairedByExchange: Int {
        names.compactMap { nodes[$0]!.machine?.keysRepairedByExchange }.reduce(0, +)
    }
}
