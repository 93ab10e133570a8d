import DynamoCore
import DynamoSimulator
import Foundation
import Testing

/// Seeded fault schedules over the real node state machines. A failure prints its seed;
/// `DYNAMO_SIM_SEED=N swift test --filter Simulation` replays exactly that run, and
/// `DYNAMO_SIM_SEEDS=5000` explores more schedules than the default.
@Suite struct SimulationTests {
    static let seedCount = ProcessInfo.processInfo.environment["DYNAMO_SIM_SEEDS"].flatMap(Int.init) ?? 200
    /// How much of a failing run's trace to print: `DYNAMO_SIM_TRACE=1` the last 150 lines,
    /// a larger number that many.
    static let traceLines = ProcessInfo.processInfo.environment["DYNAMO_SIM_TRACE"].flatMap(Int.init).map {
        $0 > 1 ? $0 : 150
    } ?? 150
    static let seeds: [UInt64] = {
        if let one = ProcessInfo.processInfo.environment["DYNAMO_SIM_SEED"].flatMap(UInt64.init) { return [one] }
        return (1...UInt64(seedCount)).map { $0 }
    }()

    @Test func aFaultFreeClusterKeepsEveryAcknowledgedWrite() throws {
        let simulation = try Simulation(seed: 42, faults: .none)
        try simulation.run()
        #expect(simulation.acknowledged > 50)
        #expect(simulation.acknowledged == simulation.writesAttempted, "without faults every write is acknowledged")
    }

