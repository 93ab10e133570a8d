import DynamoClient
import DynamoCore
import DynamoLauncher
import Foundation
import Testing

/// Always writeable, never losing an acknowledged write: concurrent writers against real
/// processes while nodes are killed and restarted and partitions come and go.
@Suite(.serialized) struct ChaosTests {
    /// What the writers did and were told, checked against the cluster by value.
    ///
    /// Every put writes a value no other write uses. A write made after a read (a
    /// read-modify-write, or a delete) sends the read's context, and the ledger keeps the
    /// values that read showed: those, and only those, the write may replace. At the end an
    /// acknowledged put must still be there unless a write that saw it was acknowledged or
    /// is itself there; a value an acknowledged write replaced must never be shown again;
    /// and nothing is shown that no writer wrote.
    actor Ledger {
        struct Write {
            var key: [UInt8]
            var value: [UInt8]?
            var saw: Set<[UInt8]>
            /// The dots of the versions that read showed (what the write's context covers).
            var sawDots: Set<String>
            var acked: Bool
        }
        var writes: [Write] = []
        var failures = 0

        func record(_ key: [UInt8], _ value: [UInt8]?, after read: ReadResult?, acked: Bool) {
            let siblings = read?.document?.siblings ?? []
            writes.append(
                Write(
                    key: key, value: value, saw: Set(siblings.compactMap(\.bytes)),
                    sawDots: Set(siblings.compactMap(\.dot)), acked: acked))
            if !acked { failures += 1 }
        }

        /// What is wrong with `key` given what a full read shows: its live values and their
        /// dots, and whether it shows a tombstone (a 404 with a context: a delete was applied,
        /// acknowledged or not). A value comes back only if a version an acknowledged write's
        /// context covered (by its dot) is shown again: a write that landed twice (a forward
        /// retried after its answer was lost) has a second version its delete never saw.
        func problems(of key: [UInt8], shown: Set<[UInt8]>, shownDots: Set<String>, tombstone: Bool) -> [String] {
            let mine = writes.filter { $0.key == key }
            let written = Set(mine.compactMap(\.value))
            var problems = shown.subtracting(written).map { "shows \(String(decoding: $0, as: UTF8.self)), which no writer wrote" }
            // Replaced: what a justified write's client saw, and what the writes it saw had
            // seen (their context carried that history on, acknowledged or not).
            let byValue = Dictionary(mine.compactMap { w in w.value.map { ($0, w) } }, uniquingKeysWith: { a, _ in a })
            /// Values and dots the clients of `writes` had seen, directly or through the writes
            /// they saw (a context carries that history on).
            func seen(from writes: [Write]) -> (values: Set<[UInt8]>, dots: Set<String>) {
                var reached: Set<[UInt8]> = []
                var dots: Set<String> = []
                var frontier = writes
                while let write = frontier.popLast() {
                    dots.formUnion(write.sawDots)
                    for value in write.saw where reached.insert(value).inserted {
                        if let source = byValue[value] { frontier.append(source) }
                    }
                }
                return (reached, dots)
            }
            let replaced = seen(from: mine.filter { $0.acked || ($0.value.map(shown.contains) ?? tombstone) }).values
            for write in mine where write.acked {
                if let value = write.value, !shown.contains(value), !replaced.contains(value) {
                    problems.append("acknowledged put of \(String(decoding: value, as: UTF8.self)) is lost")
                }
                for back in seen(from: [write]).dots.intersection(shownDots) {
                    problems.append(
                        "shows version \(back) again, which an acknowledged \(write.value == nil ? "delete" : "write") replaced")
                }
            }
            return problems
        }

        var keys: [[UInt8]] { Array(Set(writes.map(\.key))).sorted { $0.lexicographicallyPrecedes($1) } }
        func hasAcknowledgedDelete(of key: [UInt8]) -> Bool { writes.contains { $0.key == key && $0.value == nil && $0.acked } }
        var acknowledged: Int { writes.count { $0.acked } }
    }

    /// The seed of the fault schedule and the workload: `DYNAMO_CHAOS_SEED=N` replays a
    /// schedule (the timing of real processes still varies from run to run).
    static let seed = ProcessInfo.processInfo.environment["DYNAMO_CHAOS_SEED"].flatMap(UInt64.init) ?? 1

