import DynamoLauncher
import Foundation
import Testing

/// Every classroom demo runs to the end on real clusters, its own `expect` lines passing.
@Suite(.serialized) struct DemoTests {
    @Test(.timeLimit(.minutes(3)), arguments: [
        "vector-clocks", "hinted-handoff", "merkle-repair", "node-join", "shopping-cart", "sloppy-vs-strict",
    ])
    func demoRunsToCompletion(name: String) throws {
        let binary = try #require(LocalCluster.siblingBinary(named: "dynamo"), "dynamo is not built")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "dynamo-demo-\(UUID().uuidString)"
        ).path
        defer {
            _ = try? ConsoleScreenTests.run(["pkill", "-9", "-f", directory])
            try? FileManager.default.removeItem(atPath: directory)
        }
        let demos = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Demos").path
        let result = try ConsoleScreenTests.run(
            ["env", "DYNAMO_DEMOS=\(demos)", binary, "demo", name, "--no-pause", "--plain", "--dir", directory],
            stderr: true)
        #expect(result.status == 0, "demo \(name) failed:\n\(result.output)")
        #expect(result.output.contains("=== end of \(name) ==="))
        #expect(!(try ConsoleScreenTests.nodesRunning(under: directory)), "the demo left nodes running")
    }

    /// A demo whose expectation is false exits non-zero and says which one, and stops its nodes.
    @Test(.timeLimit(.minutes(3)), arguments: [
        ("status\nexpect 999999 keys", "expected '999999 keys'"),
        ("status\nexpect-not keys", "did not expect 'keys'"),
    ])
    func aDemoWithAFalseExpectationFails(steps: String, message: String) throws {
        let binary = try #require(LocalCluster.siblingBinary(named: "dynamo"), "dynamo is not built")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "dynamo-demo-\(UUID().uuidString)"
        ).path
        defer {
            _ = try? ConsoleScreenTests.run(["pkill", "-9", "-f", directory])
            try? FileManager.default.removeItem(atPath: directory)
        }
        let demos = directory + "/demos"
        try FileManager.default.createDirectory(atPath: demos, withIntermediateDirectories: true)
        try "title a false expectation\ncluster 1\n\(steps)\n".write(
            toFile: demos + "/false.demo", atomically: true, encoding: .utf8)
        let result = try ConsoleScreenTests.run(
            ["env", "DYNAMO_DEMOS=\(demos)", binary, "demo", "false", "--no-pause", "--plain", "--dir", directory + "/run"],
            stderr: true)
        #expect(result.status != 0, "\(result.output)")
        #expect(result.output.contains(message), "\(result.output)")
        #expect(!result.output.contains("=== end of false ==="))
        #expect(!(try ConsoleScreenTests.nodesRunning(under: directory)), "the failed demo left nodes running")
    }
}
