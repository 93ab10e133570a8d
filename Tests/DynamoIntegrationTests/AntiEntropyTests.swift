import DynamoClient
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
}
