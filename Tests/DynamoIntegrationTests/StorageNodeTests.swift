import DynamoAPI
import DynamoClient
import DynamoCore
import DynamoLauncher
import Foundation
import Testing

/// The storage node's contract, checked against 5 real `dynamo-node` processes over TCP.
@Suite(.serialized) struct StorageNodeTests {
    @Test(.timeLimit(.minutes(3))) func aBinaryValueAndKeyRoundTripThroughEveryNode() async throws {
        try await withCluster { cluster in
            let everyByte = (0...255).map(UInt8.init)
            let put = try await cluster.client("n1").put(everyByte, value: everyByte)
            #expect(put.status == 204)
            for name in cluster.names {
                let result = try await cluster.client(name).raw(.GET, "/kv/\(PercentEncoding.encode(everyByte))")
                #expect(result.status == 200, "via \(name)")
                #expect(result.body == everyByte, "via \(name)")
                #expect(result.header("X-Dynamo-Context") != nil)
                #expect(result.header("X-Dynamo-Coordinator") == name)
                #expect(result.header("X-Dynamo-Replicas")?.split(separator: ",").count ?? 0 >= 2)
            }
        }
    }

    @Test(.timeLimit(.minutes(3))) func nodesAgreeOnThePreferenceListAndExactlyItsNodesHoldTheKey() async throws {
        try await withCluster { cluster in
            for i in 0..<5 {
                let key = "cart:\(i)".bytes
                let put = try await cluster.client(cluster.names[i]).put(key, value: "book".bytes, w: 3)
                #expect(put.status == 204)
                let lists = try await cluster.names.asyncMap { try await cluster.client($0).preferenceList(key) }
                #expect(Set(lists.map(\.preferenceList)).count == 1, "nodes disagree on \(key)")
                let preference = lists[0].preferenceList
                #expect(preference.count == 3)
                #expect(lists[0].hash == RingPosition.of(key: key).hex)
                // Writes are coordinated by a node in the key's top N, wherever they arrive.
                #expect(preference.contains(put.coordinator ?? ""))
                #expect(Set(put.replicas) == Set(preference))
                for name in cluster.names {
                    let local = try await cluster.client(name).local(key)
                    #expect((local != nil) == preference.contains(name), "\(name) holding \(key)")
                }
            }
        }
    }

    @Test(.timeLimit(.minutes(3))) func contextsSupersedeAndBlindWritesBecomeSiblings() async throws {
        try await withCluster { cluster in
            let n1 = cluster.client("n1")
            let n2 = cluster.client("n2")
            // A put with the context of a read leaves one version.
            #expect(try await n1.put("k1".bytes, value: "a".bytes).succeeded)
            let first = try await n2.get("k1".bytes)
            #expect(try await n2.put("k1".bytes, value: "b".bytes, context: first.context).succeeded)
            let single = try await n1.get("k1".bytes)
            #expect(single.status == 200)
            #expect(single.values == ["b".bytes])

            // Two blind puts through one node and a third through another: three siblings.
            for (client, value) in [(n1, "x"), (n1, "y"), (n2, "z")] {
                #expect(try await client.put("k2".bytes, value: value.bytes).succeeded)
            }
            let raw = try await cluster.client("n3").raw(.GET, "/kv/k2")
            #expect(raw.status == 300)
            let siblings = try JSONDecoder().decode(SiblingDocument.self, from: Data(raw.body))
            #expect(Set(siblings.siblings.compactMap(\.bytes)) == Set(["x", "y", "z"].map(\.bytes)))
            #expect(siblings.siblings.allSatisfy { !$0.clock.isEmpty && !$0.deleted })
            #expect(raw.header("X-Dynamo-Context") == siblings.context)
            // Writing with their merged context resolves them into one.
            #expect(try await n2.put("k2".bytes, value: "xyz".bytes, context: siblings.context).succeeded)
            let resolved = try await cluster.client("n4").get("k2".bytes)
            #expect(resolved.status == 200)
            #expect(resolved.values == ["xyz".bytes])
        }
    }

