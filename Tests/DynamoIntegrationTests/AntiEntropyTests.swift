import DynamoAPI
import DynamoClient
import DynamoConsole
import DynamoCore
import DynamoLauncher
import Foundation
import Testing

/// Merkle anti-entropy against real processes: repairs with no client reads.
@Suite(.serialized) struct AntiEntropyTests {
    /// Hints are held for an hour, so only anti-entropy can bring the missed writes back.
    static func antiEntropyOnly(_ options: inout LocalCluster.Options) {
        options.extraArguments = ["--hint-interval-ms", "3600000", "--anti-entropy-interval-ms", "1000"]
    }

    @Test(.timeLimit(.minutes(3))) func aNodeThatWasDownDuring200WritesGetsThemAllBackWithNoClientReads() async throws {
        try await withCluster(configure: Self.antiEntropyOnly) { cluster in
            cluster.stop("n3", .kill)
            try await cluster.waitUntilAllSee("n3", as: "down")
            let keys = (0..<200).map { "missed:\($0)".bytes }
            for (i, key) in keys.enumerated() {
                #expect(try await cluster.client(cluster.names[[0, 1, 3, 4][i % 4]]).put(key, value: key).succeeded)
            }
            try cluster.launch("n3")
            try await cluster.waitUntilAllSee("n3", as: "up")
            let owned = try await keys.asyncMap { key in
                (key, try await cluster.client("n1").preferenceList(key).preferenceList.contains("n3"))
            }.filter(\.1).map(\.0)
            #expect(owned.count > 50)
            // No client reads: only Merkle exchanges between n3 and its replicas.
            try await LocalCluster.waitFor("n3 to hold all \(owned.count) of its keys", timeout: .seconds(60)) {
                try await cluster.client("n3").status().keys == owned.count
            }
            for key in owned { #expect(try await cluster.client("n3").local(key)?.siblings.first?.bytes == key) }
            let status = try await cluster.client("n3").status()
            let antiEntropy = try #require(status.antiEntropy)
            if antiEntropy.keysRepaired < owned.count {
                // Which other path moved keys (the nodes' event logs tell).
                for name in cluster.names {
                    for event in try await cluster.client(name).events(since: 0).events
                    where !event.text.contains("hint") {
                        print("event log of \(name): \(event.text)")
                    }
                }
            }
            #expect(antiEntropy.keysRepaired >= owned.count, "status shows the repairs")
            #expect(antiEntropy.ranges.contains { $0.keysRepaired > 0 })
            #expect(antiEntropy.trees > 0)
            #expect(status.hints.pending == 0, "n3 holds no hints")
            // Afterwards the replicas compare equal.
            try await LocalCluster.waitFor("a range of n3 found in sync", timeout: .seconds(30)) {
                try await cluster.client("n3").status().antiEntropy?.ranges.contains { $0.inSync } ?? false
            }
        }
    }

    /// The ranges a node should compare, from the ring its status reports: every range it
    /// is one of the N home nodes of, with the other home nodes.
    static func expectedRanges(of node: String, in status: StatusDocument, n: Int) -> Set<String> {
        let ring = Ring(
            nodes: Dictionary(
                uniqueKeysWithValues: status.members.filter { $0.status != "joining" }.map {
                    ($0.name, $0.tokens.compactMap(RingPosition.init(hex:)))
                }))
        var ranges: Set<String> = []
        for (index, token) in ring.tokens.enumerated() {
            let start = ring.tokens[(index + ring.tokens.count - 1) % ring.tokens.count].position
            let home = ring.preferenceList(for: token.position).home(n)
            guard home.contains(node) else { continue }
            for peer in home where peer != node { ranges.insert("\(KeyRange(start: start, end: token.position))|\(peer)") }
        }
        return ranges
    }

    /// After a node loses its disk and refills, every node's status holds exactly the ranges
    /// of the current ring (none kept from while the node was joining), and the dashboard's
    /// anti-entropy lines settle to every pair in sync.
    @Test(.timeLimit(.minutes(3))) func afterAWipeTheStatusHoldsTheCurrentRangesAndSettlesInSync() async throws {
        try await withCluster(configure: { $0.extraArguments = ["--anti-entropy-interval-ms", "500"] }) { cluster in
            for i in 0..<100 { #expect(try await cluster.client("n1").put("wiped:\(i)".bytes, value: [1], w: 3).succeeded) }
            cluster.stop("n4", .kill)
            try FileManager.default.removeItem(atPath: cluster.spec("n4")!.dataDir)
            try cluster.launch("n4")
            try await cluster.waitUntilAllSee("n4", as: "up", timeout: .seconds(30))
            var problems: [String] = []
            // Each range is compared about once per interval, alternating replicas: 30 s is
            // many rounds (the README gives this bound).
            let settled: Void? = try? await LocalCluster.waitFor("every node's ranges to be current and in sync", timeout: .seconds(30)) {
                problems = []
                var nodes: [DashboardModel.Node] = []
                for name in cluster.names {
                    let status = try await cluster.client(name).status()
                    nodes.append(.init(name: name, status: status, answering: true))
                    let ae = try #require(status.antiEntropy)
                    let tracked = Set((ae.tracked ?? []).flatMap { t in t.peers.map { "\(t.range)|\($0)" } })
                    let expected = Self.expectedRanges(of: name, in: status, n: 3)
                    if tracked != expected { problems.append("\(name) tracks \(tracked.subtracting(expected)) beyond, misses \(expected.subtracting(tracked))") }
                    for record in ae.ranges where !tracked.contains("\(record.range)|\(record.peer)") {
                        problems.append("\(name) reports \(record.range) with \(record.peer), not one of its ranges")
                    }
                }
                for pair in DashboardModel(nodes: nodes).replicaPairs where !pair.allInSync {
                    problems.append("\(pair.a)↔\(pair.b) \(pair.inSync)/\(pair.ranges) in sync, \(pair.compared) compared")
                }
                return problems.isEmpty
            }
            #expect(settled != nil && problems.isEmpty, "\(problems)")
        }
    }
}
