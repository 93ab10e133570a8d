import DynamoAPI
import DynamoClient
import DynamoCore
import DynamoLauncher
import Foundation
import NIOCore
import Testing

/// Issue 10, items 6 and 7, on real nodes: a hot key cannot take siblings or bytes without
/// end. Writes past the limits are refused with a 409 that says how to resolve the key,
/// the key stays readable, resolving it makes it writable again, and the status lists it.
@Suite struct ObjectLimitTests {
    static func errorDocument(_ result: HTTPResult) -> ErrorDocument? {
        try? JSONDecoder().decode(ErrorDocument.self, from: Data(result.body))
    }

    /// Before: 10,001 blind writes all got 204, then every operation on the key 503. With
    /// `--max-siblings 5` the sixth is refused, on its coordinator and when forwarded to it.
    @Test(.timeLimit(.minutes(3))) func blindWritesPastTheSiblingLimitAreRefusedUntilTheKeyIsResolved() async throws {
        try await withCluster(
            nodes: 4, configure: { $0.extraArguments = ["--max-siblings", "5", "--warn-siblings", "3"] }
        ) {
            cluster in
            let key = "cart".bytes
            let homes = try await cluster.client("n1").preferenceList(key).preferenceList
            let home = cluster.client(homes[0])
            let stranger = cluster.client(cluster.names.first { !homes.contains($0) }!)
            for i in 1...5 {
                let put = try await home.put(key, value: "item\(i)".bytes)
                #expect(put.status == 204, "blind write \(i): \(put.error ?? "")")
                if i == 3 {
                    // At the warning the key is listed, not refused.
                    let listed = try await home.status().objects?.nearLimits.first { $0.key == "cart" }
                    #expect(listed?.siblings == 3 && listed?.refused == false, "\(String(describing: listed))")
                }
            }
            // The sixth, forwarded by a node that is not one of its homes, and sent directly.
            for client in [stranger, home] {
                let refused = try await client.raw(.PUT, "/kv/cart", body: "item6".bytes)
                #expect(refused.status == 409, "\(refused.status) \(refused.bodyText)")
                let document = try #require(Self.errorDocument(refused))
                #expect(document.error.contains("key \"cart\" has 5 siblings"), "\(document.error)")
                #expect(document.error.contains("over the limit of 5 (--max-siblings)"), "\(document.error)")
                #expect(document.error.contains("X-Dynamo-Context"), "\(document.error)")
                #expect(document.limit == "max-siblings" && document.maximum == 5)
                #expect(document.key == "cart" && document.siblings == 5)
                #expect(homes.contains(refused.header("X-Dynamo-Coordinator") ?? ""), "refused by a home node")
            }
            // Never stored anywhere, and the key stays readable.
            for name in homes {
                #expect((try await cluster.client(name).local(key))?.siblings.count ?? 0 <= 5, "\(name)")
            }
            let read = try await home.get(key)
            #expect(read.status == 300)
            #expect(read.values.count == 5)
            // The coordinator's status names the key and the refusals.
            let objects = try #require(try await home.status().objects)
            #expect(objects.maxSiblings == 5 && objects.warnSiblings == 3)
            #expect(objects.writesRefused >= 1)
            let listed = objects.nearLimits.first { $0.key == "cart" }
            #expect(listed?.refused == true && listed?.siblings == 5, "\(objects.nearLimits)")
            // A write with the read's context resolves the siblings; blind writes work again.
            let resolved = try await stranger.put(key, value: "merged".bytes, context: read.context)
            #expect(resolved.status == 204, "\(resolved.error ?? "")")
            #expect(try await home.get(key).values == ["merged".bytes])
            #expect(try await home.put(key, value: "again".bytes).status == 204)
            #expect(try await home.get(key).values.count == 2)
        }
    }

