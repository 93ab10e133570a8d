import DynamoAPI
import DynamoCore
import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing

@testable import DynamoNode

/// `--log-format json` lines and request ids: what a log shipper and a log line can take.
@Suite struct LogFormatTests {
    @Test func everyLineIsOneFlatJSONObjectWithItsFieldsEscaped() throws {
        let lines = NIOLockedValueBox<[String]>([])
        var handler = JSONLogHandler(label: "dynamo-node.n1", node: "n1") { line in lines.withLockedValue { $0.append(line) } }
        handler.logLevel = .debug
        handler[metadataKey: "request_id"] = "r-1"
        let logger = Logger(label: "dynamo-node.n1") { _ in handler }
        logger.info("a \"quoted\" key\nwith a newline, a \\ and a \u{01}", metadata: ["peer": "n2", "message": "not this"])
        logger.trace("below the level")
        let written = lines.withLockedValue { $0 }
        try #require(written.count == 1)
        #expect(written[0].hasSuffix("\n") && written[0].dropLast().contains("\n") == false)
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(written[0].utf8)) as? [String: String])
        #expect(object["message"] == "a \"quoted\" key\nwith a newline, a \\ and a \u{01}")
        #expect(object["level"] == "info" && object["node"] == "n1" && object["logger"] == "dynamo-node.n1")
        #expect(object["request_id"] == "r-1" && object["peer"] == "n2")
        let time = try #require(object["time"])
        #expect(time.count == 24 && time.hasSuffix("Z") && time.contains("T"), "\(time)")
    }

    @Test func requestIdsAreLogSafe() {
        #expect(ForwardedPut.isValid(requestId: "cart-checkout-42") && ForwardedPut.isValid(requestId: "n1-a2920f-1") && ForwardedPut.isValid(requestId: "a.b:c_d"))
        for bad in ["", "two words", "line\nbreak", "quote\"", String(repeating: "a", count: 65), "é"] {
            #expect(!ForwardedPut.isValid(requestId: bad), "\(bad.debugDescription)")
        }
    }
}

/// `/metrics` stays bounded as nodes come and go.
@Suite struct NodeMetricsTests {
    @Test func seriesOfNodesNoLongerMembersGo() {
        let metrics = NodeMetrics()
        metrics.hintStored(for: "gone")
        metrics.hintStored(for: "n2")
        metrics.observe(.readRepair(key: [1], peer: "gone"))
        let before = String(decoding: NodeMetrics.render(metrics.registry), as: UTF8.self)
        #expect(before.contains(#"target="gone""#) && before.contains(#"peer="gone""#))
        metrics.forgetNodes(keeping: ["n1", "n2"])
        let after = String(decoding: NodeMetrics.render(metrics.registry), as: UTF8.self)
        #expect(!after.contains("gone"), "\(after)")
        #expect(after.contains(#"dynamo_hints_stored_total{target="n2"} 1"#))
        #expect(after.contains("# HELP dynamo_hints_stored_total "))
    }
}
