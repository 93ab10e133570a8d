import DynamoAPI
import DynamoClient
import DynamoLauncher
import Foundation
import Testing

/// `GET /metrics` on real nodes: strict Prometheus text whose counters match what a driven
/// workload did, and agree with the node's own status and events.
@Suite(.serialized) struct MetricsTests {
    static func scrape(_ cluster: LocalCluster, _ node: String) async throws -> PrometheusText {
        let text = try await cluster.client(node).metrics()
        do {
            return try PrometheusText(text)
        } catch {
            Issue.record("\(node)'s /metrics is not Prometheus text: \(error)\n\(text)")
            throw error
        }
    }

    @Test(.timeLimit(.minutes(3))) func countersMatchADrivenWorkload() async throws {
        try await withCluster(nodes: 4, configure: FailureHandlingTests.fastHints) { cluster in
            let n1 = cluster.client("n1")
            // Keys n1 coordinates itself (it is among their home nodes), so every one of
            // these requests is counted once at n1 and coordinated there.
            var keys: [[UInt8]] = []
            for i in 0..<400 where keys.count < 20 {
                let key = "metrics:\(i)".bytes
                if try await n1.preferenceList(key).preferenceList.prefix(3).contains("n1") { keys.append(key) }
            }
            for key in keys { #expect(try await n1.put(key, value: "v".bytes).status == 204) }
            for key in keys.prefix(10) { #expect(try await n1.get(key).status == 200) }
            for i in 0..<3 { #expect(try await n1.get("metrics:missing:\(i)".bytes).status == 404) }
            for key in keys.suffix(2) { #expect(try await n1.delete(key).status == 204) }
            for _ in 0..<2 { #expect(try await n1.raw(.PUT, "/kv/%ZZ", body: "x".bytes).status == 400) }
            // Refused by the connection before the node sees it, yet counted and named.
            let tooLarge = try await n1.raw(.PUT, "/kv/big", body: [UInt8](repeating: 1, count: 1_100_000))
            #expect(tooLarge.status == 413)
            #expect(tooLarge.header("X-Dynamo-Request-Id")?.hasPrefix("n1-") == true)

            let before = try await n1.status()
            let metrics = try await Self.scrape(cluster, "n1")
            let after = try await n1.status()
            func requests(_ op: String, _ outcome: String) -> Double? {
                metrics.value("dynamo_requests_total", ["op": op, "outcome": outcome])
            }
            #expect(requests("put", "ok") == 20)
            #expect(requests("get", "ok") == 10)
            #expect(requests("get", "not_found") == 3)
            #expect(requests("delete", "ok") == 2)
            #expect(requests("put", "bad_request") == 3)
            #expect(metrics.sum("dynamo_requests_total") == 38)
            // The status counts the same requests (bad ones reached no coordinator).
            #expect(after.requests?.gets == 13 && after.requests?.writes == 22)
            #expect(metrics.value("dynamo_request_duration_seconds_count", ["op": "put"]) == 20)
            #expect(metrics.value("dynamo_request_duration_seconds_count", ["op": "get"]) == 13)
            #expect(metrics.value("dynamo_coordination_duration_seconds_count", ["op": "write"]) == 22)
            #expect(metrics.value("dynamo_coordination_duration_seconds_count", ["op": "get"]) == 13)
            #expect(metrics.value("dynamo_read_siblings_count") == 10, "the 10 reads that found a value")
            // Each write went to the key's two other home nodes, every one answered.
            let sent = metrics.sum("dynamo_replica_requests_sent_total")
            #expect(sent >= 44)
            #expect(sent == metrics.sum("dynamo_replica_requests_answered_total"))
            #expect(metrics.sum("dynamo_replica_requests_timed_out_total") == 0)
            #expect(metrics.value("dynamo_members", ["status": "up"]) == 4)
            #expect(metrics.value("dynamo_members", ["status": "down"]) == 0)
            #expect((metrics.value("dynamo_gossip_rounds_total") ?? 0) > 0)
            let keysStored = try #require(metrics.value("dynamo_storage_keys"))
            #expect(Double(before.keys) <= keysStored + 2 && keysStored <= Double(after.keys) + 2)
            #expect((metrics.value("dynamo_storage_syncs_total") ?? 0) >= 22, "every coordinated write synced")
            let exchanges = try #require(metrics.value("dynamo_anti_entropy_exchanges_total"))
            #expect(Double(before.antiEntropy?.exchanges ?? 0) <= exchanges)
            #expect(exchanges <= Double(after.antiEntropy?.exchanges ?? 0))
            for peer in ["n2", "n3", "n4"] { #expect(metrics.value("dynamo_peer_phi", ["peer": peer]) != nil) }
            #expect(metrics.types["dynamo_requests_total"] == "counter")
            #expect(metrics.types["dynamo_request_duration_seconds"] == "histogram")
            #expect(metrics.help["dynamo_requests_total"]?.isEmpty == false)
        }
    }

    /// Hints kept by a fallback while a home node is down, delivered when it is back: the
    /// fallback's counters and gauges follow, and its delivered count is the status's.
    @Test(.timeLimit(.minutes(3))) func hintsAndMembersFollowAHomeNodeDownAndBack() async throws {
        try await withCluster(nodes: 4, configure: FailureHandlingTests.fastHints) { cluster in
            let n1 = cluster.client("n1")
            var keys: [[UInt8]] = []
            for i in 0..<1000 where keys.count < 5 {
                let key = "hinted:\(i)".bytes
                let home = try await n1.preferenceList(key).preferenceList
                if Array(home.prefix(3)).sorted() == ["n1", "n2", "n3"] { keys.append(key) }
            }
            try #require(keys.count == 5)
            cluster.stop("n3", .kill)
            try await cluster.waitUntilAllSee("n3", as: "down")
            for key in keys { #expect(try await n1.put(key, value: "while n3 was down".bytes, w: 3).status == 204) }
            // n4 stood in for n3.
            let held = try await Self.scrape(cluster, "n4")
            #expect(held.value("dynamo_hints_stored_total", ["target": "n3"]) == 5)
            #expect(held.value("dynamo_hints_pending", ["target": "n3"]) == 5)
            #expect(held.value("dynamo_members", ["status": "down"]) == 1)
            #expect(try await Self.scrape(cluster, "n1").value("dynamo_members", ["status": "down"]) == 1)

            try cluster.launch("n3")
            try await LocalCluster.waitFor("n4 to deliver its hints", timeout: .seconds(30)) {
                try await cluster.client("n4").status().hints.pending == 0
            }
            let delivered = try await Self.scrape(cluster, "n4")
            #expect(delivered.value("dynamo_hints_delivered_total", ["target": "n3"]) == 5)
            #expect(delivered.value("dynamo_hints_pending", ["target": "n3"]) == nil, "no stale gauge")
            let status = try await cluster.client("n4").status()
            #expect(status.hints.delivered?["n3"] == 5)
            // Read repairs as counted match the node's own events.
            let events = try await n1.events(since: 0).events.filter { $0.kind == "read-repair" }.count
            #expect(try await Self.scrape(cluster, "n1").sum("dynamo_read_repairs_total") == Double(events))
        }
    }

    /// The strict reader refuses what the format does not allow (so the checks above mean
    /// something).
    @Test func theReaderIsStrict() throws {
        let good = """
            # HELP a_total A counter with a \\\\ and a \\n.
            # TYPE a_total counter
            a_total{x="1",y="q\\"uote"} 3
            a_total{x="2"} 4 1700000000000
            # TYPE h histogram
            h_bucket{le="0.5"} 1
            h_bucket{le="+Inf"} 2
            h_sum 0.7
            h_count 2
            g NaN

            """
        let parsed = try PrometheusText(good)
        #expect(parsed.value("a_total", ["x": "1", "y": "q\"uote"]) == 3)
        #expect(parsed.help["a_total"] == "A counter with a \\ and a \n.")
        let bad = [
            "a 1",  // no final newline
            "1a 1\n",  // bad name
            "a{1x=\"v\"} 1\n",  // bad label name
            "a{x=\"v} 1\n",  // unterminated value
            "a{x=\"\\t\"} 1\n",  // unknown escape
            "a one\n",  // not a float
            "a 1 2.5\n",  // bad timestamp
            "a 1\nb 1\na 2\n",  // a's samples not in one group
            "a 1\na 1\n",  // duplicate series
            "# TYPE a counter\n# TYPE a gauge\na 1\n",  // two TYPEs
            "a 1\n# TYPE a counter\n",  // TYPE after samples
            "# TYPE a counter\na -1\n",  // negative counter
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",  // no +Inf
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",  // goes down
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",  // count differs
        ]
        for text in bad {
            #expect(throws: PrometheusText.ParseError.self, "\(text.debugDescription)") { try PrometheusText(text) }
        }
    }
}
