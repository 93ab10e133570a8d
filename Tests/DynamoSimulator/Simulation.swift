public import DynamoCore
import DynamoStorage
import DynamoWire

/// A deterministic simulation of a cluster: the real `NodeMachine`s of several nodes wired
/// through an in-memory network driven by one seeded random generator.
///
/// The network drops, delays (sometimes past the deadline), duplicates and reorders
/// messages, and cuts links both ways or one way. Nodes run slow, crash (two may be down at
/// once, sometimes for longer than the tombstone grace) and lose power, and their clocks
/// disagree. Storage runs as in the product: each node's operations queue for a pool of two
/// workers and complete later, possibly out of order; a crash loses what had not reached the
/// engine, a power loss also what was not synced (`SimulatedDisk`), and every restart
/// rebuilds the store from the disk's bytes. Disks fill up and free again. Clients write,
/// delete and read throughout, and an independent `ClientModel` of what they were told is
/// checked against the cluster by value after every storage step and at the end, where a
/// read with R=N must show every acknowledged write. A failure names the seed, and the same
/// seed replays the same run.
public final class Simulation {
    /// How hostile the run is.
    public struct Faults: Sendable {
        public var dropRate = 0.02
        /// Requests and responses alike are sometimes delivered twice.
        public var duplicateRate = 0.02
        public var maxDelayMs: UInt64 = 15
        /// Chance that a message is held up for 200-700 ms, past the 300 ms deadline.
        public var lateRate = 0.01
        /// Chance per second that a node runs slow for 0.5-2 s: its storage operations take
        /// 40-350 ms and its messages 100-500 ms longer.
        public var slowNodesPerSecond = 0.15
        /// Share of partitions that cut one way only: some nodes are heard but not answered.
        public var oneWayPartitionShare = 0.3
        /// Chance per second that a partition starts (when none is active).
        public var partitionsPerSecond = 0.15
        /// Chance per second that a running node crashes (at most `maxDown` down at a time).
        public var crashesPerSecond = 0.3
        public var maxDown = 2
        /// Share of crashes that take two nodes down together (a rack losing power).
        public var pairCrashShare = 0.2
        /// Share of crashes that last longer than the tombstone grace period.
        public var longOutageShare = 0.25
        /// Share of crashes that are power losses: writes not synced are gone too.
        public var powerLossPerCrash = 0.4
        /// Nodes' wall clocks differ by up to this much (each node keeps its offset).
        public var maxClockSkewMs: UInt64 = 800
        /// Chance that a crash also loses the last writes of the node's log (up to 64): the
        /// node notices (as the product does by its seal) and refills from its replicas.
        public var tailLossPerCrash = 0.5
        /// Faults that destroy stored data are budgeted as the durability promise is: a
        /// damaged log (it takes synced writes too) strikes while no other node's loss is
        /// unrepaired (down or still refilling) and not within this long of any other loss,
        /// since two at once can take both copies of a W=2 write. Power losses take only
        /// unsynced writes, which the coordinator's fsync covers: several may strike
        /// together, just not near a damaged log nor while a noticed loss is refilled.
        public var repairWindowMs: UInt64 = 3_000
        /// Chance per second that a node's disk fills up (for 0.2 to 1.5 s): its writes fail.
        public var diskFullsPerSecond = 0.1

        public init() {}

        public static let none: Faults = {
            var f = Faults()
            f.dropRate = 0
            f.duplicateRate = 0
            f.lateRate = 0
            f.slowNodesPerSecond = 0
            f.maxClockSkewMs = 0
            f.powerLossPerCrash = 0
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
        /// Storage operations waiting for one of the node's two pool workers, and how many
        /// workers are busy (as `NIOThreadPool(numberOfThreads: 2)` in the product).
        var storageQueue: [(token: StorageToken, op: StorageOp)] = []
        var busyWorkers = 0
        /// A worker is writing a batch of changes (group commit: one at a time, as the
        /// product's `NodeRuntime` does; changes queued meanwhile go as the next batch).
        var writingBatch = false
        /// Running slow until then (monotonic ms).
        var slowUntil: UInt64 = 0
        /// This node's wall clock is off by this much.
        var clockSkewMs: Int64 = 0
        var lastSeal: UInt64 = 0
        var crashedAt: UInt64 = 0
    }

    /// A one-way link, cut by a partition.
    struct Link: Hashable {
        var from: NodeName
        var to: NodeName
    }

    enum Event {
        case tick(NodeName, incarnation: UInt64)
        case request(from: NodeName, fromIncarnation: UInt64, to: NodeName, requestID: PeerRequestID, PeerRequest)
        case response(to: NodeName, incarnation: UInt64, requestID: PeerRequestID, PeerResponse?)
        /// A pool worker finishes an operation: its effect happens now.
        case execute(NodeName, incarnation: UInt64, [(token: StorageToken, op: StorageOp)])
        /// The operation's result reaches the node's event loop.
        case storage(NodeName, incarnation: UInt64, token: StorageToken, StorageCompletion)
        case client(ClientOp)
        case crash(NodeName, powerLoss: Bool)
        case restart(NodeName)
        case slow(NodeName, forMs: UInt64)
        case disk(NodeName, full: Bool)
        case partition(Set<Link>)
        case heal
        case join(NodeName)
        case leave(NodeName)
        /// The faults stop for good: no partitions, loss or duplication from here on.
        case calm
    }