    /// Full disks alone (no crashes, partitions or loss): a node that cannot store a write
    /// hands it to another replica, so every write is still acknowledged.
    @Test func fullDisksAloneNeverCostAWrite() throws {
        var refused = 0
        for seed: UInt64 in 1...10 {
            var faults = Simulation.Faults.none
            faults.diskFullsPerSecond = 1
            let simulation = try Simulation(seed: seed, faults: faults)
            try simulation.run()
            refused += simulation.coordinationsRefusedByFullDisks
            #expect(
                simulation.acknowledged == simulation.writesAttempted,
                "seed \(seed): \(simulation.writesAttempted - simulation.acknowledged) writes failed")
        }
        #expect(refused > 0, "some coordinators really found their disk full")
    }

    /// The disk faults of the default schedule really happen: log tails lost in crashes
    /// (then refilled), and writes refused by full disks.
    @Test func diskFaultsReallyHappenInTheSimulation() throws {
        var (lost, refills, refused) = (0, 0, 0)
        for seed: UInt64 in 1...20 {
            let simulation = try Simulation(seed: seed)
            try simulation.run()
            lost += simulation.writesLostFromTails
            refills += simulation.refills
            refused += simulation.writesRefusedByFullDisks
        }
        #expect(lost > 0)
        #expect(refills > 0)
        #expect(refused > 0)
    }

    /// Runs `seeds` across the cores (each run is independent and deterministic); returns
    /// every failure, each naming its seed (a batch goes on past a failing seed, so none is
    /// skipped or left uncounted).
    static func failures(
        of seeds: [UInt64], membershipChanges: Bool = false, antiEntropyOnly: Bool = false, clockMaxEntries: Int = 10,
        wireCodec: Bool = false
    ) async -> [String] {
        await withTaskGroup(of: [String].self) { group in
            for chunk in stride(from: 0, to: seeds.count, by: 25) {
                let batch = Array(seeds[chunk..<min(chunk + 25, seeds.count)])
                group.addTask {
                    var failures: [String] = []
                    for seed in batch {
                        let simulation = try! Simulation(
                            seed: seed, membershipChanges: membershipChanges, antiEntropyOnly: antiEntropyOnly,
                            clockMaxEntries: clockMaxEntries, wireCodec: wireCodec)
                        simulation.tracing = ProcessInfo.processInfo.environment["DYNAMO_SIM_TRACE"] != nil
                        do {
                            try simulation.run()
                            if simulation.acknowledged == 0 { failures.append("seed \(seed): no write was acknowledged") }
                        } catch {
                            if simulation.tracing { print(simulation.log.suffix(Self.traceLines).joined(separator: "\n")) }
                            failures.append("\(error)")
                        }
                    }
                    return failures
                }
            }
            var failures: [String] = []
            for await batch in group { failures += batch }
            return failures.sorted()
        }
    }

    /// Runs one seed in `divisor` (every seed replayed with `DYNAMO_SIM_SEED`) and expects
    /// none to fail, listing every failure with its seed.
    static func expectNoFailures(
        oneIn divisor: Int = 1, membershipChanges: Bool = false, antiEntropyOnly: Bool = false,
        clockMaxEntries: Int = 10, wireCodec: Bool = false
    ) async {
        let seeds = Array(Self.seeds.prefix(max(1, Self.seeds.count / divisor)))
        let failures = await Self.failures(
            of: seeds, membershipChanges: membershipChanges, antiEntropyOnly: antiEntropyOnly,
            clockMaxEntries: clockMaxEntries, wireCodec: wireCodec)
        #expect(
            failures.isEmpty,
            "\(failures.count) of \(seeds.count) seeds failed:\n\(failures.joined(separator: "\n"))")
    }

    @Test func underFaultsNoAcknowledgedWriteIsLostAndEveryHintIsDelivered() async throws {
        await Self.expectNoFailures()
    }

    @Test func aNodeJoinsAndAnotherLeavesUnderFaultsWithoutLosingAWrite() async throws {
        await Self.expectNoFailures(oneIn: 2, membershipChanges: true)
    }

    @Test func replicasThatDivergedConvergeByAntiEntropyAlone() async throws {
        await Self.expectNoFailures(oneIn: 2, antiEntropyOnly: true)
        let sample = try Simulation(seed: 1, antiEntropyOnly: true)
        try sample.run()
        #expect(sample.keysRepairedByExchange > 0, "the replicas really diverged and were repaired by exchanges")
    }

    /// Clocks pruned to 2 entries in a cluster of 5 coordinators: pruning runs on almost
    /// every write, and must never lose one (false siblings are allowed, as in the paper).
    @Test func clockPruningNeverLosesAnAcknowledgedWrite() async throws {
        await Self.expectNoFailures(oneIn: 4, clockMaxEntries: 2)
    }

    /// Every peer message encoded and decoded by the real wire codec on its way.
    @Test func messagesThroughTheRealWireCodecLoseNothing() async throws {
        await Self.expectNoFailures(oneIn: 4, wireCodec: true)
    }

    /// The timing and durability faults of the default schedule really happen: two nodes
    /// down at once, outages past the tombstone grace, power losses that undo unsynced
    /// writes (some noticed by the seal), one-way partitions, slow nodes, late messages.
    @Test func timingAndDurabilityFaultsReallyHappenInTheSimulation() throws {
        var (twoDown, powerLost, late, oneWay, slow, longOutage) = (0, 0, 0, 0, 0, 0)
        for seed: UInt64 in 1...20 {
            let simulation = try Simulation(seed: seed)
            simulation.tracing = true
            try simulation.run()
            if simulation.maxDownAtOnce >= 2 { twoDown += 1 }
            powerLost += simulation.writesLostToPowerLoss
            late += simulation.messagesPastDeadline
            if simulation.log.contains(where: { $0.contains("PARTITION") && Self.isOneWay($0) }) { oneWay += 1 }
            if simulation.log.contains(where: { $0.contains("SLOW") }) { slow += 1 }
            longOutage += simulation.longestOutage > 2_000 ? 1 : 0
        }
        #expect(twoDown > 0)
        #expect(powerLost > 0)
        #expect(late > 0)
        #expect(oneWay > 0)
        #expect(slow > 0)
        #expect(longOutage > 0, "some outage outlasted the 2 s tombstone grace")
    }

    /// The simulated disk keeps what the product's RocksDB keeps: a kill loses nothing the
    /// engine took, a power loss undoes the writes after the last synced one (a sync makes
    /// every earlier write durable too), and the seal notices a loss only of writes it had
    /// recorded.
    @Test func theSimulatedDiskLosesWhatAPowerLossLoses() throws {
        let disk = SimulatedDisk()
        try disk.put([1], [1], sync: false)
        try disk.put([2], [2], sync: true)
        try disk.put([3], [3], sync: false)
        try disk.put([1], [9], sync: false)
        disk.seal()
        try disk.put([4], [4], sync: false)
        #expect(disk.losePower() == 3)
        #expect(try disk.get([1]) == [1], "the synced write made the earlier one durable")
        #expect(try disk.get([2]) == [2])
        #expect(try disk.get([3]) == nil)
        #expect(try disk.get([4]) == nil)
        #expect(disk.wentBehindSeal, "the seal had recorded two of the lost writes")
        #expect(disk.losePower() == 0, "nothing unsynced is left")

        let quiet = SimulatedDisk()
        try quiet.put([1], [1], sync: true)
        quiet.seal()
        try quiet.put([2], [2], sync: false)
        #expect(quiet.losePower() == 1)
        #expect(!quiet.wentBehindSeal, "writes after the last seal are lost unnoticed, as in the product")
    }

    /// A traced partition line cuts some link in one direction only.
    static func isOneWay(_ line: String) -> Bool {
        let links = Set(line.split(separator: " ").dropFirst(2).map(String.init))
        return links.contains { link in
            let ends = link.split(separator: ">").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "-")) }
            return ends.count == 2 && !links.contains("\(ends[1])->\(ends[0])")
        }
    }

    @Test func membershipChangesReallyHappenInTheSimulation() throws {
        let simulation = try Simulation(seed: 3, membershipChanges: true)
        simulation.tracing = true
        try simulation.run()
        #expect(simulation.log.contains { $0.hasSuffix("JOINED n6") }, "n6 pulled its ranges and went up")
        #expect(simulation.log.contains { $0.contains("LEFT ") }, "the leaving node handed everything off and exited")
        #expect(simulation.log.contains { $0.contains("hands") }, "ownership moved")
    }

    @Test func deletedKeysAreReapedOnceEveryReplicaHasTheTombstone() throws {
        var reaped = 0
        for seed in UInt64(1)...20 {
            let simulation = try Simulation(seed: seed, faults: .none)
            try simulation.run()
            reaped += simulation.reaped.count
        }
        #expect(reaped > 0, "the sweep reaps old tombstones")
    }

    /// A refactoring aid, not a check: `DYNAMO_SIM_FINGERPRINTS=FILE` writes one line per
    /// seed (steps, acknowledged writes, and an FNV-1a hash of the whole trace: every message,
    /// storage step, fault and event) for 100 seeds (`DYNAMO_SIM_SEEDS`) of the default and
    /// the join/leave schedules. Two builds that write the same file behaved identically.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["DYNAMO_SIM_FINGERPRINTS"] != nil))
    func fingerprints() throws {
        let environment = ProcessInfo.processInfo.environment
        let count = environment["DYNAMO_SIM_SEEDS"].flatMap(UInt64.init) ?? 100
        var lines: [String] = []
        for membershipChanges in [false, true] {
            for seed in UInt64(1)...count {
                let simulation = try Simulation(seed: seed, membershipChanges: membershipChanges)
                simulation.tracing = true
                try simulation.run()
                var hash: UInt64 = 0xcbf2_9ce4_8422_2325
                for byte in simulation.log.joined(separator: "\n").utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
                // `DYNAMO_SIM_TRACES=DIR` keeps each trace, to diff two builds' first difference.
                if let directory = environment["DYNAMO_SIM_TRACES"] {
                    let file = "\(directory)/\(membershipChanges ? "join" : "default")-\(seed).txt"
                    try simulation.log.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
                }
                lines.append(
                    "\(membershipChanges ? "join/leave" : "default") \(seed) \(simulation.steps) \(simulation.acknowledged) \(String(hash, radix: 16))")
            }
        }
        let path = environment["DYNAMO_SIM_FINGERPRINTS"]!
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test func aSeedReplaysExactly() throws {
        func run() throws -> (Int, Int, [String]) {
            let simulation = try Simulation(seed: 7)
            simulation.tracing = true
            try simulation.run()
            return (simulation.steps, simulation.acknowledged, simulation.log)
        }
        let first = try run()
        let second = try run()
        #expect(first.0 == second.0)
        #expect(first.1 == second.1)
        #expect(first.2 == second.2)
        #expect(first.2.contains { $0.contains("CRASH") || $0.contains("PARTITION") }, "the replayed run had faults")
    }
}

