import DynamoAPI
import DynamoClient
import DynamoCore
import DynamoLauncher
import Foundation
import Testing

/// Group commit on real processes: concurrent writes share fsyncs, and every one of them
/// that was acknowledged survives `kill -9` of every node.
@Suite(.serialized) struct GroupCommitNodeTests {
    @Test(.timeLimit(.minutes(3))) func concurrentWritesShareSyncsAndSurviveKillingEveryNode() async throws {
        try await withCluster(nodes: 3) { cluster in
            let n1 = cluster.client("n1")
            let before = try #require(try await n1.status().storage)
            // 64 clients, 10 fresh keys each, all through n1 (with N=3 on 3 nodes it
            // coordinates every one: its replica is fsynced before it answers).
            let writers = 64
            let each = 10
            let acknowledged = try await withThrowingTaskGroup(of: [String].self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        var written: [String] = []
                        for i in 0..<each {
                            let key = "gc-\(writer)-\(i)"
                            if try await n1.put(key.bytes, value: key.bytes).succeeded { written.append(key) }
                        }
                        return written
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(acknowledged.count == writers * each, "every write is acknowledged on a healthy cluster")
            let after = try #require(try await n1.status().storage)
            let syncs = (after.syncs ?? 0) - (before.syncs ?? 0)
            let operations = (after.batchedOperations ?? 0) - (before.batchedOperations ?? 0)
            #expect(operations >= UInt64(writers * each), "n1 stored every write it coordinated")
            // Without group commit each coordinated write is a sync of its own.
            #expect(
                syncs * 2 <= UInt64(writers * each),
                "\(writers * each) concurrent writes took \(syncs) syncs: group commit should share them")

            // kill -9 every node, start them again: every acknowledged write is there.
            for name in cluster.names { cluster.stop(name, .kill) }
            for name in cluster.names { try cluster.launch(name) }
            for name in cluster.names { try await cluster.waitUntilReady(name) }
            try await cluster.waitUntilConverged()
            var missing: [String] = []
            for key in acknowledged where try await n1.get(key.bytes, r: 3).values != [key.bytes] {
                missing.append(key)
            }
            #expect(missing.isEmpty, "acknowledged writes lost by kill -9: \(missing.prefix(5))")
        }
    }
}
