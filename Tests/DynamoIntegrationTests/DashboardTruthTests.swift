import DynamoAPI
import DynamoClient
import DynamoConsole
import DynamoCore
import DynamoLauncher
import Foundation
import Testing

/// The dashboard's figures against the truth, on a real cluster driven through writes, a
/// join and a kill: the console's own poller (`ClusterWatcher`) feeds the model, the view
/// draws it, and each figure read off the drawn screen is compared with what the written
/// keys' preference lists say each node must hold, and with the nodes' own reports.
@Suite(.serialized) struct DashboardTruthTests {
    /// One node-table row, split into its columns.
    struct Row {
        var state: String
        var home: String
        var keys: String
        var hints: String
    }

    static func rows(_ watcher: ClusterWatcher) async -> (rows: [String: Row], text: String) {
        await watcher.poll()
        let lines = DashboardView.render(watcher.model, output: [], width: 140, height: 44).lines
        var rows: [String: Row] = [:]
        for line in lines where line.contains("%") || line.contains(" DOWN ") {
            // "│ n1    up        8  60%    412      0 ..." (the nodes panel is right of the ring).
            guard let start = line.range(of: "││ ")?.upperBound else { continue }
            let cells = line[start...].split(separator: " ").map(String.init)
            guard cells.count >= 6, cells[0].hasPrefix("n") else { continue }
            rows[cells[0]] = Row(state: cells[1], home: cells[3], keys: cells[4], hints: cells[5])
        }
        return (rows, lines.joined(separator: "\n"))
    }

    /// For each node, the written keys it is one of the 3 home nodes of.
    static func homed(_ keys: [[UInt8]], in cluster: LocalCluster, asking node: String) async throws
        -> [String: Int]
    {
        var counts: [String: Int] = [:]
        for key in keys {
            for home in try await cluster.client(node).preferenceList(key).preferenceList.prefix(3) {
                counts[home, default: 0] += 1
            }
        }
        return counts
    }

    @Test(.timeLimit(.minutes(4))) func everyFigureOnTheDashboardMatchesTheNodes() async throws {
        try await withCluster(nodes: 5, configure: { $0.extraArguments = ["--hint-interval-ms", "3600000"] }) {
            cluster in
            let watcher = ClusterWatcher(cluster: cluster)
            var keys = (0..<150).map { "truth:\($0)".bytes }
            for key in keys { #expect(try await cluster.client("n1").put(key, value: [1], w: 3).succeeded) }

            // A sixth node joins: its join event counts the keys it holds, which are the keys
            // it is a home node of.
            try cluster.addNode(name: "n6")
            try cluster.launch("n6")
            try await cluster.waitUntilAllSee("n6", as: "up", timeout: .seconds(30))
            var expected: [String: Int] = [:]
            try await LocalCluster.waitFor("every node to hold exactly its keys", timeout: .seconds(30)) {
                expected = try await Self.homed(keys, in: cluster, asking: "n1")
                for name in cluster.names where try await cluster.client(name).status().keys != expected[name] ?? 0 {
                    return false
                }
                return true
            }
            let joined = try await cluster.client("n6").events(since: 0).events.first { $0.kind == "joined" }
            #expect(joined?.count == expected["n6"], "n6 says it took the keys it holds")

            // Keys and home shares as drawn.
            var (rows, _) = await Self.rows(watcher)
            #expect(rows.count == 6)
            let status = try await cluster.client("n1").status()
            let ring = Ring(
                nodes: Dictionary(
                    uniqueKeysWithValues: status.members.map { ($0.name, $0.tokens.compactMap(RingPosition.init(hex:))) }
                ))
            for name in cluster.names {
                #expect(rows[name]?.keys == "\(expected[name] ?? 0)", "keys of \(name)")
                // The home share drawn is the ring's; the written keys fall within sampling error of it.
                let drawn = Double(rows[name]?.home.dropLast() ?? "") ?? -1
                #expect(abs(drawn - (ring.homeShare(n: 3)[name] ?? 0) * 100) <= 0.5, "home share of \(name)")
                let sampled = Double(expected[name] ?? 0) / Double(keys.count) * 100
                #expect(abs(drawn - sampled) < 20, "\(name): drawn \(drawn)%, \(sampled)% of the keys")
            }

            // n3 dies: every write of a key n3 is a home node of leaves one hint for it.
            cluster.stop("n3", .kill)
            try await cluster.waitUntilAllSee("n3", as: "down")
            let hinted = (0..<60).map { "hinted:\($0)".bytes }
            for key in hinted { #expect(try await cluster.client("n1").put(key, value: [2], w: 2).succeeded) }
            keys += hinted
            let forN3 = try await Self.homed(hinted, in: cluster, asking: "n1")["n3"] ?? 0
            #expect(forN3 > 0)
            var byHolder: [String: Int] = [:]
            var text = ""
            try await LocalCluster.waitFor("the drawn hints to settle", timeout: .seconds(20)) {
                byHolder = [:]
                for name in cluster.names where name != "n3" {
                    let count = try await cluster.client(name).status().hints.byTarget["n3"] ?? 0
                    if count > 0 { byHolder[name] = count }
                }
                (rows, text) = await Self.rows(watcher)
                return byHolder.values.reduce(0, +) == forN3
                    && byHolder.allSatisfy { text.contains("\($0.key)→n3 \($0.value)") }
            }
            #expect(byHolder.values.reduce(0, +) == forN3, "one hint per write homed on n3")
            #expect(rows["n3"]?.state == "DOWN")
            for (holder, count) in byHolder {
                #expect(rows[holder]?.hints == "\(count)→n3", "\(holder)'s hints as drawn")
                #expect(text.contains("\(holder)→n3 \(count)"))
            }
            // Live nodes still hold exactly their keys (hints are kept apart).
            expected = try await Self.homed(keys, in: cluster, asking: "n1")
            for name in cluster.names where name != "n3" {
                #expect(rows[name]?.keys == "\(expected[name] ?? 0)", "keys of \(name) with n3 down")
            }
        }
    }
}
