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

    /// Overwrites 4 KiB in the middle of the largest file of `suffix` in a node's store.
    private func corrupt(_ dataDir: String, suffix: String) throws {
        let directory = dataDir + "/rocksdb"
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

    /// n1 refuses to start on its damaged store, naming `--repair-store`; started with it,
    /// it says it was repaired and refills.
    private func expectRefusedThenRepaired(_ cluster: LocalCluster) async throws {
        try cluster.launch("n1")
        #expect(try await cluster.waitForExit("n1") == 1)
        #expect(log(cluster).contains("--repair-store"), "the refusal names the way out")
        try cluster.launch("n1", extraArguments: ["--repair-store"])
        try await cluster.waitUntilReady("n1")
        let lost = try #require(try await cluster.client("n1").status().storage?.lostAtStart)
        #expect(lost.contains("repaired"), "\(lost)")
        try await expectRefilled(cluster)
    }

    private func log(_ cluster: LocalCluster) -> String {
        let path = cluster.options.logDirectory! + "/n1.log"
        return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    /// Fills three nodes, kills n1, damages its data dir with `damage`, then `check`s.
    /// Anti-entropy waits an hour, so only the refill can bring n1's keys back.
    private func withDamagedNode(
        _ damage: (String) throws -> Void, _ check: (LocalCluster) async throws -> Void
    ) async throws {
        try await withCluster(nodes: 3, configure: { $0.extraArguments = ["--anti-entropy-interval-ms", "3600000"] }) {
            cluster in
            try await fill(cluster)
            cluster.stop("n1", .kill)
            try damage(cluster.spec("n1")!.dataDir)
            try await check(cluster)
        }
    }

    /// n1 starts, says what its store lost (in the status and the log), and refills.
    private func expectNoticedAndRefilled(_ cluster: LocalCluster, saying what: String) async throws {
        try cluster.launch("n1")
        try await cluster.waitUntilReady("n1")
        let lost = try #require(try await cluster.client("n1").status().storage?.lostAtStart)
        #expect(lost.contains(what), "\(lost)")
        #expect(log(cluster).contains("THIS NODE'S STORE LOST DATA"))
        try await expectRefilled(cluster)
    }

    @Test(.timeLimit(.minutes(2))) func aCorruptedWriteAheadLogIsNoticedAndRefilledFromReplicas() async throws {
        try await withDamagedNode({ try corrupt($0, suffix: ".log") }) { cluster in
            try await expectNoticedAndRefilled(cluster, saying: "write-ahead log is damaged")
        }
    }

    /// What no log shows: the store itself gone (emptied or replaced), its seal still there.
    @Test(.timeLimit(.minutes(2))) func aStoreEmptiedBesideItsSealIsNoticedAndRefilled() async throws {
        try await withDamagedNode({ try FileManager.default.removeItem(atPath: $0 + "/rocksdb") }) { cluster in
            try await expectNoticedAndRefilled(cluster, saying: "no longer holds the record written when it was created")
        }
    }

    @Test(.timeLimit(.minutes(2))) func aTruncatedManifestStopsTheNodeUntilRepairStoreRefillsIt() async throws {
        try await withDamagedNode({ dataDir in
            let directory = dataDir + "/rocksdb"
            let manifest = try #require(
                try FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasPrefix("MANIFEST-") })
            let path = "\(directory)/\(manifest)"
            let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: UInt64(size * 2 / 3))
            try handle.close()
        }) { cluster in
            try await expectRefusedThenRepaired(cluster)
        }
    }

    @Test(.timeLimit(.minutes(2))) func aCorruptedTableFileStopsTheNodeUntilRepairStoreRefillsIt() async throws {
        try await withDamagedNode({ _ in }) { cluster in
            // A restart flushes the recovered log into a table file.
            try cluster.launch("n1")
            try await cluster.waitUntilReady("n1")
            cluster.stop("n1", .kill)
            try corrupt(cluster.spec("n1")!.dataDir, suffix: ".sst")
            try await expectRefusedThenRepaired(cluster)
        }
    }
}

/// A node whose disk fills up keeps the cluster writeable (its writes are coordinated by
/// another replica), says so in its status and log, and takes writes again by itself once
/// space returns. Its data dir is a small tmpfs (the tests run as root on CI).
@Suite(.serialized) struct DiskFullTests {
    /// Moves n1's data dir onto a fresh tmpfs of `megabytes` (n1 must be stopped).
    private func mountSmallDisk(at directory: String, megabytes: Int) throws {
        try FileManager.default.moveItem(atPath: directory, toPath: directory + ".old")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        let mount = try runTool("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", directory])
        try #require(mount.status == 0, "cannot mount a tmpfs (the test needs root): \(mount.output)")
        for item in try FileManager.default.contentsOfDirectory(atPath: directory + ".old") {
            try FileManager.default.copyItem(atPath: "\(directory).old/\(item)", toPath: "\(directory)/\(item)")
        }
    }

    /// Fills the filesystem of `directory` with one file, to the last byte.
    private func fill(_ directory: String) throws -> String {
        let path = directory + "/filler"
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        let chunk = Data(count: 64 * 1024)
        while (try? handle.write(contentsOf: chunk)) != nil {}
        return path
    }

    @Test(.timeLimit(.minutes(2))) func aFullDiskKeepsWritesFlowingIsReportedAndHealsWhenSpaceReturns() async throws {
        try await withCluster(nodes: 3) { cluster in
            let directory = cluster.spec("n1")!.dataDir
            cluster.stop("n1", .kill)
            try mountSmallDisk(at: directory, megabytes: 48)
            defer {
                cluster.stop("n1", .kill)
                _ = try? runTool("/usr/bin/umount", ["-l", directory])
            }
            try cluster.launch("n1")
            try await cluster.waitUntilReady("n1")
            try await cluster.waitUntilAllSee("n1", as: "up")
            let filler = try fill(directory)
            let value = (0..<65536).map { _ in UInt8.random(in: .min ... .max) }
            let n1 = cluster.client("n1")
            var degraded: String?
            var written = 0
            while degraded == nil, written < 200 {
                let put = try await n1.put("full-\(written)".bytes, value: value, w: 2)
                #expect(put.status == 204, "a write through the node with the full disk: \(put.status)")
                written += 1
                degraded = try await n1.status().storage?.degraded
            }
            #expect(degraded == "disk full", "after \(written) writes")
            let log = try String(contentsOfFile: cluster.options.logDirectory! + "/n1.log", encoding: .utf8)
            #expect(log.contains("storage degraded (disk full)"))
            // Space comes back: the node reopens its store by itself and takes writes again.
            try FileManager.default.removeItem(atPath: filler)
            try await LocalCluster.waitFor("n1 takes writes again", timeout: .seconds(20)) {
                guard try await n1.status().storage?.degraded == nil else { return false }
                let key = "after-\(UInt64.random(in: 0 ... .max))".bytes
                guard try await n1.put(key, value: [1], w: 3).status == 204 else { return false }
                return try await n1.local(key)?.siblings.first?.bytes == [1]
            }
            let healed = try String(contentsOfFile: cluster.options.logDirectory! + "/n1.log", encoding: .utf8)
            #expect(healed.contains("storage recovered"))
        }
    }
}

/// Runs a system tool to its end; its exit status and combined output.
func runTool(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    try waitForExit(process)
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}
