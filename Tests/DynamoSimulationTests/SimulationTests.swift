import DynamoCore
import DynamoSimulator
import Foundation
import Testing

/// Seeded fault schedules over the real node state machines. A failure prints its seed;
/// `DYNAMO_SIM_SEED=N swift test --filter Simulation` replays exactly that run, and
/// `DYNAMO_SIM_SEEDS=5000` explores more schedules than the default.
@Suite struct SimulationTests {
    static let seedCount = ProcessInfo.processInfo.environment["DYNAMO_SIM_SEEDS"].flatMap(Int.init) ?? 200
    static let seeds: [UInt64] = {
        if let one = ProcessInfo.processInfo.environment["DYNAMO_SIM_SEED"].flatMap(UInt64.init) { return [one] }
        return (1...UInt64(seedCount)).map { $0 }
    }()

    @Test func aFaultFreeClusterKeepsEveryAcknowledgedWrite() throws {
        let simulation = try Simulation(seed: 42, faults: .none)
        try simulation.run()
        #expect(simulation.acked.count > 50)
        #expect(simulation.acked.count == simulation.writesAttempted, "without faults every write is acknowledged")
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
                simulation.acked.count == simulation.writesAttempted,
                "seed \(seed): \(simulation.writesAttempted - simulation.acked.count) writes failed")
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
    static func failures(of seeds: [UInt64], membershipChanges: Bool = false, antiEntropyOnly: Bool = false) async
        -> [String]
    {
        await withTaskGroup(of: [String].self) { group in
            for chunk in stride(from: 0, to: seeds.count, by: 25) {
                let batch = Array(seeds[chunk..<min(chunk + 25, seeds.count)])
                group.addTask {
                    var failures: [String] = []
                    for seed in batch {
                        let simulation = try! Simulation(
                            seed: seed, membershipChanges: membershipChanges, antiEntropyOnly: antiEntropyOnly)
                        simulation.tracing = ProcessInfo.processInfo.environment["DYNAMO_SIM_TRACE"] != nil
                        do {
                            try simulation.run()
                            if simulation.acked.isEmpty { failures.append("seed \(seed): no write was acknowledged") }
                        } catch {
                            if simulation.tracing { print(simulation.log.suffix(150).joined(separator: "\n")) }
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

    @Test func underFaultsNoAcknowledgedWriteIsLostAndEveryHintIsDelivered() async throws {
        let failures = await Self.failures(of: Self.seeds)
        #expect(
            failures.isEmpty,
            "\(failures.count) of \(Self.seeds.count) seeds failed:\n\(failures.joined(separator: "\n"))")
    }

    @Test func aNodeJoinsAndAnotherLeavesUnderFaultsWithoutLosingAWrite() async throws {
        let seeds = Array(Self.seeds.prefix(max(1, Self.seeds.count / 2)))
        let failures = await Self.failures(of: seeds, membershipChanges: true)
        #expect(
            failures.isEmpty,
            "\(failures.count) of \(seeds.count) seeds failed:\n\(failures.joined(separator: "\n"))")
    }

    @Test func replicasThatDivergedConvergeByAntiEntropyAlone() async throws {
        let seeds = Array(Self.seeds.prefix(max(1, Self.seeds.count / 2)))
        let failures = await Self.failures(
            of: ProcessInfo.processInfo.environment["DYNAMO_SIM_SEED"] != nil ? Self.seeds : seeds,
            antiEntropyOnly: true)
        #expect(
            failures.isEmpty,
            "\(failures.count) of \(seeds.count) seeds failed:\n\(failures.joined(separator: "\n"))")
        let sample = try Simulation(seed: 1, antiEntropyOnly: true)
        try sample.run()
        #expect(sample.keysRepairedByExchange > 0, "the replicas really diverged and were repaired by exchanges")
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

    @Test func aSeedReplaysExactly() throws {
        func run() throws -> (Int, [Simulation.AckedWrite], [String]) {
            let simulation = try Simulation(seed: 7)
            simulation.tracing = true
            try simulation.run()
            return (simulation.steps, simulation.acked, simulation.log)
        }
        let first = try run()
        let second = try run()
        #expect(first.0 == second.0)
        #expect(first.1 == second.1)
        #expect(first.2 == second.2)
        #expect(first.2.contains { $0.contains("CRASH") || $0.contains("PARTITION") }, "the replayed run had faults")
    }
}
