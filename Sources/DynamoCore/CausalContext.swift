/// The opaque context a client gets from a read and hands back on its next write.
///
/// It is the merged clock of the versions the client saw, encoded as URL-safe base64
/// (no padding) of a small binary form with a magic byte and a format version, so
/// anything a client mangles is rejected as a clear 400 instead of being misread.
public struct CausalContext: Hashable, Sendable {
    public var clock: CausalHistory

    public init(_ clock: CausalHistory) { self.clock = clock }

    static let magic: UInt8 = 0xDC
    static let formatVersion: UInt8 = 3

    /// The header value clients see.
    public var encoded: String {
        var writer = ByteWriter()
        writer.write(Self.magic)
        writer.write(Self.formatVersion)
        clock.encode(into: &writer)
        return Base64URL.encode(writer.bytes)
    }

    private static func decodeBody(_ bytes: [UInt8]) throws(DecodingError) -> CausalHistory {
        var reader = ByteReader(bytes)
        guard try reader.readByte() == magic else { throw DecodingError("not a dynamo context") }
        let version = try reader.readByte()
        guard version == formatVersion else { throw DecodingError("unknown context format \(version)") }
        let clock = try CausalHistory.decode(from: &reader)
        try reader.expectEnd()
        return clock
    }

    /// Parses a context header; `ContextError` describes what is wrong with it.
    public init(parsing text: String) throws(ContextError) {
        let trimmed = text.trimmingWhitespace()
        guard trimmed.utf8.count <= 16_384 else { throw ContextError("context is too long") }
        guard let bytes = Base64URL.decode(trimmed) else { throw ContextError("context is not URL-safe base64") }
        let clock: CausalHistory
        do {
            clock = try Self.decodeBody(bytes)
        } catch {
            throw ContextError("context is corrupt (\(error.reason))")
        }
        // A write made with this context numbers its dot above every counter in it.
        for (actor, entry) in clock.entries where entry.max >= Dot.maxCounter {
            throw ContextError("context is corrupt (counter \(entry.max) of \(actor) leaves no room for a write)")
        }
        self.clock = clock
    }
}

/// A context header a client sent that cannot be used.
public struct ContextError: Error, Hashable, Sendable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// URL-safe base64 without padding (RFC 4648 section 5).
public enum Base64URL {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 2 < bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [
                alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)],
                alphabet[Int(n & 63)],
            ]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)]]
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)]]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes; tolerates trailing `=` padding; nil for any other non-alphabet byte.
    public static func decode(_ text: String) -> [UInt8]? {
        var chars = Array(text.utf8)
        while chars.last == UInt8(ascii: "=") { chars.removeLast() }
        guard chars.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count * 3 / 4)
        var buffer: UInt32 = 0
        var bits = 0
        for c in chars {
            let v = reverse[Int(c)]
            guard v != 0xFF else { return nil }
            buffer = buffer << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        return out
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        var start = scalars.startIndex
        var end = scalars.endIndex
        while start < end, scalars[start].properties.isWhitespace { start = scalars.index(after: start) }
        while end > start, scalars[scalars.index(before: end)].properties.isWhitespace {
            end = scalars.index(before: end)
        }
        return String(scalars[start..<end])
    }
}

/// Standard base64 with padding (RFC 4648 section 4), for values in JSON documents.
public enum Base64 {
    public static func encode(_ bytes: [UInt8]) -> String {
        var text = Base64URL.encode(bytes).replacingSlashes()
        while text.utf8.count % 4 != 0 { text += "=" }
        return text
    }

    public static func decode(_ text: String) -> [UInt8]? {
        Base64URL.decode(String(text.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 }))
    }
}

extension String {
    fileprivate func replacingSlashes() -> String { String(map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 }) }
}
