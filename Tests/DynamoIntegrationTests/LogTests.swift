import DynamoClient
import DynamoLauncher
import Foundation
import Testing

/// `--log-format json` and `X-Dynamo-Request-Id`: one request followed across two nodes'
/// logs.
@Suite(.serialized) struct LogTests {
    static func jsonLines(_ cluster: LocalCluster, _ node: String) throws -> [[String: String]] {
        let directory = try #require(cluster.options.logDirectory)
        let text = try String(contentsOfFile: "\(directory)/\(node).log", encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
            return try #require(object as? [String: String], "a log line that is not a flat JSON object: \(line)")
        }
    }

    @Test(.timeLimit(.minutes(3))) func aForwardedWriteIsLoggedUnderItsRequestIdOnBothNodes() async throws {
        try await withCluster(nodes: 4, configure: { $0.extraArguments = ["--log-format", "json", "--log-level", "debug"] }) {
            cluster in
            let n1 = cluster.client("n1")
            var key = ""
            for i in 0..<1000 {
                key = "logged:\(i)"
                if try await !n1.preferenceList(Array(key.utf8)).preferenceList.prefix(3).contains("n1") { break }
            }
            let put = try await n1.raw(
                .PUT, "/kv/\(key)", headers: [("X-Dynamo-Request-Id", "cart-checkout-42")], body: Array("v".utf8))
            #expect(put.status == 204)
            #expect(put.header("X-Dynamo-Request-Id") == "cart-checkout-42")
            let coordinator = try #require(put.header("X-Dynamo-Coordinator"))
            #expect(coordinator != "n1", "forwarded to a home node")
            // An id that is not safe in a log line is replaced by one the node makes.
            let bad = try await n1.raw(.GET, "/kv/\(key)", headers: [("X-Dynamo-Request-Id", "two words")])
            let made = try #require(bad.header("X-Dynamo-Request-Id"))
            #expect(made.hasPrefix("n1-"))
            let missing = try await n1.raw(.GET, "/kv/no%20such%20key")
            #expect(missing.status == 404 && missing.header("X-Dynamo-Request-Id")?.hasPrefix("n1-") == true)

            try await LocalCluster.waitFor("both nodes to log the request", timeout: .seconds(10)) {
                let here = try Self.jsonLines(cluster, "n1").filter { $0["request_id"] == "cart-checkout-42" }
                let there = try Self.jsonLines(cluster, coordinator).filter { $0["request_id"] == "cart-checkout-42" }
                return !here.isEmpty && !there.isEmpty
            }
            for node in ["n1", coordinator] {
                let lines = try Self.jsonLines(cluster, node)
                #expect(lines.allSatisfy { $0["node"] == node && $0["time"] != nil && $0["level"] != nil })
            }
            let coordinated = try Self.jsonLines(cluster, coordinator).first { $0["request_id"] == "cart-checkout-42" }
            #expect(coordinated?["message"]?.contains("forwarded by n1") == true, "\(coordinated ?? [:])")
        }
    }
}
