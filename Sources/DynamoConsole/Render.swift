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
            return "\(printable(value))\n\(via), context \(result.context ?? "-")"
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
