import DynamoLauncher
import Foundation
import Testing

/// Every classroom demo runs to the end on real clusters, its own `expect` lines passing.
@Suite(.serialized) struct DemoTests {
    @Test(arguments: [
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
        #expect(!ConsoleScreenTests.nodesRunning(under: directory), "the demo left nodes running")
    }
}
