import DynamoClient
import DynamoConsole
import DynamoLauncher
import Foundation
import Testing

/// The console's commands against real nodes.
@Suite(.serialized) struct ReplSessionTests {
    /// Found by the newcomer review: partitions claimed success while every node refused.
    @Test(.timeLimit(.minutes(3))) func aPartitionTheNodesRefuseIsReportedNotClaimed() async throws {
        try await withCluster(nodes: 3) { cluster in
            let address = cluster.spec("n1")!.httpAddress
            let stranger = ReplSession(cluster: try await AttachedCluster(address: address, bearer: nil))
            let refused = await stranger.run("partition n1 | n2,n3").output.joined(separator: "\n")
            #expect(refused.contains("cluster secret"), "\(refused)")
            #expect(!refused.contains("partitioned"))
            #expect(try await cluster.client("n1").raw(.GET, "/admin/faults").bodyText == #"{"drop":[]}"#)
            let member = ReplSession(cluster: try await AttachedCluster(address: address, bearer: try cluster.secret()))
            #expect(await member.run("partition n1 | n2,n3").output.joined().contains("partitioned"))
            #expect(try await cluster.client("n1").raw(.GET, "/admin/faults").bodyText == #"{"drop":["n2","n3"]}"#)
            #expect(await member.run("heal").output.joined().contains("healed"))
        }
    }

    /// `isolate` cuts one node off both ways (in every node's faults), `stop` ends a node
    /// with SIGTERM (its process exits, the others see it down), `remove` makes a node hand
    /// off its keys and exit: the four left then hold every key three times, all readable.
    @Test(.timeLimit(.minutes(2)))
    func isolateStopAndRemoveDoWhatTheySay() async throws {
        try await withCluster(nodes: 5) { cluster in
            let session = ReplSession(cluster: cluster)
            func run(_ line: String) async -> String { await session.run(line).output.joined(separator: "\n") }
            #expect(await run("fill item 40").contains("wrote 40 of 40"))

            #expect(await run("isolate n2").contains("partitioned: n2 | n1,n3,n4,n5"))
            #expect(try await cluster.client("n2").raw(.GET, "/admin/faults").bodyText == #"{"drop":["n1","n3","n4","n5"]}"#)
            #expect(try await cluster.client("n4").raw(.GET, "/admin/faults").bodyText == #"{"drop":["n2"]}"#)
            try await LocalCluster.waitFor("the others to see n2 down", timeout: .seconds(15)) {
                // (The node rows; the last line says what the session injected.)
                await run("status").split(separator: "\n").filter { !$0.hasPrefix("n2") && !$0.hasPrefix("injected:") }
                    .allSatisfy { $0.contains("n2:down") }
            }
            #expect(await run("status").contains("injected: partition n2 | n1,n3,n4,n5"))
            #expect(await run("heal").contains("healed"))
            #expect(try await cluster.client("n2").raw(.GET, "/admin/faults").bodyText == #"{"drop":[]}"#)
            #expect(!(await run("status").contains("injected:")))

            #expect(await run("stop n3").contains("n3 stopped"))
            #expect(!cluster.isRunning("n3"), "SIGTERM ended the process")
            #expect(await run("stop n3").contains("n3 is not running"), "a second stop says so")
            #expect(await run("kill n3").contains("n3 is not running"))
            try await LocalCluster.waitFor("n3 down for the others", timeout: .seconds(15)) {
                try await cluster.client("n1").status().members.first { $0.name == "n3" }?.status == "down"
            }
            #expect(await run("restart n3").contains("restarting"))
            try await cluster.waitUntilConverged()

            #expect(await run("remove n5").contains("n5 is leaving"))
            try await LocalCluster.waitFor("n5 to hand off and exit", timeout: .seconds(60)) { !cluster.isRunning("n5") }
            let left = cluster.names.filter { $0 != "n5" }
            try await LocalCluster.waitFor("the four left to hold 40 keys three times", timeout: .seconds(30)) {
                try await left.asyncMap { try await cluster.client($0).status().keys }.reduce(0, +) == 120
            }
            for i in 1...40 {
                let read = try await cluster.client("n1").get("item\(i)".bytes)
                #expect(read.values == ["v\(i)".bytes], "item\(i) after n5 left: \(read.status)")
            }
            #expect(await run("remove n9").contains("no node named n9"))
        }
    }