    /// Before: twenty blind 1 MiB writes all got 204 and pushed the key past the 16 MiB peer
    /// frame; every read then got 503 and broke the link other requests shared (120 of 200
    /// unrelated W=3 writes failed). With the default 12 MiB limit the twelfth is refused,
    /// the key is read whole, and unrelated writes go on (but see the known issue below).
    @Test(.timeLimit(.minutes(3))) func anObjectPastTheSizeLimitIsRefusedAndStaysReadable() async throws {
        try await withCluster(nodes: 3, configure: { $0.requestTimeoutMs = 5_000 }) { cluster in
            let key = "big".bytes
            let client = cluster.client("n1")
            let value = [UInt8](repeating: 0x62, count: 1 << 20)
            var accepted = 0
            var refusal: HTTPResult?
            for _ in 0..<14 {
                let result = try await client.raw(.PUT, "/kv/big", body: value, timeout: Self.slow)
                if result.status == 204 {
                    accepted += 1
                } else {
                    refusal = result
                    break
                }
            }
            // Each version is 1 MiB and 15 bytes of dot, clock and lengths: 11 fit in 12 MiB.
            #expect(accepted == 11)
            let refused = try #require(refusal)
            #expect(refused.status == 409, "\(refused.status) \(refused.bodyText)")
            let document = try #require(Self.errorDocument(refused))
            #expect(document.limit == "max-object-bytes" && document.maximum == 12 << 20)
            #expect(document.error.contains("key \"big\" holds"), "\(document.error)")
            #expect(document.error.contains("(--max-object-bytes)"), "\(document.error)")
            #expect(document.siblings == 11)
            // Readable with the default quorum, from every node, while unrelated W=3 writes go on.
            async let reads = Self.read(key, times: 6, from: cluster)
            var failed: [String] = []
            for i in 0..<30 {
                let write = try await cluster.client("n2").put("other\(i)".bytes, value: "v".bytes, w: 3, timeout: Self.slow)
                if !write.succeeded { failed.append("\(write.status) \(write.error ?? "") (acks \(write.replicas))") }
            }
            for read in try await reads {
                #expect(read.status == 300 && read.values.count == 11, "\(read.status) \(read.error ?? "")")
            }
            expectUnrelatedWritesGoOn(failed, of: 30)
            let listed = try await client.status(timeout: Self.slow).objects?.nearLimits.first { $0.key == "big" }
            #expect(listed?.refused == true && (listed?.bytes ?? 0) > 5 << 20, "\(String(describing: listed))")
            // Resolved with a read's context, it takes large values again.
            let read = try await client.get(key, timeout: Self.slow)
            #expect(try await client.put(key, value: "small".bytes, context: read.context, timeout: Self.slow).status == 204)
            #expect(try await client.put(key, value: value, timeout: Self.slow).status == 204)
        }
    }

    /// Reads `key` `times` times, from each node in turn.
    /// The client's wait in the big-object test: well past the nodes' 5 s request timeout,
    /// so a slow debug node's answer is awaited, not mistaken for none.
    static let slow = TimeAmount.seconds(60)

    static func read(_ key: [UInt8], times: Int, from cluster: LocalCluster) async throws -> [ReadResult] {
        var results: [ReadResult] = []
        for i in 0..<times {
            results.append(try await cluster.client(cluster.names[i % cluster.names.count]).get(key, timeout: slow))
        }
        return results
    }

    @Test(.timeLimit(.minutes(3))) func badLimitFlagsAreRefusedWithTheReason() throws {
        guard let binary = LocalCluster.siblingBinary() else { throw LauncherError("dynamo-node not built") }
        let base = ["--name", "x", "--peer-port", "1", "--http-port", "2", "--data-dir", "/nonexistent"]
        let cases: [([String], String)] = [
            (["--max-siblings", "0"], "--max-siblings must be between 1 and 1000"),
            (["--max-siblings", "5", "--warn-siblings", "6"], "--warn-siblings"),
            (["--max-object-bytes", "\(16 << 20)"], "a peer frame carries"),
            (["--max-object-bytes", "65536"], "--max-value-bytes"),
            (
                ["--max-object-bytes", "65536", "--max-value-bytes", "16384", "--warn-object-bytes", "70000"],
                "--warn-object-bytes"
            ),
        ]
        for (flags, reason) in cases {
            let (status, message) = try runNodeToExit(binary, base + flags)
            #expect(status != 0, "\(flags) must be refused")
            #expect(message.contains(reason), "\(flags): \(message)")
        }
    }
}
