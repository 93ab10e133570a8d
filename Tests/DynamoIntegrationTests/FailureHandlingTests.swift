import DynamoAPI
import DynamoClient
import DynamoCore
import DynamoLauncher
import Foundation
import Testing

/// Always writeable: failure detection, sloppy quorum, hinted handoff and partitions,
/// against real `dynamo-node` processes.
@Suite(.serialized) struct FailureHandlingTests {
    static func fastHints(_ options: inout LocalCluster.Options) {
        options.extraArguments = ["--hint-interval-ms", "200"]
    }

    /// A key whose home nodes include `node` and exclude `avoid`.
    static func key(homedOn node: String, avoiding avoid: [String] = [], in cluster: LocalCluster) async throws
        -> [UInt8]
    {
        for i in 0..<1000 {
            let key = "key-\(i)".bytes
            let home = try await cluster.client(node).preferenceList(key).preferenceList
            if home.contains(node), avoid.allSatisfy({ !home.contains($0) }) { return key }
        }
        throw LauncherError("no key homed on \(node)")
    }

    /// Issue 10, item 1: right after a home replica is killed, a W=3 write to the key
    /// succeeds at once: the refused replica's copy goes to a fallback, with a hint.
    @Test(.timeLimit(.minutes(3))) func aWriteRightAfterACrashIsTakenByAFallbackInTheSameRequest() async throws {
        try await withCluster { cluster in
            var key: [UInt8] = []
            var home: [String] = []
            for i in 0..<100 {
                key = "crash:\(i)".bytes
                home = try await cluster.client("n1").preferenceList(key).preferenceList
                if home.contains("n3"), home.first != "n3" { break }
            }
            let coordinator = cluster.client(home.first!)
            #expect(try await coordinator.put(key, value: "before".bytes, w: 3).succeeded)
            _ = cluster.stop("n3", .kill)
            let put = try await coordinator.put(key, value: "after".bytes, w: 3)
            #expect(put.status == 204, "\(put.error ?? "")")
            #expect(put.asked.contains { $0.hasSuffix(">n3") }, "\(put.asked)")
        }
    }

    @Test(.timeLimit(.minutes(3))) func aKilledNodeIsSeenDownByEveryNodeAndUpAgainAfterRestart() async throws {
        try await withCluster { cluster in
            cluster.stop("n3", .kill)
            try await cluster.waitUntilAllSee("n3", as: "down", timeout: .seconds(15))
            try cluster.launch("n3")
            try await cluster.waitUntilAllSee("n3", as: "up", timeout: .seconds(15))
            try await cluster.waitUntilConverged()
        }
    }

