import DynamoLauncher
import Foundation
import Testing

/// The `dynamo` tool as a script or a person at a shell uses it: `cluster start`, `status`
/// and `stop`; `get`, `put` (with `--replace`), `delete` and `preflist` against a node;
/// `repl` running a script on its own cluster and on one it attaches to.
@Suite(.serialized) struct CommandLineTests {
    static func dynamo(_ arguments: [String], environment: [String] = []) throws -> (status: Int32, output: String) {
        let binary = try #require(LocalCluster.siblingBinary(named: "dynamo"), "dynamo is not built")
        return try ConsoleScreenTests.run(["env"] + environment + [binary] + arguments, stderr: true)
    }

    static func temporaryDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("dynamo-cli-\(UUID().uuidString)").path
    }

    @Test(.timeLimit(.minutes(2)))
    func aClusterStartedFromTheShellAnswersTheCommandsAndStops() throws {
        let directory = Self.temporaryDirectory()
        defer {
            _ = try? Self.dynamo(["cluster", "stop", "--dir", directory])
            _ = try? ConsoleScreenTests.run(["pkill", "-9", "-f", directory])
            try? FileManager.default.removeItem(atPath: directory)
        }
        let started = try Self.dynamo([
            "cluster", "start", "--nodes", "3", "--dir", directory, "--gossip-interval-ms", "100",
        ])
        #expect(started.status == 0, "\(started.output)")
        #expect(started.output.contains("ring converged"), "\(started.output)")
        let n1 = try #require(
            started.output.split(separator: "\n").first { $0.hasPrefix("n1 ") }?.split(separator: " ").drop { $0 != "http" }
                .dropFirst().first.map(String.init), "n1's address in: \(started.output)")
        let secret = try String(contentsOfFile: directory + "/data/cluster-secret", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
            try Self.dynamo(arguments + ["--node", n1], environment: ["DYNAMO_CLUSTER_SECRET=\(secret)"])
        }

        let status = try Self.dynamo(["cluster", "status", "--dir", directory])
        #expect(status.status == 0)
        for name in ["n1", "n2", "n3"] {
            #expect(status.output.contains("\(name)  0 keys  sees n1:up n2:up n3:up"), "\(status.output)")
        }

        let put = try run(["put", "cart:ann", "book"])
        #expect(put.status == 0 && put.output.hasPrefix("ok: written via n1"), "\(put.output)")
        let read = try run(["get", "cart:ann"])
        #expect(read.status == 0 && read.output.hasPrefix("book\n"), "\(read.output)")
        // A blind second write is a sibling; --replace reads first and replaces both.
        #expect(try run(["put", "cart:ann", "pen"]).status == 0)
        let siblings = try run(["get", "cart:ann"])
        #expect(siblings.output.hasPrefix("2 siblings"), "\(siblings.output)")
        #expect(siblings.output.contains("[1] book") && siblings.output.contains("[2] pen"), "\(siblings.output)")
        #expect(try run(["put", "cart:ann", "book+pen", "--replace"]).status == 0)
        let merged = try run(["get", "cart:ann", "--json"])
        let document = try JSONSerialization.jsonObject(with: Data(merged.output.utf8)) as? [String: Any]
        let values = (document?["siblings"] as? [[String: Any]])?.compactMap { $0["value"] as? String }
        #expect(values == [Data("book+pen".utf8).base64EncodedString()], "\(merged.output)")
        // Written from standard input with '-' is covered by the README; delete reads first.
        let deleted = try run(["delete", "cart:ann"])
        #expect(deleted.status == 0 && deleted.output.hasPrefix("ok: written"), "\(deleted.output)")
        #expect(try run(["get", "cart:ann"]).output.hasPrefix("deleted"))
        #expect(try run(["get", "never:written"]).output.hasPrefix("not found"))
        let preflist = try run(["preflist", "cart:ann"])
        #expect(preflist.output.contains("preference list"), "\(preflist.output)")
        #expect(preflist.output.split(separator: "\n").last?.split(separator: " ").count == 5, "3 home nodes: \(preflist.output)")
        // A node that is not there: a clear error and a failing exit status.
        let refused = try Self.dynamo(["get", "cart:ann", "--node", "127.0.0.1:1"])
        #expect(refused.status != 0 && refused.output.contains("cannot connect to 127.0.0.1:1"), "\(refused.output)")

        let stopped = try Self.dynamo(["cluster", "stop", "--dir", directory])
        #expect(stopped.status == 0 && stopped.output.contains("stopping n3"), "\(stopped.output)")
        #expect(!(try ConsoleScreenTests.nodesRunning(under: directory)), "cluster stop left nodes running")
        let gone = try Self.dynamo(["cluster", "status", "--dir", directory])
        #expect(gone.status != 0 && gone.output.contains("no cluster state"), "\(gone.output)")
    }

    /// A state file that is not one, and a pid that only pretends to be a node: every
    /// command says so in one line, and nothing is signalled that is not this cluster's.
    @Test(.timeLimit(.minutes(1)))
    func aDamagedStateFileOrAForeignPidIsRefusedInOneLine() throws {
        let directory = Self.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: ClusterStateFile.path(directory)))
        for command in [["cluster", "status"], ["cluster", "stop"], ["console", "--plain"], ["cluster", "start"]] {
            let result = try Self.dynamo(command + ["--dir", directory])
            let lines = result.output.split(separator: "\n").filter { !$0.isEmpty }
            #expect(result.status == 1 && lines.count == 1, "\(command): \(result.output)")
            #expect(result.output.contains("is not a cluster state file"), "\(command): \(result.output)")
        }
        // A process that calls itself dynamo-node but does not run this node's data dir.
        let impostor = Process()
        impostor.executableURL = URL(fileURLWithPath: "/bin/bash")
        impostor.arguments = ["-c", "exec -a dynamo-node sleep 30"]
        try impostor.run()
        defer { impostor.terminate() }
        for _ in 0..<200 where !ClusterStateFile.isLive(impostor.processIdentifier, running: "dynamo-node") {
            usleep(10_000)
        }
        #expect(ClusterStateFile.isLive(impostor.processIdentifier, running: "dynamo-node"))
        #expect(!ClusterStateFile.isLive(impostor.processIdentifier, running: "dynamo-node", naming: "\(directory)/data/n1"))
        let state = ClusterStateFile(
            nodes: [.init(name: "n1", httpAddress: "127.0.0.1:1", peerAddress: "127.0.0.1:2", pid: impostor.processIdentifier, dataDir: "\(directory)/data/n1")],
            owner: nil)
        try JSONEncoder().encode(state).write(to: URL(fileURLWithPath: ClusterStateFile.path(directory)))
        let stop = try Self.dynamo(["cluster", "stop", "--dir", directory])
        #expect(stop.status == 0 && !stop.output.contains("stopping n1"), "\(stop.output)")
        #expect(impostor.isRunning, "the impostor was not signalled")
    }

    @Test(.timeLimit(.minutes(2)))
    func aReplScriptRunsOnItsOwnClusterAndOnOneItAttachesTo() async throws {
        let directory = Self.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer {
            _ = try? ConsoleScreenTests.run(["pkill", "-9", "-f", directory])
            try? FileManager.default.removeItem(atPath: directory)
        }
        let script = directory + "/script"
        try "put cart:ann book\nget cart:ann\nstatus\nfrobnicate\npreflist cart:ann\n".write(
            toFile: script, atomically: true, encoding: .utf8)

        // Its own cluster of three, stopped when the script ends.
        let own = try Self.dynamo([
            "repl", script, "--nodes", "3", "--dir", directory + "/own", "--gossip-interval-ms", "100",
        ])
        #expect(own.status == 0, "\(own.output)")
        #expect(own.output.contains("dynamo> put cart:ann book\nok: written via"), "\(own.output)")
        #expect(own.output.contains("dynamo> get cart:ann\nbook\n"), "\(own.output)")
        #expect(own.output.contains("0 hints  sees n1:up n2:up n3:up"), "\(own.output)")
        #expect(own.output.contains("error: unknown command 'frobnicate'"), "\(own.output)")
        #expect(own.output.contains("home nodes n1 n3 n2"), "the script goes on past an error: \(own.output)")
        #expect(!(try ConsoleScreenTests.nodesRunning(under: directory + "/own")), "repl left its nodes running")

        // Attached to a running cluster: the same commands, and the nodes stay up.
        try await withCluster(nodes: 3) { cluster in
            let address = try #require(cluster.spec("n2")).httpAddress
            let attached = try Self.dynamo(
                ["repl", script, "--attach", address], environment: ["DYNAMO_CLUSTER_SECRET=\(try cluster.secret())"])
            #expect(attached.status == 0, "\(attached.output)")
            #expect(attached.output.contains("dynamo> get cart:ann\nbook\n"), "\(attached.output)")
            #expect(attached.output.contains("sees n1:up n2:up n3:up"), "\(attached.output)")
            #expect(try await cluster.client("n1").get("cart:ann".bytes).values == ["book".bytes])
            #expect(cluster.names.allSatisfy { cluster.isRunning($0) }, "an attached repl leaves the nodes running")
        }
    }
}