    @Test(.timeLimit(.minutes(3)))
    func fourWritersLoseNoAcknowledgedWriteWhileNodesCrashAndPartitionsComeAndGo() async throws {
        try await withCluster(configure: { $0.extraArguments = ["--hint-interval-ms", "200"] }) { cluster in
            let ledger = Ledger()
            let deadline = ContinuousClock.now + .seconds(30)
            let names = cluster.names
            let seed = Self.seed
            print("chaos seed \(seed) (replay the schedule with DYNAMO_CHAOS_SEED=\(seed))")

            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        var rng = SeededRandom(seed: seed &+ UInt64(writer))
                        var own: [[UInt8]] = []
                        var i = 0
                        while ContinuousClock.now < deadline {
                            i += 1
                            let client = cluster.client(names.randomElement(using: &rng)!)
                            let value = "w\(writer)-\(i)".bytes
                            switch Int.random(in: 0..<10, using: &rng) {
                            case 0...2:
                                // Read-modify-write of a key every writer shares.
                                let key = "shared-\(Int.random(in: 0..<3, using: &rng))".bytes
                                let read = try? await client.get(key)
                                let result = try? await client.put(key, value: value, context: read?.context)
                                await ledger.record(key, value, after: read, acked: result?.succeeded == true)
                            case 3 where !own.isEmpty:
                                // Delete one of this writer's keys, with the context of a read.
                                let key = own.remove(at: Int.random(in: 0..<own.count, using: &rng))
                                guard let read = try? await client.get(key), read.status == 200 else { continue }
                                let result = try? await client.delete(key, context: read.context)
                                await ledger.record(key, nil, after: read, acked: result?.succeeded == true)
                            default:
                                let key = "w\(writer)-\(i)".bytes
                                let result = try? await client.put(key, value: value)
                                await ledger.record(key, value, after: nil, acked: result?.succeeded == true)
                                own.append(key)
                            }
                        }
                    }
                }
                group.addTask {
                    var rng = SeededRandom(seed: seed &+ 99)
                    while ContinuousClock.now < deadline - .seconds(3) {
                        let victim = names.randomElement(using: &rng)!
                        if Bool.random(using: &rng) {
                            cluster.stop(victim, .kill)
                            try await Task.sleep(for: .milliseconds(Int.random(in: 500...2500, using: &rng)))
                            try cluster.launch(victim)
                        } else {
                            let shuffled = names.shuffled(using: &rng)
                            let cut = Int.random(in: 1...2, using: &rng)
                            // A partition or heal that fails fails the test (a node that was
                            // just killed and restarted is waited for first).
                            for name in shuffled { try await cluster.waitUntilReady(name) }
                            try await cluster.partition([Array(shuffled[..<cut]), Array(shuffled[cut...])])
                            try await Task.sleep(for: .milliseconds(Int.random(in: 1000...3000, using: &rng)))
                            try await cluster.heal()
                        }
                        try await Task.sleep(for: .milliseconds(Int.random(in: 200...1000, using: &rng)))
                    }
                }
                try await group.waitForAll()
            }

            // The faults stop: everyone back, healed, hints delivered.
            for name in names where !cluster.isRunning(name) { try cluster.launch(name) }
            try await cluster.waitUntilConverged()
            try await cluster.heal()
            try await LocalCluster.waitFor("every hint to be delivered", timeout: .seconds(30)) {
                for name in names where try await cluster.client(name).status().hints.pending > 0 { return false }
                return true
            }

            let keys = await ledger.keys
            let acknowledged = await ledger.acknowledged
            print("chaos: \(await ledger.writes.count) writes attempted, \(await ledger.failures) refused or unanswered, \(acknowledged) acknowledged, \(keys.count) keys")
            #expect(acknowledged > 100, "writers made progress through the chaos")
            var deletes = 0
            for (i, key) in keys.enumerated() {
                // R=N: every home replica answers, so the answer is everything the cluster holds.
                let read = try await cluster.client(names[i % names.count]).get(key, r: 3)
                #expect(read.status == 200 || read.status == 404 || read.status == 300, "\(read.status) \(read.error ?? "")")
                if read.status == 404, await ledger.hasAcknowledgedDelete(of: key) { deletes += 1 }
                let tombstone = read.status == 404 && read.context != nil
                let dots = Set((read.document?.siblings ?? []).filter { !$0.deleted }.compactMap(\.dot))
                for problem in await ledger.problems(
                    of: key, shown: Set(read.values), shownDots: dots, tombstone: tombstone)
                {
                    Issue.record("\(String(decoding: key, as: UTF8.self)): \(problem) (seed \(seed))")
                }
            }
            #expect(deletes > 0, "some deletes were acknowledged and stayed deleted")
        }
    }
}