/// What anti-entropy costs on the wire, measured on the real messages of real node machines
/// (encoded by the peer codec), not on a model of the exchange.
@Suite struct AntiEntropyCostTests {
    /// Three nodes hold `count` identical keys and one key only n1 has; anti-entropy alone
    /// (no hints, no read repair) copies it to the other two. Returns the bytes of tree
    /// messages sent in the 4 s it is given.
    static func bytesToRepairOneKey(among count: Int) throws -> Int {
        try bytesToRepair(differing: 1, among: count)
    }

    /// Three nodes hold `count` identical keys and `differing` keys only n1 has; the bytes
    /// of tree messages anti-entropy alone sends to copy them to the other two (in 4 s,
    /// plus 20 ms a differing key).
    static func bytesToRepair(differing: Int, among count: Int) throws -> Int {
        var faults = Simulation.Faults.none
        faults.duplicateRate = 0
        let simulation = try Simulation(seed: 5, nodes: 3, keys: 0, faults: faults, antiEntropyOnly: true)
        let common = (0..<count).map { i in
            KeyedObject(
                key: Array("key-\(i)".utf8),
                object: VersionedObject(versions: [
                    Version(dot: Dot(actor: "n1", counter: 1), past: .empty, value: Array("v\(i)".utf8), timestamp: 1)
                ]))
        }
        try simulation.preload(common, on: ["n1", "n2", "n3"])
        let odd = (0..<differing).map { i in
            KeyedObject(
                key: Array("odd-\(i)".utf8),
                object: VersionedObject(versions: [
                    Version(dot: Dot(actor: "n1", counter: 1), past: .empty, value: Array("only on n1".utf8), timestamp: 1)
                ]))
        }
        try simulation.preload(odd, on: ["n1"])
        // Each exchange copies a bounded batch of keys: more differing keys take longer.
        try simulation.run(duration: 0, settle: 4_000 + UInt64(differing) * 20, clientOpsPerSecond: 0)
        for node in ["n2", "n3"] {
            for key in odd {
                #expect(simulation.stored(key.key, on: node) == key.object, "\(count) keys: \(node) got the key it missed")
            }
        }
        return simulation.antiEntropyBytes
    }

