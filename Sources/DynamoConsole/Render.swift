public import DynamoAPI
public import DynamoClient
import DynamoCore

/// Text for people.
public enum Render {
    public static func read(_ result: ReadResult) -> String {
        let via = "via \(result.coordinator ?? "?") (replies \(result.replicas.joined(separator: " ")))"
        switch result.status {
        case 200:
            let value = result.document?.siblings.first?.bytes ?? []
            // Its clock too: a class sees a resolved value descend from both siblings.
            let clockText = result.document?.siblings.first.map { ", clock \(clock($0.clock))" } ?? ""
            return "\(printable(value))\n\(via)\(clockText), context \(result.context ?? "-")"
        case 300:
            var lines = ["\(result.document?.siblings.count ?? 0) siblings (context \(result.context ?? "-")):"]
            for (i, sibling) in (result.document?.siblings ?? []).enumerated() {
                let value = sibling.deleted ? "<deleted>" : printable(sibling.bytes ?? [])
                let dot = sibling.dot.map { "  (written as \($0))" } ?? ""
                lines.append("  [\(i + 1)] \(value)    clock \(clock(sibling.clock))\(dot)")
            }
            lines.append(via)
            return lines.joined(separator: "\n")
        case 404:
            return result.context == nil ? "not found \(via)" : "deleted (context \(result.context!)) \(via)"
        default:
            return "error \(result.status): \(result.error ?? "")"
        }
    }

    public static func write(_ result: WriteResponse) -> String {
        if result.succeeded {
            return
                "ok: written via \(result.coordinator ?? "?") (acks \(result.replicas.joined(separator: " ")))\ncontext \(result.context ?? "-")"
        }
        return "error \(result.status): \(result.error ?? "")"
    }

    /// `trace: asked n1 n2 n5 (hint for n3) · answered n1 n5`: who the coordinator asked,
    /// fallbacks with the node they stand in for, and who answered in time.
    public static func trace(asked: [String], answered: [String], verb: String) -> String {
        // Each entry is `node` or `fallback>home`.
        let replicas = asked.map { $0.split(separator: ">", maxSplits: 1).map(String.init) }
        let askedText = replicas.map { $0.count == 2 ? "\($0[0]) (fallback, hint for \($0[1]))" : $0[0] }
        let missing = replicas.map { $0[0] }.filter { !answered.contains($0) }
        var text = "trace: asked \(askedText.joined(separator: " ")) · \(verb) \(answered.joined(separator: " "))"
        if !missing.isEmpty {
            text += " · not waited for: \(missing.joined(separator: " ")) (quorum met, or no answer)"
        }
        return text
    }

    /// The request step by step, as cqlsh's TRACING shows a query: for each replica when it
    /// was sent its part and when it answered (ms since the coordinator took the request),
    /// a fallback with the home node it stands in for, and those not waited for (the
    /// quorum was met first) or that never answered (the request timed out). Without times
    /// (a write coordinated by the node it was forwarded to) the one-line summary.
    public static func trace(
        _ times: [ReplicaTime], repliedMs: Double?, coordinator: String?, asked: [String], answered: [String],
        verb: String, succeeded: Bool
    ) -> [String] {
        guard !times.isEmpty else { return [trace(asked: asked, answered: answered, verb: verb)] }
        func ms(_ value: Double) -> String { String(format: "%.2f ms", value) }
        var lines = [
            "trace: coordinated by \(coordinator ?? "?")"
                + (repliedMs.map { ", client answered at \(ms($0))" } ?? "")
        ]
        lines.append("  replica              sent       \(verb)")
        for time in times {
            let name = time.node + (time.hintFor.map { " (for \($0))" } ?? "")
            let outcome: String
            if time.failed {
                outcome = time.answeredMs.map { "failed at \(ms($0))" } ?? "failed"
            } else if let answeredMs = time.answeredMs {
                outcome = ms(answeredMs)
            } else {
                outcome = succeeded ? "not waited for (quorum met first)" : "no answer in time"
            }
            lines.append(
                "  \(name.padding(toLength: 20, withPad: " ", startingAt: 0)) \(ms(time.sentMs).padding(toLength: 10, withPad: " ", startingAt: 0)) \(outcome)")
        }
        if times.contains(where: { $0.hintFor != nil }) {
            lines.append("  (for X): a fallback keeping a hint for home node X")
        }
        return lines
    }

    /// A time in ms: whole from 100 on, else with one decimal (`2.4`, `304`).
    public static func ms(_ value: Double) -> String {
        abs(value) >= 100 ? String(format: "%.0f", value) : String(format: "%.1f", value)
    }

    /// `text` right-aligned in `width` columns.
    static func right(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }

    public static func clock(_ clock: [String: UInt64]) -> String {
        clock.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: " ")
    }

    /// The value as text when it is printable UTF-8, else as base64.
    public static func printable(_ bytes: [UInt8]) -> String {
        if let text = String(validating: bytes, as: UTF8.self),
            text.unicodeScalars.allSatisfy({
                !$0.properties.isNoncharacterCodePoint && ($0.value >= 0x20 || $0 == "\n" || $0 == "\t")
            })
        {
            return text
        }
        return "base64:" + Base64.encode(bytes)
    }
}
