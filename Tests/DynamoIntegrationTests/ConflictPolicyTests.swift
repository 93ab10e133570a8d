import DynamoClient
import DynamoCore
import DynamoLauncher
import Foundation
import Testing

/// `--policy lww` on real nodes: writes on both sides of a partition leave one value, the
/// newest, on every replica (never siblings); a newer delete beats an older write and a
/// newer write beats an older delete; a node whose clock runs ahead wins. (Equal
/// timestamps cannot be arranged between real processes: ties are a unit test,
/// `LastWriteWinsTests`.)
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

    /// The policy's known cost, on real processes: n4 runs a minute ahead
    /// (`--clock-offset-ms 60000`), so its write wins over one made later in real time on
    /// the other side of a partition.
    @Test(.timeLimit(.minutes(2)))
    func aNodeWhoseClockRunsAheadWinsOverALaterWrite() async throws {
        try await withCluster(configure: Self.lww) { cluster in
            cluster.stop("n4", .graceful)
            try cluster.launch("n4", extraArguments: ["--clock-offset-ms", "60000"])
            try await cluster.waitUntilConverged()
            let key = try await Self.key(homedOnBoth: "n4", "n1", in: cluster)
            try await cluster.partition([["n1", "n2"], ["n3", "n4", "n5"]])
            let ahead = try await cluster.client("n4").put(key.bytes, value: "from the future".bytes)
            #expect(ahead.succeeded && ahead.coordinator == "n4", "\(ahead.coordinator ?? "-") \(ahead.error ?? "")")
            try await Task.sleep(for: .milliseconds(50))
            let later = try await cluster.client("n1").put(key.bytes, value: "later, in real time".bytes)
            #expect(later.succeeded && later.coordinator == "n1", "\(later.coordinator ?? "-") \(later.error ?? "")")
            try await cluster.heal()
            let read = try await Self.settled(key.bytes, in: cluster)
            #expect(read.status == 200 && read.values == ["from the future".bytes], "\(read.status) \(read.values)")
        }
    }

    /// A key both nodes are home to, so each coordinates the write it receives.
    static func key(homedOnBoth a: String, _ b: String, in cluster: LocalCluster) async throws -> String {
        for i in 0..<500 {
            let key = "skew:\(i)"
            let home = try await cluster.client("n1").preferenceList(key.bytes).preferenceList.prefix(3)
            if home.contains(a) && home.contains(b) { return key }
        }
        throw LauncherError("no key skew:0-499 is homed on both \(a) and \(b)")
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
