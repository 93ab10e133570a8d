import DynamoAPI
import Testing

@testable import DynamoConsole

@Suite struct CommandTests {
    @Test(arguments: [
        ("get cart:ann", Command.get("cart:ann")),
        ("put cart:ann {\"items\": [\"book\", \"pen\"]}", .put("cart:ann", "{\"items\": [\"book\", \"pen\"]}")),
        ("  delete   k ", .delete("k")),
        ("partition n1,n2 | n3, n4,n5", .partition([["n1", "n2"], ["n3", "n4", "n5"]])),
        ("resolve 2", .resolvePick(2)),
        ("resolve {\"merged\": true}", .resolveValue("{\"merged\": true}")),
        ("r 3", .setR(3)),
        ("W 1", .setW(1)),
        ("trace on", .trace(true)),
        ("trace show", .traceShow),
        ("trace save /tmp/put.svg", .traceSave("/tmp/put.svg")),
        ("slow n3 200ms", .slow("n3", ms: 200, jitterMs: 0, peer: nil)),
        ("slow n3 300", .slow("n3", ms: 300, jitterMs: 0, peer: nil)),
        ("slow n3 200±50ms n4", .slow("n3", ms: 200, jitterMs: 50, peer: "n4")),
        ("slow n3 200+-50", .slow("n3", ms: 200, jitterMs: 50, peer: nil)),
        ("slow n3 0", .slow("n3", ms: 0, jitterMs: 0, peer: nil)),
        ("lossy n4 10%", .lossy("n4", percent: 10, peer: nil)),
        ("lossy n4 2.5 n1", .lossy("n4", percent: 2.5, peer: "n1")),
        ("latency", .latency),
        ("add-node", .addNode(nil)),
        ("add-node n9", .addNode("n9")),
        ("help partition", .help("partition")),
        ("?", .help(nil)),
        ("fill item 60", .fill("item", 60)),
        ("local n3 cart:ann", .local("n3", "cart:ann")),
        ("wipe n3", .wipe("n3")),
        ("quit", .quit),
    ])
    func parsesWhatAPersonTypes(line: String, expected: Command) throws {
        #expect(try Command.parse(line).get() == expected)
    }

    @Test(arguments: [
        ("frobnicate", "unknown command"),
        ("get", "usage: get KEY"),
        ("put onlykey", "usage: put KEY VALUE"),
        ("r zero", "usage: r N"),
        ("partition n1,n2", "usage: partition"),
        ("trace maybe", "usage: trace"),
        ("partition n1,n2 | n2,n3", "n2 is in two groups: each node belongs to one side"),
        ("kill", "usage: kill NODE"),
        ("slow n3", "usage: slow NODE MS"),
        ("slow n3 fast", "usage: slow NODE MS"),
        ("slow n3 -5ms", "usage: slow NODE MS"),
        ("slow n3 70000ms", "usage: slow NODE MS"),
        ("lossy n4 120%", "usage: lossy NODE PCT%"),
        ("lossy n4 nan", "usage: lossy NODE PCT%"),
        ("trace save", "usage: trace"),
        ("slow n3 0±50", "usage: slow NODE MS"),
    ])
    func mistakesGetClearMessages(line: String, message: String) {
        guard case .failure(let error) = Command.parse(line) else {
            Issue.record("\(line) parsed")
            return
        }
        #expect(error.message.contains(message), "\(error.message)")
    }

    @Test func everyCommandHasHelpAndCompletes() {
        #expect(Command.reference.count >= 20)
        for entry in Command.reference {
            #expect(!entry.summary.isEmpty)
            #expect(Command.completions(of: String(entry.name.prefix(2))).contains(entry.name))
        }
        #expect(Command.completions(of: "re") == ["resolve", "repeat", "restart", "remove"])
    }
}

@Suite struct TraceTests {
    @Test func traceNamesFallbacksAndWhoWasNotWaitedFor() {
        let text = Render.trace(asked: ["n1", "n2", "n5>n3"], answered: ["n1", "n5"], verb: "acknowledged")
        #expect(
            text
                == "trace: asked n1 n2 n5 (fallback, hint for n3) · acknowledged n1 n5 · not waited for: n2 (quorum met, or no answer)"
        )
    }

    /// With times, one line per replica: sent and answered (ms), a fallback's home node,
    /// who was not waited for (a success) or never answered (a timeout), a failure.
    @Test func aTimedTraceListsEachReplicaAsCqlshTracingDoes() {
        let times = [
            ReplicaTime(node: "n1", hintFor: nil, sentMs: 0, answeredMs: 0.41),
            ReplicaTime(node: "n4", hintFor: nil, sentMs: 0.61, answeredMs: 1.83),
            ReplicaTime(node: "n3", hintFor: "n5", sentMs: 0.61, answeredMs: nil),
            ReplicaTime(node: "n2", hintFor: nil, sentMs: 0.7, answeredMs: 0.9, failed: true),
        ]
        let lines = Render.trace(
            times, repliedMs: 1.83, coordinator: "n1", asked: [], answered: [], verb: "acknowledged", succeeded: true)
        #expect(lines[0] == "trace: coordinated by n1, client answered at 1.83 ms")
        #expect(lines[2].hasPrefix("  n1 ") && lines[2].hasSuffix("0.00 ms    0.41 ms"))
        #expect(lines[4].hasPrefix("  n3 (for n5) ") && lines[4].hasSuffix("not waited for (quorum met first)"))
        #expect(lines[5].hasSuffix("failed at 0.90 ms"))
        #expect(lines.allSatisfy { $0.count <= 80 })
        let failed = Render.trace(
            times, repliedMs: 1000, coordinator: "n1", asked: [], answered: [], verb: "answered", succeeded: false)
        #expect(failed[4].hasSuffix("no answer in time"))
        // Without times (a forwarded write), the one-line summary.
        #expect(
            Render.trace([], repliedMs: nil, coordinator: nil, asked: ["n1"], answered: ["n1"], verb: "answered", succeeded: true)
                == ["trace: asked n1 · answered n1"])
    }
}