    @Test(.timeLimit(.minutes(3))) func aStaleContextCreatesASiblingInsteadOfOverwriting() async throws {
        try await withCluster { cluster in
            let client = cluster.client("n3")
            #expect(try await client.put("k".bytes, value: "v1".bytes).succeeded)
            let stale = try await client.get("k".bytes).context
            #expect(try await client.put("k".bytes, value: "v2".bytes, context: stale).succeeded)
            #expect(try await client.get("k".bytes).values == ["v2".bytes])
            #expect(try await cluster.client("n5").put("k".bytes, value: "v3".bytes, context: stale).succeeded)
            let result = try await client.get("k".bytes)
            #expect(result.status == 300)
            #expect(Set(result.values) == Set(["v2".bytes, "v3".bytes]))
        }
    }

    @Test(.timeLimit(.minutes(3))) func deleteThenGetIsNotFoundWithATombstoneContext() async throws {
        try await withCluster { cluster in
            let client = cluster.client("n2")
            #expect(try await client.put("gone".bytes, value: "x".bytes).succeeded)
            let context = try await client.get("gone".bytes).context
            let deleted = try await client.delete("gone".bytes, context: context)
            #expect(deleted.status == 204)
            for name in cluster.names {
                let result = try await cluster.client(name).raw(.GET, "/kv/gone")
                #expect(result.status == 404, "via \(name)")
                #expect(result.header("X-Dynamo-Context") != nil, "a tombstone still has a context")
            }
            #expect(try await client.raw(.GET, "/kv/never-written").status == 404)
            #expect(try await client.raw(.GET, "/kv/never-written").header("X-Dynamo-Context") == nil)
        }
    }