    enum ClientOp {
        case write(key: [UInt8], deleting: Bool, readFirst: Bool)
        case read(key: [UInt8])
    }

    public let seed: UInt64
    public let names: [NodeName]
    public let faults: Faults
    public private(set) var now: UInt64 = 0
    public private(set) var steps = 0
    /// What clients did and were told, checked against the cluster by value.
    public private(set) var model = ClientModel()
    public var acknowledged: Int { model.writes.count { $0.acked } }
    public var writesAttempted: Int { model.writes.count }
    public private(set) var log: [String] = []
    /// Every running node's machine.
    public var machines: [NodeMachine] { names.compactMap { nodes[$0]!.machine } }

    public var tombstonesReaped: Int { names.compactMap { nodes[$0]!.machine?.tombstonesReaped }.reduce(0, +) }
    public private(set) var readsAnswered = 0
    /// Disk faults that happened: writes lost from log tails, restarts that refilled, and
    /// storage writes a full disk refused (coordinated writes among them).
    public private(set) var writesLostFromTails = 0
    public private(set) var writesLostToPowerLoss = 0
    public private(set) var powerLossesNoticed = 0
    /// Bytes of anti-entropy messages sent (tree requests and their answers, as the real
    /// wire codec encodes them).
    public private(set) var antiEntropyBytes = 0
    /// Messages that arrived after the 300 ms deadline of the request they belong to.
    public private(set) var messagesPastDeadline = 0
    public private(set) var maxDownAtOnce = 0
    /// When a fault last destroyed stored data (see `Faults.repairWindowMs`).
    private var lastDestruction: UInt64?
    private var lastDamagedLog: UInt64?
    /// The longest time a node was down (ms).
    public private(set) var longestOutage: UInt64 = 0
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
    /// Client write ids (machine's) -> the model's write id.
    private var modelWrites: [UInt64: Int] = [:]
    /// Handles of peer requests being served -> who asked.
    private var inbound: [PeerHandle: (from: NodeName, incarnation: UInt64, requestID: PeerRequestID)] = [:]
    private var nextHandle: UInt64 = 1
    private var cut: Set<Link> = []
    private var calm = false
    let policy: ClockPolicy
    /// Every peer message goes through the real wire codec (encoded and decoded).
    public let wireCodec: Bool
    public let keys: [[UInt8]]
    public var tracing = false
    /// Every client request is traced (`X-Dynamo-Trace`), as `sim-ID`.
    public var traceRequests = false

    /// With `membershipChanges`, a sixth node joins during the run and another node leaves.
    public let membershipChanges: Bool
    /// Read repair and hinted handoff off, anti-entropy every 500 ms: replicas must converge
    /// through Merkle exchanges alone (the faults are then message loss, duplication and
    /// delay, which make replicas miss writes without sloppy hints standing in).
    public let antiEntropyOnly: Bool

