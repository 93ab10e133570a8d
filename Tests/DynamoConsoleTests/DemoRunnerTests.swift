import DynamoClient
import DynamoConsole
import Foundation
import Testing

/// A demo's checks can fail: a false `expect` or `expect-not`, and a `wait` that silence
/// from the nodes must not satisfy.
@Suite struct DemoRunnerTests {
    /// Nodes that never answer: every client points at a closed loopback port.
    final class SilentCluster: ClusterControl, @unchecked Sendable {
        let nodeNames = ["n1", "n2"]
        func client(_ name: String) -> DynamoClient { DynamoClient(address: "127.0.0.1:1", bearer: nil) }
        func kill(_ name: String) throws {}
        func stop(_ name: String) throws {}
        func restart(_ name: String) throws {}
        func addNode(_ name: String?) throws -> String { "n3" }
        func processRunning(_ name: String) -> Bool? { true }
        func wipe(_ name: String) throws {}
        func forget(_ name: String) {}
    }

    final class Host: DemoHost, @unchecked Sendable {
        let cluster = SilentCluster()
        /// Each pause, and the command Enter would run at it.
        var pauses: [String?] = []
        func show(_ lines: [String], narration: Bool) async {}
        func pause(before command: String?, step: Int, of total: Int) async { pauses.append(command) }
        func startCluster(nodes: Int, nodeArguments: [String]) async throws -> ReplSession {
            ReplSession(cluster: cluster)
        }
    }

    func run(_ text: String) async throws {
        var runner = DemoRunner(pausing: false)
        runner.waitTimeout = .seconds(1)
        try await runner.run(try Demo.parse(name: "check", text: text), host: Host())
    }

    /// `--step` pauses before every command as well, naming it; `--no-pause` never pauses,
    /// even with `--step`; `screen` lines are for the screen tests and do nothing here.
    @Test func steppingPausesBeforeEachCommand() async throws {
        let demo = try Demo.parse(name: "steps", text: "cluster 2\n> look\nstatus\nscreen n1\npause\nstatus")
        let stepped = Host()
        try await DemoRunner(pausing: true, stepping: true).run(demo, host: stepped)
        #expect(stepped.pauses == ["status", nil, "status"])
        let paced = Host()
        try await DemoRunner(pausing: true).run(demo, host: paced)
        #expect(paced.pauses == [nil])
        let straight = Host()
        try await DemoRunner(pausing: false, stepping: true).run(demo, host: straight)
        #expect(straight.pauses.isEmpty)
    }

    @Test func aFalseExpectationFailsTheDemo() async throws {
        // `status` prints a line per node whether or not it answers: "n1  not answering".
        try await run("cluster 2\nstatus\nexpect n1")
        await #expect(throws: CommandError.self) { try await run("cluster 2\nstatus\nexpect n1  12 keys") }
        await #expect(throws: CommandError.self) { try await run("cluster 2\nstatus\nexpect-not not answering") }
    }

    @Test func noHintsIsNotSatisfiedByNodesThatDoNotAnswer() async throws {
        await #expect(throws: (any Error).self) { try await run("cluster 2\nwait no-hints") }
    }

    /// A demo written on Windows (CRLF) parses line by line; a wait for a node the cluster
    /// does not have fails at once, not after its timeout.
    @Test func crlfDemosParseAndAWaitForANodeThatIsNotThereFails() async throws {
        let demo = try Demo.parse(name: "crlf", text: "title T\r\ncluster 2\r\nstatus\r\nexpect n1\r\n")
        #expect(demo.title == "T" && demo.steps.count == 3)
        let started = ContinuousClock.now
        await #expect(throws: CommandError.self) { try await run("cluster 2\nwait n9 up") }
        #expect(ContinuousClock.now - started < .seconds(1))
    }
}