    @Test(.timeLimit(.minutes(3))) func siblingsFromBothSidesOfAPartitionAreResolvedAtThePrompt() async throws {
        try await withCluster(nodes: 5) { cluster in
            let session = ReplSession(cluster: cluster)
            func run(_ line: String) async -> String { await session.run(line).output.joined(separator: "\n") }

            #expect(await run("put cart:ann book").hasPrefix("ok: written via"))
            #expect(await run("get cart:ann").hasPrefix("book"))
            #expect(await run("partition n1,n2 | n3,n4,n5").contains("n1,n2 | n3,n4,n5"))
            #expect(await run("use n1").contains("n1"))
            #expect(await run("put cart:ann pen").hasPrefix("ok"))
            #expect(await run("use n4").contains("n4"))
            #expect(await run("put cart:ann lamp").hasPrefix("ok"))
            #expect(await run("heal").contains("healed"))
            var shown = ""
            // Each side read "book" and wrote over it: two siblings, both descending from it.
            try await LocalCluster.waitFor("two siblings", timeout: .seconds(20)) {
                shown = await run("get cart:ann")
                return shown.contains("2 siblings")
            }
            #expect(shown.contains("[1]") && shown.contains("[2]") && shown.contains("clock"))
            #expect(!shown.contains("book"))
            #expect(session.prompt == "resolve> ")
            // `:` runs a command and leaves the siblings; text that starts like a command is a value.
            #expect(await run(":status").contains("n1:"))
            #expect(session.prompt == "dynamo> ")
            #expect(await run("get cart:ann").contains("2 siblings"))
            #expect(await run("get well soon").hasPrefix("ok"), "written as the merged value")
            #expect(session.prompt == "dynamo> ")
            #expect(await run("get cart:ann").hasPrefix("get well soon"))
            // R and W above N can never be met, and are refused with why.
            #expect(await run("r 7").contains("R 7 is more than the 3 replicas"))
            #expect(await run("w 4").contains("W 4 is more than the 3 replicas"))
            #expect(await run("r 3").contains("R = 3"))
            #expect(await run("r 2").contains("R = 2"))
            // Deleting what is not there says so.
            #expect(await run("delete never:written").contains("nothing to delete"))
            #expect(await run("resolve 1").contains("nothing to resolve"))
            // At `resolve>`, Enter leaves the siblings and a command still runs.
            #expect(await run("use n1").contains("n1"))

            // A key n3 is a home node of, so the put below has to go around it.
            let aroundN3 = try await key("after:kill", homedOn: "n3", in: cluster)
            #expect(await run("kill n3").contains("killed"))
            try await LocalCluster.waitFor("n3 down in status", timeout: .seconds(15)) {
                await run("status").contains("n3:down")
            }
            // The failure is in the nodes' event logs, which the dashboard shows.
            try await LocalCluster.waitFor("a node's event log to tell n3 died", timeout: .seconds(15)) {
                for name in ["n1", "n2", "n4", "n5"] {
                    let events = try await cluster.client(name).events(since: 0).events
                    if events.contains(where: { $0.text.contains("marks n3 down") && !$0.text.contains("partition") }) {
                        return true
                    }
                }
                return false
            }
            // Every node must know n3 is down, or a coordinator would still try it first.
            try await cluster.waitUntilAllSee("n3", as: "down")
            #expect(await run("trace on").contains("on"))
            let traced = await run("put \(aroundN3) yes")
            #expect(traced.hasPrefix("ok"), "\(traced)")
            #expect(traced.contains("trace put \(aroundN3)"), "the diagram: \(traced)")
            // n3 is not asked; a fallback keeps its copy as a hint for it.
            #expect(traced.contains("keeps a hint for n3"), "\(traced)")
            #expect(!traced.contains("→n3"), "n3 is routed around: \(traced)")
            #expect(traced.contains("no part from n3 (down?)"), "\(traced)")
            #expect(await run("restart n3").contains("restarting"))
            #expect(await run("kill n9").contains("no node named n9"))
            #expect(await run("nonsense").contains("unknown command"))
            #expect(await run("help").contains("partition A,B | C,D"))
            #expect(await session.run("quit").quit)
        }
    }
}
