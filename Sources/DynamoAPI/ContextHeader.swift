/// The `X-Dynamo-Context` header: a node's sealed context bytes as URL-safe base64 without
/// padding. The node opens the bytes (and checks their seal); this is only their text form.
public enum ContextHeader {
    /// Longer headers are refused before decoding (a real context is a few hundred bytes).
    public static let maxLength = 16_384

    public static func encode(_ sealed: [UInt8]) -> String { Base64URL.encode(sealed) }

    /// The bytes of a header value (spaces and tabs around it ignored), or why there are none.
    public static func decode(_ text: String) throws(ContextHeaderError) -> [UInt8] {
        let blank: Set<UInt8> = [UInt8(ascii: " "), UInt8(ascii: "\t")]
        let utf8 = Array(text.utf8)
        guard let first = utf8.firstIndex(where: { !blank.contains($0) }) else { return [] }
        let last = utf8.lastIndex { !blank.contains($0) }!
        guard last - first < maxLength else { throw ContextHeaderError("context is too long") }
        guard let bytes = Base64URL.decode(String(decoding: utf8[first...last], as: UTF8.self)) else {
            throw ContextHeaderError("context is not URL-safe base64")
        }
        return bytes
    }
}

/// A context header that is not even well-formed text (its bytes are checked by the node).
public struct ContextHeaderError: Error, Hashable, Sendable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