    @Test func oneDifferingKeyCostsAboutTheSameAmong1000Or20000Keys() throws {
        let small = try Self.bytesToRepairOneKey(among: 1_000)
        let large = try Self.bytesToRepairOneKey(among: 20_000)
        // 20x the keys: the trees grow a level or two, the messages barely.
        #expect(large < small * 2, "\(small) bytes among 1,000 keys, \(large) among 20,000")
        // Shipping every key's hash instead would cost about 20,000 x 16 bytes a pass, and
        // anti-entropy makes a pass every 500 ms here (8 in the 4 s): the trees cost less
        // than a tenth of that.
        #expect(large * 10 < 8 * 20_000 * 16, "\(small) bytes among 1,000 keys, \(large) among 20,000")
    }
}

/// Request traces under the simulator's faults (drops, duplicates, crashes, partitions,
/// full disks): tracing every request changes no outcome the checks look at, every
/// traced request in flight is forgotten once it is done, and each node keeps a bounded
/// trace of what it did.
@Suite struct TracedSimulationTests {
    @Test func tracingEveryRequestUnderFaultsLeavesNothingInFlight() throws {
        var answered = 0
        var forwardsSeenByReplicas = 0
        for seed: UInt64 in 1...6 {
            let simulation = try Simulation(seed: seed)
            simulation.traceRequests = true
            try simulation.run()
            for machine in simulation.machines {
                #expect(machine.tracedInFlight == 0, "seed \(seed): \(machine.name) holds traced work after settling")
                #expect(machine.traceIds.count <= RequestTraces.maxTraces)
                for id in machine.traceIds {
                    let steps = try #require(machine.traceSteps(id))
                    #expect(steps.count <= RequestTraces.maxSteps)
                    #expect(id.hasPrefix("sim-"), "only client requests are traced")
                    if steps.contains(where: { $0.kind == .answered }) { answered += 1 }
                    // A node's own part is in its clock's order.
                    #expect(zip(steps, steps.dropFirst()).allSatisfy { $0.monotonicUs <= $1.monotonicUs })
                    forwardsSeenByReplicas += steps.filter { $0.kind == .receive }.count
                }
            }
        }
        #expect(answered > 100, "traced requests were answered and recorded (\(answered))")
        #expect(forwardsSeenByReplicas > 100, "replicas recorded their side of traced requests")
    }
}