    @Test(.timeLimit(.minutes(3))) func aW3PutSucceedsWithAHomeNodeDownAndItsHintIsDeliveredThenDeleted() async throws {
        try await withCluster(configure: Self.fastHints) { cluster in
            let key = try await Self.key(homedOn: "n2", avoiding: ["n1"], in: cluster)
            let home = try await cluster.client("n1").preferenceList(key).preferenceList
            cluster.stop("n2", .kill)
            try await cluster.waitUntilAllSee("n2", as: "down")
            let put = try await cluster.client("n1").put(key, value: "while n2 was down".bytes, w: 3)
            #expect(put.status == 204, "\(put.error ?? "")")
            let fallback = try #require(
                put.replicas.first { !home.contains($0) }, "a fallback took n2's replica: \(put.replicas)")
            // X-Dynamo-Asked: who the coordinator asked, a fallback as `node>home`.
            #expect(put.asked.contains("\(fallback)>n2"), "\(put.asked)")
            #expect(!put.asked.contains("n2"), "n2 was not asked: \(put.asked)")
            #expect(put.asked.filter { !$0.contains(">") }.allSatisfy { home.prefix(3).contains($0) }, "\(put.asked)")
            let held = try await cluster.client(fallback).status().hints
            #expect(held.byTarget["n2"] == 1)
            #expect(held.pending >= 1)
            #expect(try await cluster.client(fallback).local(key) == nil, "a hint is not the fallback's own data")

            try cluster.launch("n2")
            try await LocalCluster.waitFor("the hint to reach n2", timeout: .seconds(20)) {
                try await cluster.client("n2").local(key)?.siblings.first?.bytes == "while n2 was down".bytes
            }
            try await LocalCluster.waitFor("the delivered hint to be deleted", timeout: .seconds(10)) {
                try await cluster.client(fallback).status().hints.byTarget["n2"] == nil
            }
            #expect(try await cluster.client(fallback).status().hints.delivered?["n2"] ?? 0 >= 1)
        }
    }

    @Test(.timeLimit(.minutes(3))) func hintsSurviveAKillNineOfTheNodeHoldingThem() async throws {
        try await withCluster(configure: Self.fastHints) { cluster in
            let key = try await Self.key(homedOn: "n4", avoiding: ["n1"], in: cluster)
            let home = try await cluster.client("n1").preferenceList(key).preferenceList
            cluster.stop("n4", .kill)
            try await cluster.waitUntilAllSee("n4", as: "down")
            let put = try await cluster.client("n1").put(key, value: "durable hint".bytes, w: 3)
            #expect(put.status == 204, "\(put.error ?? "")")
            let fallback = try #require(put.replicas.first { !home.contains($0) })

            cluster.stop(fallback, .kill)
            try cluster.launch(fallback)
            try await cluster.waitUntilReady(fallback)
            #expect(try await cluster.client(fallback).status().hints.byTarget["n4"] == 1, "the hint survived kill -9")

            try cluster.launch("n4")
            try await LocalCluster.waitFor("the hint to reach n4", timeout: .seconds(20)) {
                try await cluster.client("n4").local(key)?.siblings.first?.bytes == "durable hint".bytes
            }
        }
    }

    /// The paper's example: both sides of a partition update the same version; after the
    /// partition heals a read returns both as siblings, and a write with their merged
    /// context reconciles them.
    @Test(.timeLimit(.minutes(3))) func writesOnBothSidesOfAPartitionBecomeSiblingsAndAMergedContextResolvesThem() async throws {
        try await withCluster(configure: Self.fastHints) { cluster in
            let key = "cart:paper".bytes
            #expect(try await cluster.client("n1").put(key, value: "v0".bytes, w: 3).succeeded)
            let context = try await cluster.client("n1").get(key).context

            try await cluster.partition([["n1", "n2"], ["n3", "n4", "n5"]])
            let left = try await cluster.client("n1").put(key, value: "left".bytes, context: context)
            let right = try await cluster.client("n4").put(key, value: "right".bytes, context: context)
            #expect(left.status == 204, "left side: \(left.error ?? "")")
            #expect(right.status == 204, "right side: \(right.error ?? "")")
            #expect(Set(left.replicas).isSubset(of: ["n1", "n2"]))
            #expect(Set(right.replicas).isSubset(of: ["n3", "n4", "n5"]))
            try await cluster.heal()

            var siblings: ReadResult?
            try await LocalCluster.waitFor("both sides' versions to meet", timeout: .seconds(20)) {
                let read = try await cluster.client("n5").get(key)
                siblings = read
                return Set(read.values) == Set(["left".bytes, "right".bytes])
            }
            #expect(siblings?.status == 300)
            let merged = try #require(siblings?.context)
            #expect(try await cluster.client("n2").put(key, value: "left+right".bytes, context: merged).succeeded)
            try await LocalCluster.waitFor("one reconciled version everywhere", timeout: .seconds(10)) {
                for name in cluster.names where try await cluster.client(name).get(key).values != ["left+right".bytes] {
                    return false
                }
                return true
            }
        }
    }

    /// A home node misses a delete behind a partition; after healing the tombstone reaches
    /// it, every replica then reaps the tombstone, and the value never comes back. With
    /// `long`, the partition lasts ten times the tombstone grace: the replicas that took the
    /// delete keep the tombstone the whole time (reaping it while n3 still holds the value
    /// would bring the value back).
    @Test(.timeLimit(.minutes(2)), arguments: [false, true])
    func aDeletedKeyStaysDeletedAndItsTombstoneIsReaped(long: Bool) async throws {
        try await withCluster(configure: {
            $0.extraArguments = [
                "--hint-interval-ms", "200", "--tombstone-grace-ms", "300", "--anti-entropy-interval-ms", "300",
            ]
        }) { cluster in
            let key = try await Self.key(homedOn: "n3", avoiding: ["n1"], in: cluster)
            let home = try await cluster.client("n1").preferenceList(key).preferenceList.prefix(3)
            #expect(try await cluster.client("n1").put(key, value: "doomed".bytes, w: 3).succeeded)
            let context = try await cluster.client("n1").get(key).context
            try await cluster.partition([["n1", "n2", "n4", "n5"], ["n3"]])
            let deleted = try await cluster.client("n1").delete(key, context: context)
            #expect(deleted.status == 204, "\(deleted.error ?? "")")
            func tombstoneHeld(on name: String) async throws -> Bool {
                try await cluster.client(name).local(key)?.siblings.allSatisfy(\.deleted) == true
            }
            try await LocalCluster.waitFor("the tombstone on the home nodes n1 reaches", timeout: .seconds(10)) {
                for name in home where name != "n3" {
                    if !(try await tombstoneHeld(on: name)) { return false }
                }
                return true
            }
            let deadline = ContinuousClock.now + .seconds(long ? 3 : 0)
            repeat {
                for name in home where name != "n3" {
                    #expect(try await tombstoneHeld(on: name), "\(name) reaped the tombstone during the partition")
                }
                #expect(try await cluster.client("n3").local(key)?.siblings.first?.bytes == "doomed".bytes)
                if long { try await Task.sleep(for: .milliseconds(250)) }
            } while ContinuousClock.now < deadline
            try await cluster.heal()

            try await LocalCluster.waitFor("the tombstone to be reaped on every node", timeout: .seconds(30)) {
                for name in cluster.names where try await cluster.client(name).local(key) != nil { return false }
                return true
            }
            for name in cluster.names {
                let result = try await cluster.client(name).raw(.GET, "/kv/\(PercentEncoding.encode(key))")
                #expect(result.status == 404, "the value never came back, via \(name)")
                #expect(try await cluster.client(name).status().hints.pending == 0)
            }
        }
    }

    @Test(.timeLimit(.minutes(3))) func faultsAreValidatedAndReportedBack() async throws {
        try await withCluster(nodes: 3) { cluster in
            let client = cluster.client("n1")
            #expect(try await client.raw(.POST, "/admin/faults", body: "nonsense".bytes).status == 400)
            #expect(try await client.raw(.POST, "/admin/faults", body: #"{"drop":["nobody"]}"#.bytes).status == 400)
            try await client.setFaults(drop: ["n2"])
            #expect(try await client.raw(.GET, "/admin/faults").bodyText == #"{"drop":["n2"]}"#)
            #expect(try await client.status().members.first { $0.name == "n2" }?.status == "down")
            try await client.setFaults(drop: [])
            try await cluster.waitUntilConverged(timeout: .seconds(10))
        }
    }
}