    @Test(.timeLimit(.minutes(3))) func badRequestsGetClearErrorsAndNothingIsStored() async throws {
        try await withCluster(nodes: 3) { cluster in
            let client = cluster.client("n1")
            let big = [UInt8](repeating: 7, count: (1 << 20) + 1)
            let tooBig = try await client.raw(.PUT, "/kv/big", body: big)
            #expect(tooBig.status == 413)
            #expect(tooBig.bodyText.contains("limit"))
            let longKey = String(repeating: "k", count: 1025)
            #expect(try await client.raw(.PUT, "/kv/\(longKey)", body: [1]).status == 414)
            #expect(try await client.raw(.GET, "/kv/\(longKey)").status == 414)
            let badContext = try await client.raw(
                .PUT, "/kv/c", headers: [("X-Dynamo-Context", "garbage!!")], body: [1])
            #expect(badContext.status == 400)
            #expect(badContext.bodyText.contains("X-Dynamo-Context"))
            #expect(try await client.raw(.PUT, "/kv/c?w=9", body: [1]).status == 400)
            #expect(try await client.raw(.GET, "/kv/c?r=zero").status == 400)
            #expect(try await client.raw(.GET, "/kv/%zz").status == 400)
            #expect(try await client.raw(.POST, "/kv/c", body: [1]).status == 405)
            #expect(try await client.raw(.GET, "/nope").status == 404)
            // Nothing was stored by any of them; exactly the limit is fine.
            for name in cluster.names { #expect(try await cluster.client(name).status().keys == 0) }
            #expect(try await client.put("max".bytes, value: [UInt8](repeating: 1, count: 1 << 20)).status == 204)
            #expect(try await client.put(Array(repeating: 65, count: 1024), value: [1]).status == 204)
        }
    }

    @Test(.timeLimit(.minutes(3))) func garbageOnThePeerAndHTTPPortsLeavesTheNodeServing() async throws {
        try await withCluster(nodes: 3) { cluster in
            let node = cluster.spec("n1")!
            // Random bytes, a bad handshake, an oversize frame, a truncated frame.
            _ = try rawExchange(port: node.peerPort, bytes: Array("GET / HTTP/1.1\r\n\r\n".utf8))
            _ = try rawExchange(port: node.peerPort, bytes: [0, 0, 0, 9, 1, 0x58, 0x58, 0x58, 0x58, 0, 1, 1, 0x41])
            _ = try rawExchange(port: node.peerPort, bytes: [0x7f, 0xff, 0xff, 0xff, 1, 2, 3])
            _ = try rawExchange(port: node.peerPort, bytes: [0, 0, 1, 0, 2, 1], timeoutMs: 200)
            let answer = try rawExchange(port: node.httpPort, bytes: Array("BLARGH \u{1} nonsense\r\n\r\n".utf8))
            #expect(String(decoding: answer, as: UTF8.self).hasPrefix("HTTP/1.1 400"))
            _ = try rawExchange(port: node.httpPort, bytes: [0xff, 0xfe, 0, 0, 13, 10, 13, 10])
            // Still serving clients and peers.
            #expect(try await cluster.client("n1").put("after".bytes, value: "ok".bytes, w: 3).succeeded)
            #expect(try await cluster.client("n2").get("after".bytes).values == ["ok".bytes])
            try await cluster.waitUntilConverged(timeout: .seconds(5))
        }
    }

    @Test(.timeLimit(.minutes(3))) func aReadRepairsAReplicaThatMissedAWrite() async throws {
        // Hints held back for an hour and no anti-entropy exchange within the test: only a
        // read can repair the replica.
        try await withCluster(configure: {
            $0.extraArguments += ["--hint-interval-ms", "3600000", "--anti-entropy-interval-ms", "3600000"]
        }) { cluster in
            let key = "repair-me".bytes
            let home = try await cluster.client("n1").preferenceList(key).preferenceList
            let victim = home[2]
            let other = cluster.names.first { !home.contains($0) }!
            cluster.stop(victim, .kill)
            let put = try await cluster.client(other).put(key, value: "fresh".bytes, w: 2)
            #expect(put.status == 204)
            #expect(!put.replicas.contains(victim))
            try cluster.launch(victim)
            try await cluster.waitUntilReady(victim)
            #expect(try await cluster.client(victim).local(key) == nil, "the restarted replica missed the write")
            // Without a read nothing repairs it (the hint is held back, no exchange runs).
            try await Task.sleep(for: .seconds(2))
            #expect(try await cluster.client(victim).local(key) == nil, "nothing but a read repairs it")
            // A quorum read answers with the value and repairs the replica that had nothing.
            let read = try await cluster.client(other).get(key, r: 2)
            #expect(read.values == ["fresh".bytes])
            try await LocalCluster.waitFor("read repair of \(victim)", timeout: .seconds(10)) {
                if try await cluster.client(victim).local(key)?.siblings.first?.bytes == "fresh".bytes { return true }
                _ = try await cluster.client(other).get(key, r: 2)  // the repair rides on reads that reach it
                return false
            }
        }
    }

    /// The event log's `since` is an event number: anything else is a 400 that says so.
    @Test(.timeLimit(.minutes(1)))
    func eventsSinceSomethingThatIsNotANumberIsA400() async throws {
        try await withCluster(nodes: 1) { cluster in
            let client = cluster.client("n1")
            for bad in ["abc", "-1", "1.5", "18446744073709551616", ""] {
                let result = try await client.raw(.GET, "/admin/events?since=\(bad)")
                #expect(result.status == 400, "since=\(bad): \(result.status)")
                let error = try JSONDecoder().decode(ErrorDocument.self, from: Data(result.body))
                #expect(error.error.contains("since must be an event number"), "\(error.error)")
            }
            #expect(try await client.raw(.GET, "/admin/events?since=0").status == 200)
            #expect(try await client.raw(.GET, "/admin/events").status == 200, "since defaults to 0")
            #expect(try await client.events(since: UInt64.max).events.isEmpty, "nothing after the newest")
        }
    }

    @Test(.timeLimit(.minutes(3))) func tooFewReplicasIsA503ThatSaysWhatWasMissing() async throws {
        try await withCluster(nodes: 3) { cluster in
            cluster.stop("n2", .kill)
            cluster.stop("n3", .kill)
            let put = try await cluster.client("n1").raw(.PUT, "/kv/lonely", body: "v".bytes)
            #expect(put.status == 503)
            let error = try JSONDecoder().decode(ErrorDocument.self, from: Data(put.body))
            #expect(error.acks == 1)
            #expect(error.required == 2)
            #expect(!error.error.isEmpty, "the 503 says why")
            // Who was asked: comma-separated names (with 3 nodes and N=3 there is no
            // fallback, so no `node>home` entry), n1 among them.
            let asked = try #require(put.header("X-Dynamo-Asked"), "a 503 still says who was asked")
            let names = asked.split(separator: ",").map(String.init)
            #expect(names.contains("n1") && Set(names).isSubset(of: ["n1", "n2", "n3"]), "\(asked)")
            let fields = try #require(try JSONSerialization.jsonObject(with: Data(put.body)) as? [String: Any])
            #expect(Set(fields.keys).isSuperset(of: ["error", "acks", "required"]), "\(fields.keys)")
            #expect(put.header("X-Dynamo-Replicas") == "n1")
            // W=1 is still accepted, and R=2 reads fail the same way while R=1 succeeds.
            #expect(try await cluster.client("n1").put("lonely".bytes, value: "v".bytes, w: 1).status == 204)
            let read = try await cluster.client("n1").raw(.GET, "/kv/lonely")
            #expect(read.status == 503)
            #expect(try JSONDecoder().decode(ErrorDocument.self, from: Data(read.body)).required == 2)
            // A write that got a 503 is not rolled back: it stayed on n1 and is a sibling of the blind W=1 write.
            let local = try await cluster.client("n1").get("lonely".bytes, r: 1)
            #expect(local.status == 300)
            #expect(local.values == ["v".bytes, "v".bytes])
        }
    }

    @Test(.timeLimit(.minutes(1))) func sigtermStopsANodeCleanlyWithExitCodeZero() async throws {
        try await withCluster(nodes: 3) { cluster in
            #expect(try await cluster.client("n2").put("before-stop".bytes, value: [1], w: 3).succeeded)
            #expect(cluster.stop("n2", .graceful) == 0)
            try cluster.launch("n2")
            try await cluster.waitUntilConverged()
            #expect(try await cluster.client("n2").local("before-stop".bytes) != nil)
        }
    }

    @Test(.timeLimit(.minutes(3))) func theNodeRefusesBadStartsWithAOneLineReason() async throws {
        guard let binary = LocalCluster.siblingBinary() else { throw LauncherError("dynamo-node not built") }
        try await withCluster(nodes: 1) { cluster in
            let taken = cluster.spec("n1")!
            let free = try LocalCluster.freePorts(2)
            let cases: [(String, [String])] = [
                (
                    "port in use",
                    [
                        "--name", "x", "--peer-port", "\(taken.peerPort)", "--http-port", "\(free[0])", "--data-dir",
                        cluster.root + "/x",
                    ]
                ),
                (
                    "bad flag",
                    [
                        "--name", "x", "--peer-port", "\(free[0])", "--http-port", "\(free[1])", "--data-dir",
                        cluster.root + "/y", "--r", "7",
                    ]
                ),
                (
                    "another node's data dir",
                    [
                        "--name", "intruder", "--peer-port", "\(free[0])", "--http-port", "\(free[1])", "--data-dir",
                        taken.dataDir,
                    ]
                ),
            ]
            for (what, arguments) in cases {
                let (status, message) = try runNodeToExit(binary, arguments)
                #expect(status != 0, "\(what) must fail")
                // (A port in use once trapped in debug builds: a promise leaked on the way out.)
                if what == "port in use" { #expect(status == 1 && message.contains("cannot listen"), "\(message)") }
                #expect(!message.isEmpty, "\(what) must say why")
            }
            // The running node was not disturbed.
            #expect(try await cluster.client("n1").status().node == "n1")
        }
    }

    @Test(.timeLimit(.minutes(3))) func acknowledgedWritesSurviveKillNineOfEveryNode() async throws {
        try await withCluster { cluster in
            var written: [(key: [UInt8], value: [UInt8])] = []
            for i in 0..<150 {
                let key = "durable-\(i)".bytes
                let value = "value-\(i)-\(String(repeating: "z", count: i % 17))".bytes
                let result = try await cluster.client(cluster.names[i % 5]).put(key, value: value)
                #expect(result.succeeded)
                if result.succeeded { written.append((key, value)) }
            }
            // W=2 answers before the third replica lands; wait for all of them, then crash everyone.
            try await LocalCluster.waitFor("all 450 replicas to land", timeout: .seconds(10)) {
                try await cluster.names.asyncMap { try await cluster.client($0).status().keys }.reduce(0, +) == 450
            }
            for name in cluster.names { cluster.stop(name, .kill) }
            for name in cluster.names { try cluster.launch(name) }
            try await cluster.waitUntilConverged()
            for (i, entry) in written.enumerated() {
                let result = try await cluster.client(cluster.names[(i + 2) % 5]).get(entry.key)
                #expect(result.status == 200, "\(String(decoding: entry.key, as: UTF8.self)) after kill -9")
                #expect(result.values == [entry.value])
            }
            let keys = try await cluster.names.asyncMap { try await cluster.client($0).status().keys }
            #expect(keys.reduce(0, +) == 150 * 3, "every key on exactly N=3 nodes after restart: \(keys)")
        }
    }
}

extension StorageNodeTests {
    /// Writes still streaming in when every node is killed at once: each write that was
    /// acknowledged is there after the restart, since it reached the logs of W replicas
    /// before the answer (`kill -9` keeps what reached the log; what fsync adds against a
    /// power loss is the simulator's to show). Unlike the test above, nothing waits for
    /// replicas to catch up first.
    @Test(.timeLimit(.minutes(2)))
    func writesAcknowledgedJustBeforeEveryNodeIsKilledSurvive() async throws {
        try await withCluster { cluster in
            actor Acks {
                var values: [[UInt8]: [UInt8]] = [:]
                func add(_ key: [UInt8], _ value: [UInt8]) { values[key] = value }
            }
            let acks = Acks()
            let names = cluster.names
            let writers = (0..<4).map { writer in
                Task {
                    var i = 0
                    while !Task.isCancelled {
                        i += 1
                        let key = "last-\(writer)-\(i)".bytes
                        let value = "v\(writer)-\(i)".bytes
                        guard let result = try? await cluster.client(names[(writer + i) % names.count]).put(key, value: value)
                        else { continue }
                        if result.succeeded { await acks.add(key, value) }
                    }
                }
            }
            try await LocalCluster.waitFor("writes flowing", timeout: .seconds(20)) { await acks.values.count >= 100 }
            // Every node at once, mid-stream. An acknowledgement that arrives after the kill
            // was sent before it: every acknowledged write counts.
            let pids = names.compactMap { cluster.processID($0) }
            for pid in pids { kill(pid, SIGKILL) }
            for writer in writers { writer.cancel() }
            for writer in writers { await writer.value }
            let acknowledged = await acks.values
            for name in names { cluster.stop(name, .kill) }
            for name in names { try cluster.launch(name) }
            try await cluster.waitUntilConverged()
            var missing: [String] = []
            for (i, (key, value)) in acknowledged.enumerated() {
                let read = try await cluster.client(names[i % names.count]).get(key)
                if !read.values.contains(value) { missing.append(String(decoding: key, as: UTF8.self)) }
            }
            #expect(missing.isEmpty, "\(missing.count) of \(acknowledged.count) acknowledged writes lost: \(missing.prefix(10))")
        }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
