import DynamoClient
import DynamoLauncher
import DynamoStorage
import Foundation
import Testing

/// A store damaged on disk (a corrupted write-ahead log, a corrupted table file) must never
/// be served as if it were whole: the node notices, says so, and refills from its replicas.
/// Anti-entropy is slowed to an hour here so it cannot quietly mend what the node missed.
@Suite(.serialized) struct StoreDamageTests {
    static let keys = (0..<300).map { "damage-\($0)".bytes }
    /// Random, so the table files do not compress to nothing.
    static let value = (0..<2048).map { _ in UInt8.random(in: .min ... .max) }

    /// Writes every key to all three replicas, then waits until n1's seal records them
    /// (it is refreshed every second), so a loss is detectable.
    private func fill(_ cluster: LocalCluster) async throws {
        for key in Self.keys {
            #expect(try await cluster.client("n2").put(key, value: Self.value, w: 3).status == 204)
        }
        let seal = cluster.spec("n1")!.dataDir + "/" + StoreSeal.fileName
        try await LocalCluster.waitFor("n1's seal records the writes", timeout: .seconds(10)) {
            guard let bytes = try StoreSeal.read(at: seal), let sealed = StoreSeal(decoding: bytes) else { return false }
            return sealed.sequence >= UInt64(Self.keys.count)
        }
    }

    /// Overwrites 4 KiB in the middle of the largest file of `suffix` in n1's store.
    private func corrupt(_ cluster: LocalCluster, suffix: String) throws -> String {
        let directory = cluster.spec("n1")!.dataDir + "/rocksdb"
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(suffix) }
        let sized = try files.map { file in
            (file, try FileManager.default.attributesOfItem(atPath: "\(directory)/\(file)")[.size] as! Int)
        }
        let (file, size) = try #require(sized.max { $0.1 < $1.1 }, "no \(suffix) file in \(directory)")
        #expect(size > 64 * 1024, "\(file) is only \(size) bytes")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(directory)/\(file)"))
        try handle.seek(toOffset: UInt64(size / 2))
        try handle.write(contentsOf: Data((0..<4096).map { _ in UInt8.random(in: .min ... .max) }))
        try handle.close()
        return file
    }

    /// Waits until n1 has refilled (it reports itself up) and checks it holds every key.
    private func expectRefilled(_ cluster: LocalCluster) async throws {
        try await LocalCluster.waitFor("n1 refilled and up", timeout: .seconds(30)) {
            try await cluster.client("n1").status().members.first { $0.name == "n1" }?.status == "up"
        }
        var missing = 0
        for key in Self.keys where try await cluster.client("n1").local(key)?.siblings.first?.bytes != Self.value {
            missing += 1
        }
        #expect(missing == 0, "\(missing) of \(Self.keys.count) keys missing on n1 once it said it was up")
    }

    private func log(_ cluster: LocalCluster) -> String {
        let path = cluster.options.logDirectory! + "/n1.log"
        return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    @Test(.timeLimit(.minutes(2))) func aCorruptedWriteAheadLogIsNoticedAndRefilledFromReplicas() async throws {
        try await withCluster(nodes: 3, configure: { $0.extraArguments = ["--anti-entropy-interval-ms", "3600000"] }) {
            cluster in
            try await fill(cluster)
            cluster.stop("n1", .kill)
            _ = try corrupt(cluster, suffix: ".log")
            try cluster.launch("n1")
            try await cluster.waitUntilReady("n1")
            let lost = try #require(try await cluster.client("n1").status().storage?.lostAtStart)
            #expect(lost.contains("writes are gone"), "\(lost)")
            #expect(log(cluster).contains("THIS NODE'S STORE LOST DATA"))
            try await expectRefilled(cluster)
        }
    }

    @Test(.timeLimit(.minutes(2))) func aCorruptedTableFileStopsTheNodeUntilRepairStoreRefillsIt() async throws {
        try await withCluster(nodes: 3, configure: { $0.extraArguments = ["--anti-entropy-interval-ms", "3600000"] }) {
            cluster in
            try await fill(cluster)
            // A restart flushes the recovered log into a table file.
            cluster.stop("n1", .kill)
            try cluster.launch("n1")
            try await cluster.waitUntilReady("n1")
            cluster.stop("n1", .kill)
            _ = try corrupt(cluster, suffix: ".sst")
            try cluster.launch("n1")
            let status = try await cluster.waitForExit("n1")
            #expect(status == 1)
            #expect(log(cluster).contains("--repair-store"), "the refusal names the way out")
            try cluster.launch("n1", extraArguments: ["--repair-store"])
            try await cluster.waitUntilReady("n1")
            let lost = try #require(try await cluster.client("n1").status().storage?.lostAtStart)
            #expect(lost.contains("repaired"), "\(lost)")
            try await expectRefilled(cluster)
        }
    }
}