    public init(
        seed: UInt64, nodes count: Int = 5, keys keyCount: Int = 6, faults: Faults = Faults(),
        membershipChanges: Bool = false, antiEntropyOnly: Bool = false, syncReplicaWrites: Bool = false,
        clockMaxEntries: Int = 10, wireCodec: Bool = false
    ) throws {
        self.seed = seed
        self.policy = ClockPolicy(maxEntries: clockMaxEntries)
        self.wireCodec = wireCodec
        var faults = faults
        if antiEntropyOnly {
            faults.partitionsPerSecond = 0
            faults.crashesPerSecond = 0
            // Replicas must miss writes for anti-entropy to have work (unless no fault is wanted).
            if faults.duplicateRate > 0 { faults.dropRate = max(faults.dropRate, 0.1) }
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
                durability: syncReplicaWrites ? .all : .coordinator, freshIdentity: i >= count, antiEntropyIntervalMs: antiEntropyOnly ? 500 : 2_000,
                readRepair: !antiEntropyOnly, sloppyQuorum: !antiEntropyOnly,
                clusterKey: Self.clusterKey)
            let disk = SimulatedDisk()
            nodes[name] = Node(settings: settings, machine: nil, disk: disk, store: try ReplicaStore(engine: disk))
            let skew = Int64(faults.maxClockSkewMs)
            nodes[name]!.clockSkewMs = Int64.random(in: -skew...skew, using: &rng)
            nodes[name]!.settings.clocks = policy
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

    /// The wall clock every node would read without skew.
    private var wallMs: UInt64 { 1_700_000_000_000 + now }

    private func timestamps(of name: NodeName) -> NodeMachine.Now {
        let skew = nodes[name]?.clockSkewMs ?? 0
        return NodeMachine.Now(monotonicMs: now, wallMs: UInt64(Int64(wallMs) + skew))
    }

    private func feed(_ name: NodeName, _ input: NodeMachine.Input) throws {
        guard var node = nodes[name], var machine = node.machine else { return }
        let actions = machine.handle(input, now: timestamps(of: name))
        node.machine = machine
        nodes[name] = node
        for action in actions { try execute(action, at: name) }
    }

    private func address(_ address: String) -> NodeName? {
        names.first { nodes[$0]!.settings.peerAddress == address }
    }

    private func canTalk(_ from: NodeName, _ to: NodeName) -> Bool { !cut.contains(Link(from: from, to: to)) }

    private func isSlow(_ name: NodeName) -> Bool { !calm && now < nodes[name]!.slowUntil }

    /// How long a message from `from` to `to` takes: usually a few ms; past the deadline
    /// when the network holds it up or either end runs slow.
    private func delay(from: NodeName, to: NodeName) -> UInt64 {
        var delay = UInt64.random(in: 1...max(1, faults.maxDelayMs), using: &rng)
        if !calm, Double.random(in: 0..<1, using: &rng) < faults.lateRate {
            delay += UInt64.random(in: 200...700, using: &rng)
        }
        if isSlow(from) || isSlow(to) { delay += UInt64.random(in: 100...500, using: &rng) }
        if delay > 300 { messagesPastDeadline += 1 }
        return delay
    }

    /// Whether the network loses this message.
    private var lost: Bool { !calm && Double.random(in: 0..<1, using: &rng) < faults.dropRate }
    private var duplicated: Bool { !calm && Double.random(in: 0..<1, using: &rng) < faults.duplicateRate }

    /// A message as the peer receives it: through the real codec when `wireCodec` is set.
    private func overTheWire(_ message: PeerMessage) throws -> PeerMessage {
        guard wireCodec else { return message }
        do {
            return try PeerCodec.decode(PeerCodec.encode(message))
        } catch {
            throw violation("the wire codec cannot decode what it encoded: \(error) for \(message)")
        }
    }

    private func execute(_ action: NodeMachine.Action, at name: NodeName) throws {
        let incarnation = nodes[name]!.incarnation
        switch action {
        case .send(let requestID, let toAddress, let request):
            guard let target = address(toAddress), nodes[target]?.machine != nil else {
                // Connection refused: the sender learns at once.
                schedule(.response(to: name, incarnation: incarnation, requestID: requestID, nil), in: 1)
                return
            }
            if case .treeChildren = request { antiEntropyBytes += PeerCodec.encode(.request(id: requestID.value, request)).count }
            if case .treeSegments = request { antiEntropyBytes += PeerCodec.encode(.request(id: requestID.value, request)).count }
            guard canTalk(name, target), !lost else { return }  // the sender's deadline turns it into a failure
            guard case .request(_, let delivered) = try overTheWire(.request(id: requestID.value, request)) else {
                throw violation("the wire codec turned a request into something else")
            }
            let event = Event.request(
                from: name, fromIncarnation: incarnation, to: target, requestID: requestID, delivered)
            schedule(event, in: delay(from: name, to: target))
            if duplicated { schedule(event, in: delay(from: name, to: target)) }
        case .respond(let handle, let response):
            guard let asker = inbound.removeValue(forKey: handle) else { return }
            switch response {
            case .treeHashes, .treeKeys:
                antiEntropyBytes += PeerCodec.encode(.response(id: asker.requestID.value, response)).count
            default: break
            }
            guard canTalk(name, asker.from), !lost else { return }
            guard case .response(_, let delivered) = try overTheWire(.response(id: asker.requestID.value, response)) else {
                throw violation("the wire codec turned a response into something else")
            }
            let event = Event.response(
                to: asker.from, incarnation: asker.incarnation, requestID: asker.requestID, delivered)
            schedule(event, in: delay(from: name, to: asker.from))
            if duplicated { schedule(event, in: delay(from: name, to: asker.from)) }
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
            // Queued for the node's pool; it takes effect when a worker finishes it.
            nodes[name]!.storageQueue.append((token, op))
            startWorkers(name)
        case .readReply(let client, let outcome):
            try clientReplied(client.value, .read(outcome))
        case .writeReply(let client, let result):
            try clientReplied(client.value, .write(result))
        case .event(let event):
            if tracing { log.append("\(now) \(event.text(node: name))") }
        case .objectNearLimit:
            break
        }
    }

    /// Hands queued storage operations to idle workers (two per node), as the product's
    /// shell does: every queued change together as one write batch while no batch is being
    /// written, and reads one at a time, first come first served. Each takes a few ms, or
    /// much longer while the node runs slow.
    private func startWorkers(_ name: NodeName) {
        while nodes[name]!.busyWorkers < 2 {
            let queue = nodes[name]!.storageQueue
            let batch: [(token: StorageToken, op: StorageOp)]
            if !nodes[name]!.writingBatch, queue.contains(where: { $0.op.changesData }) {
                let taken = queue.indices.filter { queue[$0].op.changesData }.prefix(512)
                batch = taken.map { queue[$0] }
                let takenSet = Set(taken)
                nodes[name]!.storageQueue = queue.indices.filter { !takenSet.contains($0) }.map { queue[$0] }
                nodes[name]!.writingBatch = true
            } else if let index = queue.firstIndex(where: { !$0.op.changesData }) {
                batch = [nodes[name]!.storageQueue.remove(at: index)]
            } else {
                break
            }
            nodes[name]!.busyWorkers += 1
            let duration =
                isSlow(name) ? UInt64.random(in: 40...350, using: &rng) : UInt64.random(in: 0...4, using: &rng)
            schedule(.execute(name, incarnation: nodes[name]!.incarnation, batch), in: duration)
        }
    }

    /// A worker runs a batch against the store (changes in one transaction); each result
    /// reaches the node a moment later (and is lost if the node dies meanwhile, though the
    /// effect stays).
    private func run(_ batch: [(token: StorageToken, op: StorageOp)], at name: NodeName) throws {
        let completions = nodes[name]!.store.perform(batch: batch.map(\.op), policy: policy)
        nodes[name]!.busyWorkers -= 1
        if batch.contains(where: { $0.op.changesData }) { nodes[name]!.writingBatch = false }
        for ((token, op), done) in zip(batch, completions) { try completed(op, done, token: token, at: name) }
        startWorkers(name)
    }

    /// What a finished storage operation means for the checks, and its result on the way.
    private func completed(_ op: StorageOp, _ done: StorageCompletion, token: StorageToken, at name: NodeName) throws {
        let incarnation = nodes[name]!.incarnation
        let result = done.result
        if case .failed = result, nodes[name]!.disk.isFull {
            writesRefusedByFullDisks += 1
            if case .coordinateWrite = op { coordinationsRefusedByFullDisks += 1 }
        }
        // An all-tombstone object forgotten by one of its home nodes is a reaped grave;
        // anything forgotten elsewhere was handed off and must still be found at its home.
        if case .forget(let key, let object) = op, case .removed(true) = result, object.isDeleted,
            nodes[name]!.machine?.membership.routingRing.preferenceList(forKey: key).home(3).contains(name) == true
        {
            reaped[key, default: []].append(object)
        }
        if case .coordinateWrite(let key, let value, let context, _, _, _, _, _, _) = op,
            case .version(let version, _) = result
        {
            model.stored(key: key, value: value, context: context, dot: version.dot)
        }
        if tracing { trace(op, result, at: name) }
        try checkKey(of: op)
        schedule(
            .storage(name, incarnation: incarnation, token: token, done),
            in: UInt64.random(in: 0...2, using: &rng))
    }

    private func trace(_ op: StorageOp, _ result: StorageResult, at name: NodeName) {
        let text: String
        switch op {
        case .forget(let key, let object):
            text = "FORGET \(String(decoding: key, as: UTF8.self)) on \(name) \(object.versions.map(\.dot)) -> \(result)"
        case .coordinateWrite(let key, _, let context, _, _, let hintFor, _, _, _):
            text =
                "COORDINATE \(String(decoding: key, as: UTF8.self)) on \(name) hintFor \(hintFor ?? "-") ctx \(context?.description ?? "none") -> \(result)"
        case .removeHint(let hint):
            text =
                "REMOVEHINT \(String(decoding: hint.key, as: UTF8.self)) on \(name) for \(hint.target) \(hint.object.versions.map(\.dot)) -> \(result)"
        case .merge(let key, let object, let hintFor, let sync):
            text =
                "MERGE \(String(decoding: key, as: UTF8.self)) on \(name)\(hintFor.map { " (hint for \($0))" } ?? "")\(sync ? " synced" : "") versions \(object.versions.map { "\($0.dot)\($0.isTombstone ? "†" : "") past \($0.past)" }) -> \(result)"
        default: return
        }
        log.append("\(now) \(text)")
    }

    // MARK: Running

    /// Runs the workload with faults for `duration` ms, then heals everything and lets the
    /// cluster settle for `settle` ms, then checks the final invariants.
    public func run(duration: UInt64 = 6_000, settle: UInt64 = 6_000, clientOpsPerSecond: Double = 40) throws {
        // Client operations and faults are planned up front from the seed.
        var t: UInt64 = 500
        while clientOpsPerSecond > 0, t < duration {
            t += UInt64(Double.random(in: 0.2...1.8, using: &rng) * 1000 / clientOpsPerSecond)
            let key = keys.randomElement(using: &rng)!
            let op: ClientOp
            switch Int.random(in: 0..<10, using: &rng) {
            case 0...1: op = .read(key: key)
            case 2: op = .write(key: key, deleting: true, readFirst: true)
            case 3...5: op = .write(key: key, deleting: false, readFirst: false)
            default: op = .write(key: key, deleting: false, readFirst: true)
            }
            schedule(.client(op), in: t)
        }
        var f: UInt64 = 1_000
        while f < duration {
            f += 250
            if Double.random(in: 0..<1, using: &rng) < faults.slowNodesPerSecond / 4 {
                schedule(
                    .slow(names.randomElement(using: &rng)!, forMs: UInt64.random(in: 500...2_000, using: &rng)),
                    in: f)
            }
            if Double.random(in: 0..<1, using: &rng) < faults.partitionsPerSecond / 4 {
                let shuffled = names.shuffled(using: &rng)
                let split = Int.random(in: 1..<names.count, using: &rng)
                let (side, other) = (shuffled[..<split], shuffled[split...])
                // One way: `side` is heard by the others but cannot hear them.
                let oneWay = Double.random(in: 0..<1, using: &rng) < faults.oneWayPartitionShare
                var links: Set<Link> = []
                for a in side {
                    for b in other {
                        links.insert(Link(from: b, to: a))
                        if !oneWay { links.insert(Link(from: a, to: b)) }
                    }
                }
                schedule(.partition(links), in: f)
                f += UInt64.random(in: 300...1_500, using: &rng)
                schedule(.heal, in: f)
            }
            if Double.random(in: 0..<1, using: &rng) < faults.crashesPerSecond / 4 {
                // Outages overlap (up to `maxDown` at once); some outlast the tombstone grace.
                let pair = Double.random(in: 0..<1, using: &rng) < faults.pairCrashShare
                for victim in names.shuffled(using: &rng).prefix(pair ? 2 : 1) {
                    let powerLoss = Double.random(in: 0..<1, using: &rng) < faults.powerLossPerCrash
                    let long = Double.random(in: 0..<1, using: &rng) < faults.longOutageShare
                    schedule(.crash(victim, powerLoss: powerLoss), in: f)
                    let outage =
                        long ? UInt64.random(in: 2_500...4_500, using: &rng) : UInt64.random(in: 200...1_500, using: &rng)
                    schedule(.restart(victim), in: f + outage)
                }
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

    private var downCount: Int { names.count { nodes[$0]!.started && !nodes[$0]!.left && nodes[$0]!.machine == nil } }

    private func step(_ event: Event) throws {
        switch event {
        case .tick(let name, let incarnation):
            guard nodes[name]?.incarnation == incarnation, nodes[name]?.machine != nil else { return }
            try feed(name, .tick)
            // The product refreshes its store's seal about once a second.
            if now >= nodes[name]!.lastSeal + 1_000 {
                nodes[name]!.disk.seal()
                nodes[name]!.lastSeal = now
            }
            // A leaving node that holds nothing any more exits, as the product's shell does.
            if let since = nodes[name]!.leaveRequested, now >= since + 300, nodes[name]!.store.keyCount == 0,
                nodes[name]!.store.hintCounts.isEmpty
            {
                if nodes[name]!.machine?.membership.local.status == .leaving { try feed(name, .depart) }
            }
            if nodes[name]!.leaveRequested != nil, nodes[name]!.machine?.hasDeparted == true,
                nodes[name]!.store.keyCount == 0, nodes[name]!.store.hintCounts.isEmpty
            {
                nodes[name]!.machine = nil
                nodes[name]!.left = true
                nodes[name]!.incarnation += 1
                dropClientRequests(at: name)
                if tracing { log.append("\(now) LEFT \(name)") }
                return
            }
            schedule(.tick(name, incarnation: incarnation), in: isSlow(name) ? UInt64.random(in: 50...300, using: &rng) : 20)
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
            let handle = PeerHandle(nextHandle)
            nextHandle += 1
            inbound[handle] = (from, fromIncarnation, requestID)
            try feed(to, .peerRequest(handle: handle, from: from, request))
        case .response(let to, let incarnation, let requestID, let response):
            guard nodes[to]?.incarnation == incarnation else { return }
            try feed(to, .peerResponse(requestID: requestID, response))
        case .execute(let name, let incarnation, let batch):
            // A crash lost what had not reached the engine.
            guard nodes[name]?.incarnation == incarnation else { return }
            try run(batch, at: name)
        case .storage(let name, let incarnation, let token, let done):
            guard nodes[name]?.incarnation == incarnation else { return }
            try feed(name, .storageResult(token: token, done.result, treeUpdates: done.treeUpdates))
        case .client(let op):
            let alive = names.filter { nodes[$0]!.machine != nil && nodes[$0]!.leaveRequested == nil }
            guard let node = alive.randomElement(using: &rng) else { return }
            try issue(op, at: node)
        case .crash(let name, let powerLoss):
            // A leaving node is left alone, so the leave itself is what is tested.
            guard !calm, nodes[name]!.machine != nil, nodes[name]!.leaveRequested == nil, downCount < faults.maxDown
            else {
                return
            }
            nodes[name]!.machine = nil
            nodes[name]!.incarnation += 1
            dropClientRequests(at: name)
            nodes[name]!.storageQueue = []
            nodes[name]!.busyWorkers = 0
            nodes[name]!.writingBatch = false
            nodes[name]!.crashedAt = now
            maxDownAtOnce = max(maxDownAtOnce, downCount)
            var what: [String] = []
            // A damaged log destroys synced writes: at most one node's at a time, and none
            // near any other loss. Power losses only take unsynced writes, which the
            // durability mode promises to cover: they may strike together (a rack), just not
            // near a damaged log nor while a noticed loss is being refilled.
            let unrepaired = names.contains {
                nodes[$0]!.lostData || (nodes[$0]!.machine != nil && nodes[$0]!.settings.freshIdentity)
            }
            let clear = { (last: UInt64?) in last.map { self.now >= $0 + self.faults.repairWindowMs } ?? true }
            let damagedLog =
                Double.random(in: 0..<1, using: &rng) < faults.tailLossPerCrash && !unrepaired
                && clear(lastDestruction)
            let powerLoss = powerLoss && !unrepaired && clear(lastDamagedLog)
            if powerLoss || damagedLog { lastDestruction = now }
            if damagedLog { lastDamagedLog = now }
            if powerLoss {
                let lost = nodes[name]!.disk.losePower()
                writesLostToPowerLoss += lost
                // Noticed only if the store went behind its seal (as in the product).
                if nodes[name]!.disk.wentBehindSeal {
                    nodes[name]!.lostData = true
                    powerLossesNoticed += 1
                }
                what.append("power lost: \(lost) unsynced writes undone")
            }
            if damagedLog {
                // A damaged log: the product refuses it at open and refills.
                let lost = nodes[name]!.disk.loseTail(Int.random(in: 1...SimulatedDisk.journalLimit, using: &rng))
                if lost > 0 { nodes[name]!.lostData = true }
                writesLostFromTails += lost
                what.append("log tail lost: \(lost) writes")
            }
            if tracing { log.append("\(now) CRASH \(name) \(what.joined(separator: ", "))") }
            for key in keys { try checkDurability(of: key) }
        case .slow(let name, let forMs):
            nodes[name]!.slowUntil = max(nodes[name]!.slowUntil, now + forMs)
            if tracing { log.append("\(now) SLOW \(name) for \(forMs) ms") }
        case .disk(let name, let full):
            nodes[name]!.disk.isFull = full && !calm
            if tracing { log.append("\(now) DISK \(name) \(full ? "FULL" : "FREED")") }
        case .restart(let name):
            step(restart: name)
        case .partition(let links):
            guard !calm else { return }
            cut = links
            if tracing {
                log.append("\(now) PARTITION \(links.map { "\($0.from)->\($0.to)" }.sorted().joined(separator: " "))")
            }
        case .heal:
            cut = []
            if tracing { log.append("\(now) HEAL") }
        case .calm:
            cut = []
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
        longestOutage = max(longestOutage, now - nodes[name]!.crashedAt)
        // The store is opened anew from the disk's bytes: counts and trees are rebuilt.
        nodes[name]!.store = try! ReplicaStore(engine: nodes[name]!.disk)
        if nodes[name]!.lostData {
            // The product's seal shows the store went back: it refills as a new node does.
            nodes[name]!.settings.freshIdentity = true
            nodes[name]!.settings.awaitPeers = nodes[name]!.settings.seeds.isEmpty
            nodes[name]!.settings.dotFloor = max(nodes[name]!.settings.dotFloor, timestamps(of: name).wallMs)
            nodes[name]!.lostData = false
            refills += 1
        }
        // The seal, refreshed at start, covers what the store holds now.
        nodes[name]!.disk.seal()
        nodes[name]!.lastSeal = now
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
            try feed(node, .clientGet(id: ClientRequestID(id), key: key, r: nil, trace: traceRequests ? "sim-\(id)" : nil))
        case .write(let key, let deleting, readFirst: false):
            try write(id: id, key: key, deleting: deleting, after: nil, at: node)
        }
    }

    /// Sends a write the model has recorded (with the versions the client's read showed).
    private func write(id: UInt64, key: [UInt8], deleting: Bool, after read: VersionedObject?, at node: NodeName)
        throws
    {
        let (modelID, value) = model.attempt(key: key, deleting: deleting, after: read)
        modelWrites[id] = modelID
        clientOps[id] = (node, .write(key: key, deleting: deleting, readFirst: false))
        let context = read.flatMap { $0.isEmpty ? nil : $0.context }
        if tracing {
            log.append(
                "\(now) WRITE#\(modelID) \(value.map { String(decoding: $0, as: UTF8.self) } ?? "delete") \(String(decoding: key, as: UTF8.self)) ctx \(context?.description ?? "none") via \(node)"
            )
        }
        try feed(
            node,
            .clientWrite(
                id: ClientRequestID(id), key: key, value: value, context: context, w: nil,
                trace: traceRequests ? "sim-\(id)" : nil))
    }

    /// What a client of the simulated cluster was answered.
    enum ClientAnswer {
        case read(GetCoordinator.Outcome)
        case write(WriteResult)
    }

    private func clientReplied(_ id: UInt64, _ reply: ClientAnswer) throws {
        guard let (node, op) = clientOps.removeValue(forKey: id) else { return }
        switch (op, reply) {
        case (.read(let key), .read(let outcome)):
            if tracing {
                log.append(
                    "\(now) READ \(String(decoding: key, as: UTF8.self)) via \(node) \(outcome.succeeded ? "ok" : "failed") replies \(outcome.replies) versions \(outcome.object.versions.map { "\($0.dot) past \($0.past)" })"
                )
            }
            if outcome.succeeded {
                readsAnswered += 1
                // What a client is shown holds only values clients wrote, each under the dot
                // its acknowledgement named. (A sloppy read answered by fallbacks may be stale,
                // as Dynamo allows: what replaced a version is checked on the whole cluster.)
                let problems = model.problems(
                    key: key, present: outcome.object.versions, visible: [], checkLoss: false,
                    checkResurrection: false)
                if let problem = problems.first {
                    throw violation("a read of \(String(decoding: key, as: UTF8.self)) via \(node): \(problem)")
                }
            }
            readProbe?(outcome)
        case (.write(let key, let deleting, true), .read(let outcome)):
            // Read-modify-write: write with the context of what was read (if the read worked).
            guard outcome.succeeded, nodes[node]?.machine != nil else { return }
            let writeID = nextClientID
            nextClientID += 1
            try write(id: writeID, key: key, deleting: deleting, after: outcome.object, at: node)
        case (.write, .write(let result)):
            guard let modelID = modelWrites.removeValue(forKey: id) else { return }
            if tracing {
                log.append(
                    "\(now) \(result.succeeded ? "ACK" : "FAIL") WRITE#\(modelID) dot \(result.dot.map(\.description) ?? "-") via \(node)"
                )
            }
            if result.succeeded {
                guard let dot = result.dot else { throw violation("write \(modelID) was acknowledged without a dot") }
                model.acknowledged(modelID, dot: dot)
            }
        default:
            throw violation("client \(id) got a mismatched reply \(reply)")
        }
    }

    // MARK: Invariants

    func violation(_ message: String) -> Violation {
        Violation(seed: seed, message: "at \(now) ms after \(steps) steps: \(message)")
    }

    /// Pruned clocks can make a replaced version look concurrent again (a false sibling,
    /// as the paper accepts); with pruning possible only loss is checked.
    var checksResurrection: Bool { policy.maxEntries >= names.count }

    /// Everything the cluster holds for `key`: own data and hints on every node, merged.
    public func everything(for key: [UInt8]) -> VersionedObject {
        names.reduce(VersionedObject()) { merged, name in
            guard case .object(let object?) = nodes[name]!.store.execute(.read(key: key), policy: policy) else {
                return merged
            }
            return merged.merged(with: object, policy: policy)
        }
    }

    /// Every copy of every version of `key` held anywhere (own data and hints).
    func held(_ key: [UInt8]) -> [Version] {
        names.flatMap { name -> [Version] in
            let store = nodes[name]!.store
            var held = ((try? store.object(for: key)) ?? nil)?.versions ?? []
            if case .hints(let hints, _) = store.execute(.loadHints(limit: 1000, targets: Set(names)), policy: policy) {
                for hint in hints where hint.key == key { held += hint.object.versions }
            }
            return held
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

    /// Stores `objects` in the own data of `nodes` before the run, as if written long ago
    /// (keys outside `keys`, which the client model does not check).
    public func preload(_ objects: [KeyedObject], on targets: [NodeName]) throws {
        for name in targets {
            for entry in objects { try nodes[name]!.store.merge(entry.key, entry.object, policy: policy, sync: false) }
            _ = nodes[name]!.store.takeTreeUpdates()
        }
    }

    /// `key`'s own data on `node` (nil: none).
    public func stored(_ key: [UInt8], on node: NodeName) -> VersionedObject? {
        (try? nodes[node]!.store.object(for: key)) ?? nil
    }

    private lazy var checkedKeys = Set(keys)

    private func checkKey(of op: StorageOp) throws {
        switch op {
        case .merge(let key, _, _, _), .coordinateWrite(let key, _, _, _, _, _, _, _, _), .forget(let key, _):
            if checkedKeys.contains(key) { try checkDurability(of: key) }
        case .removeHint(let hint):
            if checkedKeys.contains(hint.key) { try checkDurability(of: hint.key) }
        default: break
        }
    }

    /// Deletes of `key` whose tombstones were reaped (a tombstone has no value to find it by
    /// once it is gone).
    private func reapedDeletes(of key: [UInt8]) -> Set<Dot> {
        Set((reaped[key] ?? []).flatMap { $0.versions.map(\.dot) })
    }

    /// Checked against the client model by value: no acknowledged write is gone from the
    /// whole cluster unless a later acknowledged write replaced it, and nothing a client's
    /// write replaced is back. A dot names one version only.
    func checkDurability(of key: [UInt8]) throws {
        let held = held(key)
        // A dot names one version: two different versions with one dot mean a coordinator
        // reused it (it lost the history that held it), and one of them can silently win.
        var byDot: [Dot: Version] = [:]
        for version in held {
            if let other = byDot.updateValue(version, forKey: version.dot), other != version {
                throw violation(
                    "dot \(version.dot) of \(String(decoding: key, as: UTF8.self)) names two versions, on \(holders(of: version, key: key)) and \(holders(of: other, key: key))"
                )
            }
        }
        let problems = model.problems(
            key: key, present: held, visible: everything(for: key).versions, reapedDeletes: reapedDeletes(of: key),
            checkResurrection: checksResurrection)
        if let problem = problems.first {
            throw violation("\(String(decoding: key, as: UTF8.self)): \(problem)")
        }
    }

    /// Nodes that are part of the cluster at the end.
    var active: [NodeName] { names.filter { nodes[$0]!.started && !nodes[$0]!.left } }

    /// After the faults stop: membership converged, every hint delivered and deleted,
    /// nothing left where it does not belong, old tombstones reaped, and a read with R=N
    /// through any node shows every acknowledged write that no later write replaced.
    /// A node's process went away: its clients' connections broke, so their requests are
    /// not waiting for an answer any more.
    private func dropClientRequests(at name: NodeName) {
        clientOps = clientOps.filter { $0.value.node != name }
    }

    /// Every client request is answered (or its node went away): a coordinator that drops a
    /// request without a word leaves an HTTP client waiting for ever.
    func checkEveryRequestAnswered() throws {
        guard clientOps.isEmpty else {
            let waiting = clientOps.sorted { $0.key < $1.key }.prefix(5).map { "\($0.key) at \($0.value.node): \($0.value.op)" }
            throw violation("\(clientOps.count) client requests were never answered: \(waiting.joined(separator: "; "))")
        }
    }

    func checkFinal() throws {
        try checkEveryRequestAnswered()
        if antiEntropyOnly { return try checkConverged() }
        if let leaver = names.first(where: { nodes[$0]!.leaveRequested != nil }), !nodes[leaver]!.left {
            throw violation("\(leaver) never finished leaving")
        }
        for key in keys {
            try checkDurability(of: key)
            // Tombstones do not pile up: well past the grace period, every all-tombstone key is gone.
            let all = everything(for: key)
            if all.isDeleted, all.versions.allSatisfy({ $0.timestamp + 4_000 + faults.maxClockSkewMs < wallMs }) {
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
            // A node that left is known as such, and in no ring.
            for gone in names where nodes[gone]!.left {
                if let status = machine.status(of: gone, at: now), status != .left {
                    throw violation("\(name) sees \(gone), which left, as \(status.rawValue)")
                }
                if machine.membership.ring.tokens.contains(where: { $0.owner == gone }) {
                    throw violation("\(name) still has \(gone)'s tokens on its ring after it left")
                }
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
            try feed(node, .clientGet(id: ClientRequestID(id), key: key, r: 3))
            try runUntil(now + 1_000)
            readProbe = nil
            guard let outcome = answer, outcome.succeeded else {
                throw violation("final read of \(String(decoding: key, as: UTF8.self)) with R=3 via \(node) failed")
            }
            let problems = model.problems(
                key: key, present: outcome.object.versions, visible: outcome.object.versions,
                reapedDeletes: reapedDeletes(of: key), checkResurrection: checksResurrection)
            if let problem = problems.first {
                throw violation("final read of \(String(decoding: key, as: UTF8.self)) via \(node): \(problem)")
            }
        }
    }

    private var readProbe: ((GetCoordinator.Outcome) -> Void)?

    /// Anti-entropy alone: every home replica of every key holds the same versions, which
    /// show every acknowledged write that no later write replaced.
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
            let merged = (copies.compactMap { $0 }.first ?? VersionedObject()).versions
            let problems = model.problems(
                key: key, present: merged, visible: merged, reapedDeletes: reapedDeletes(of: key),
                checkResurrection: checksResurrection)
            if let problem = problems.first {
                throw violation("converged replicas of \(String(decoding: key, as: UTF8.self)): \(problem)")
            }
        }
    }

    /// How many keys anti-entropy repaired across the cluster.
    public var keysRepairedByExchange: Int {
        names.compactMap { nodes[$0]!.machine?.keysRepairedByExchange }.reduce(0, +)
    }
}
