import DynamoClient
import DynamoCore
import DynamoLauncher
import Foundation
import Testing

/// `--policy lww` on real nodes: writes on both sides of a partition leave one value, the
/// newest, on every replica (never siblings); a newer delete beats an older write and a
/// newer write beats an older delete.
@Suite(.serialized) struct ConflictPolicyTests {
    static func lww(_ options: inout LocalCluster.Options) {
        options.extraArguments += ["--policy", "lww", "--hint-interval-ms", "200"]
    }

    /// Reads `key` with R=3 through every node until all agree on one answer; returns it.
    static func settled(_ key: [UInt8], in cluster: LocalCluster) async throws -> ReadResult {
        var answer: ReadResult?
        try await LocalCluster.waitFor("every node to read one answer", timeout: .seconds(20)) {
            let reads = try await cluster.names.asyncMap { try await cluster.client($0).get(key, r: 3) }
            guard let first = reads.first, reads.allSatisfy({ $0.status == first.status && $0.values == first.values })
            else { return false }
            answer = first
            return true
        }
        return try #require(answer)
    }

    @Test(.timeLimit(.minutes(2)))
    func theNewestWriteWinsAcrossAPartitionAndNoSiblingIsKept() async throws {
        try await withCluster(configure: Self.lww) { cluster in
            let key = "profile:ann".bytes
            #expect(try await cluster.client("n1").put(key, value: "first".bytes).succeeded)
            try await cluster.partition([["n1", "n2"], ["n3", "n4", "n5"]])
            #expect(try await cluster.client("n1").put(key, value: "left".bytes).succeeded)
            // Later, by the wall clock, on the other side: this one is newer.
            try await Task.sleep(for: .milliseconds(20))
            #expect(try await cluster.client("n4").put(key, value: "right".bytes).succeeded)
            try await cluster.heal()
            let read = try await Self.settled(key, in: cluster)
            #expect(read.status == 200, "lww never answers with siblings: \(read.status)")
            #expect(read.values == ["right".bytes])
            for name in try await cluster.client("n1").preferenceList(key).preferenceList.prefix(3) {
                try await LocalCluster.waitFor("\(name) to hold only the newest", timeout: .seconds(20)) {
                    try await cluster.client(name).local(key)?.siblings.map(\.bytes) == ["right".bytes]
                }
            }
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func aNewerDeleteBeatsAnOlderWriteAndANewerWriteBeatsAnOlderDelete() async throws {
        try await withCluster(configure: Self.lww) { cluster in
            for (key, deleteLast) in [("gone".bytes, true), ("back".bytes, false)] {
                #expect(try await cluster.client("n1").put(key, value: "v0".bytes).succeeded)
                try await cluster.partition([["n1", "n2"], ["n3", "n4", "n5"]])
                let first = deleteLast ? "n4" : "n1"
                let second = deleteLast ? "n1" : "n4"
                if deleteLast {
                    #expect(try await cluster.client(first).put(key, value: "older write".bytes).succeeded)
                } else {
                    let context = try await cluster.client(first).get(key).context
                    #expect(try await cluster.client(first).delete(key, context: context).succeeded)
                }
                try await Task.sleep(for: .milliseconds(20))
                if deleteLast {
                    let context = try await cluster.client(second).get(key).context
                    #expect(try await cluster.client(second).delete(key, context: context).succeeded)
                } else {
                    #expect(try await cluster.client(second).put(key, value: "newer write".bytes).succeeded)
                }
                try await cluster.heal()
                let read = try await Self.settled(key, in: cluster)
                if deleteLast {
                    #expect(read.status == 404, "the newer delete wins: \(read.status) \(read.values)")
                } else {
                    #expect(read.status == 200 && read.values == ["newer write".bytes], "\(read.status) \(read.values)")
                }
            }
        }
    }
}
