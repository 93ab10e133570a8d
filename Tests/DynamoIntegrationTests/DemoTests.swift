import DynamoLauncher
import Foundation
import Testing

/// Every classroom demo runs to the end on real clusters, its own `expect` lines passing.
@Suite(.serialized) struct DemoTests {
    /// Runs `dynamo demo NAME --no-pause --plain` with demos from `demos`, in a directory of
    /// its own; checks that no node is left running, and cleans up.
    static func runDemo(_ name: String, from demos: String? = nil, prepare: (String) throws -> Void = { _ in })
        throws -> (status: Int32, output: String)
    {
        let binary = try #require(LocalCluster.siblingBinary(named: "dynamo"), "dynamo is not built")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "dynamo-demo-\(UUID().uuidString)"
        ).path
        defer {
            _ = try? ConsoleScreenTests.run(["pkill", "-9", "-f", directory])
            try? FileManager.default.removeItem(atPath: directory)
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try prepare(directory)
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Demos").path
        let result = try ConsoleScreenTests.run(
            [
                "env", "DYNAMO_DEMOS=\(demos.map { directory + "/" + $0 } ?? repository)", binary, "demo", name,
                "--no-pause", "--plain", "--dir", directory + "/run",
            ],
            stderr: true)
        #expect(!(try ConsoleScreenTests.nodesRunning(under: directory)), "demo \(name) left nodes running")
        return result
    }

    @Test(.timeLimit(.minutes(3)), arguments: [
        "vector-clocks", "hinted-handoff", "merkle-repair", "node-join", "shopping-cart", "sloppy-vs-strict",
                "latency-and-quorums",
    ])
    func demoRunsToCompletion(name: String) throws {
        let result = try Self.runDemo(name)
        #expect(result.status == 0, "demo \(name) failed:\n\(result.output)")
        #expect(result.output.contains("=== end of \(name) ==="))
    }

    /// A demo whose expectation is false exits non-zero and says which one, and stops its nodes.
    @Test(.timeLimit(.minutes(3)), arguments: [
        ("status\nexpect 999999 keys", "expected '999999 keys'"),
        ("status\nexpect-not keys", "did not expect 'keys'"),
    ])
    func aDemoWithAFalseExpectationFails(steps: String, message: String) throws {
        let result = try Self.runDemo("false", from: "demos") { directory in
            try FileManager.default.createDirectory(atPath: directory + "/demos", withIntermediateDirectories: true)
            try "title a false expectation\ncluster 1\n\(steps)\n".write(
                toFile: directory + "/demos/false.demo", atomically: true, encoding: .utf8)
        }
        #expect(result.status != 0, "\(result.output)")
        #expect(result.output.contains(message), "\(result.output)")
        #expect(!result.output.contains("=== end of false ==="))
    }
}
