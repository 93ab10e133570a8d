/// Base64 (RFC 4648) in the two forms the API uses: standard with padding for values in
/// JSON documents (section 4), URL-safe without padding for context headers (section 5).
///
/// One codec over bytes with a table per alphabet: values reach tens of megabytes (a key
/// with many large siblings), so it works on byte buffers, never on `Character`s.
struct Base64Codec: Sendable {
    let alphabet: [UInt8]
    let pads: Bool
    private let reverse: [UInt8]

    init(_ symbols: String, pads: Bool) {
        alphabet = Array(symbols.utf8)
        self.pads = pads
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        reverse = table
    }

    func encode(_ bytes: [UInt8]) -> String {
        let full = bytes.count / 3
        let rest = bytes.count - full * 3
        let length = full * 4 + (rest == 0 ? 0 : pads ? 4 : rest + 1)
        return String(unsafeUninitializedCapacity: length) { out in
            alphabet.withUnsafeBufferPointer { symbols in
                bytes.withUnsafeBufferPointer { input in
                    var o = 0
                    var i = 0
                    for _ in 0..<full {
                        let n = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
                        out[o] = symbols[Int(n >> 18 & 63)]
                        out[o + 1] = symbols[Int(n >> 12 & 63)]
                        out[o + 2] = symbols[Int(n >> 6 & 63)]
                        out[o + 3] = symbols[Int(n & 63)]
                        i += 3
                        o += 4
                    }
                    guard rest > 0 else { return }
                    let n = UInt32(input[i]) << 16 | (rest == 2 ? UInt32(input[i + 1]) << 8 : 0)
                    out[o] = symbols[Int(n >> 18 & 63)]
                    out[o + 1] = symbols[Int(n >> 12 & 63)]
                    if rest == 2 { out[o + 2] = symbols[Int(n >> 6 & 63)] }
                    if pads {
                        if rest == 1 { out[o + 2] = UInt8(ascii: "=") }
                        out[o + 3] = UInt8(ascii: "=")
                    }
                }
            }
            return length
        }
    }

    /// Decodes; tolerates trailing `=` padding (at most two); nil for any other byte
    /// outside the alphabet and for a length no encoder writes.
    func decode(_ text: String) -> [UInt8]? {
        var text = text
        return text.withUTF8 { utf8 -> [UInt8]? in
            var count = utf8.count
            var padding = 0
            while count > 0, padding < 2, utf8[count - 1] == UInt8(ascii: "=") {
                count -= 1
                padding += 1
            }
            guard count % 4 != 1 else { return nil }
            let length = count / 4 * 3 + max(count % 4 - 1, 0)
            var failed = false
            let out = [UInt8](unsafeUninitializedCapacity: length) { out, written in
                reverse.withUnsafeBufferPointer { table in
                    var buffer: UInt32 = 0
                    var bits = 0
                    var o = 0
                    for i in 0..<count {
                        let v = table[Int(utf8[i])]
                        if v == 0xFF {
                            failed = true
                            break
                        }
                        buffer = buffer << 6 | UInt32(v)
                        bits += 6
                        if bits >= 8 {
                            bits -= 8
                            out[o] = UInt8(truncatingIfNeeded: buffer >> UInt32(bits))
                            o += 1
                        }
                    }
                    written = failed ? 0 : o
                }
            }
            return failed ? nil : out
        }
    }
}

/// Standard base64 with padding: how values travel in JSON documents.
public enum Base64 {
    static let codec = Base64Codec("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", pads: true)
    public static func encode(_ bytes: [UInt8]) -> String { codec.encode(bytes) }
    public static func decode(_ text: String) -> [UInt8]? { codec.decode(text) }
}

/// URL-safe base64 without padding: the form of context headers.
public enum Base64URL {
    static let codec = Base64Codec("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", pads: false)
    public static func encode(_ bytes: [UInt8]) -> String { codec.encode(bytes) }
    public static func decode(_ text: String) -> [UInt8]? { codec.decode(text) }
}
