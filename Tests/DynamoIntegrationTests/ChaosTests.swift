import DynamoClient
import DynamoCore
import DynamoLauncher
import Foundation
import Testing

/// Always writeable, never losing an acknowledged write: concurrent writers against real
/// processes while nodes are killed and restarted and partitions come and go.
@Suite(.serialized) struct ChaosTests {
    /// What the writers saw acknowledged.
    actor Ledger {
        var unique: [[UInt8]: [UInt8]] = [:]
        var shared: [[UInt8]: Set<[UInt8]>] = [:]
        var attempts = 0
        var failures = 0

        func acked(_ key: [UInt8], _ value: [UInt8], shared isShared: Bool) {
            if isShared { shared[key, default: []].insert(value) } else { unique[key] = value }
        }

        func attempted(succeeded: Bool) {
            attempts += 1
            if !succeeded { failures += 1 }
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func fourWritersLoseNoAcknowledgedWriteWhileNodesCrashAndPartitionsComeAndGo() async throws {
        try await withCluster(configure: { $0.extraArguments = ["--hint-interval-ms", "200"] }) { cluster in
            let ledger = Ledger()
            let deadline = ContinuousClock.now + .seconds(30)
            let names = cluster.names
            var rng = SeededRandom(seed: UInt64(Date().timeIntervalSince1970))
            let seed = rng.next()
            print("chaos seed \(seed)")

            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        var rng = SeededRandom(seed: seed &+ UInt64(writer))
                        var i = 0
                        while ContinuousClock.now < deadline {
                            i += 1
                            let isShared = i % 4 == 0
                            let key = isShared ? "shared-\(i % 3)".bytes : "w\(writer)-\(i)".bytes
                            let value = "w\(writer)-\(i)".bytes
                            let node = names.randomElement(using: &rng)!
                            let result = try? await cluster.client(node).put(key, value: value)
                            await ledger.attempted(succeeded: result?.succeeded ?? false)
                            if result?.succeeded == true { await ledger.acked(key, value, shared: isShared) }
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
                            try? await cluster.partition([Array(shuffled[..<cut]), Array(shuffled[cut...])])
                            try await Task.sleep(for: .milliseconds(Int.random(in: 1000...3000, using: &rng)))
                            try? await cluster.heal()
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

            let unique = await ledger.unique
            let shared = await ledger.shared
            let attempts = await ledger.attempts
            let refused = await ledger.failures
            print(
                "chaos: \(attempts) writes attempted, \(refused) refused or unanswered, \(unique.count + shared.values.map(\.count).reduce(0, +)) acknowledged"
            )
            #expect(unique.count > 100, "writers made progress through the chaos")
            for (key, value) in unique {
                let read = try await cluster.client(names.randomElement()!).get(key)
                // A forward whose answer was lost is retried elsewhere, so a write can land
                // twice (at least once): an identical sibling, never a missing or foreign value.
                #expect(
                    !read.values.isEmpty && Set(read.values) == [value],
                    "acknowledged \(String(decoding: key, as: UTF8.self)) (seed \(seed))")
            }
            for (key, values) in shared {
                let read = try await cluster.client(names.randomElement()!).get(key)
                let missing = values.subtracting(read.values)
                #expect(
                    missing.isEmpty,
                    "\(missing.count) acknowledged siblings of \(String(decoding: key, as: UTF8.self)) lost (seed \(seed))"
                )
            }
        }
    }
}
