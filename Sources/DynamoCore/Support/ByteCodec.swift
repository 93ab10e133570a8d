/// Little binary writer for stored objects, contexts and peer messages.
///
/// Varints for integers, length-prefixed byte strings. Kept in the pure core because
/// storage and the wire both encode `VersionedObject`s, and the codec is plain data.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    public mutating func write(_ byte: UInt8) { bytes.append(byte) }

    public mutating func write(varint value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    public mutating func write(bytes data: some Collection<UInt8>) {
        write(varint: UInt64(data.count))
        bytes.append(contentsOf: data)
    }

    public mutating func write(string: String) { write(bytes: Array(string.utf8)) }

    public mutating func write(raw data: some Collection<UInt8>) { bytes.append(contentsOf: data) }

    public mutating func write(bool: Bool) { bytes.append(bool ? 1 : 0) }

    /// How many bytes `write(varint:)` takes for `value`.
    public static func varintSize(_ value: UInt64) -> Int {
        value == 0 ? 1 : (64 - value.leadingZeroBitCount + 6) / 7
    }

    /// How many bytes `write(bytes:)` takes for `count` bytes.
    public static func lengthPrefixedSize(_ count: Int) -> Int { varintSize(UInt64(count)) + count }
}

/// What went wrong decoding bytes: always a clean error, never a crash.
public struct ByteDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "malformed data: \(reason)" }
}

/// Reader matching `ByteWriter`; every read is bounds- and limit-checked.
public struct ByteReader: Sendable {
    private let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.offset = 0
    }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset == bytes.count }

    public mutating func readByte() throws(ByteDecodingError) -> UInt8 {
        guard offset < bytes.count else { throw ByteDecodingError("truncated") }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// A LEB128 varint in its one shortest form: bits past 64 (which a shift would drop
    /// silently, turning 2^70 into another number) and padding groups (`80 00` for 0) are
    /// refused, so every value has exactly one encoding.
    public mutating func readVarint() throws(ByteDecodingError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try readByte()
            guard shift < 64 else { throw ByteDecodingError("varint too long") }
            if shift == 63, byte > 1 { throw ByteDecodingError("varint exceeds 64 bits") }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 {
                if byte == 0, shift > 0 { throw ByteDecodingError("varint not in its shortest form") }
                return result
            }
            shift += 7
        }
    }

    public mutating func readInt(max limit: Int) throws(ByteDecodingError) -> Int {
        let v = try readVarint()
        guard v <= UInt64(limit) else { throw ByteDecodingError("count \(v) exceeds \(limit)") }
        return Int(v)
    }

    public mutating func readBytes(max limit: Int = .max) throws(ByteDecodingError) -> [UInt8] {
        let count = try readInt(max: limit)
        return try readRaw(count)
    }

    public mutating func readRaw(_ count: Int) throws(ByteDecodingError) -> [UInt8] {
        guard count >= 0, count <= remaining else { throw ByteDecodingError("truncated") }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    public mutating func readString(max limit: Int = 4096) throws(ByteDecodingError) -> String {
        let raw = try readBytes(max: limit)
        guard let s = String(validating: raw, as: UTF8.self) else { throw ByteDecodingError("invalid UTF-8") }
        return s
    }

    public mutating func readBool() throws(ByteDecodingError) -> Bool {
        switch try readByte() {
        case 0: return false
        case 1: return true
        case let b: throw ByteDecodingError("invalid bool \(b)")
        }
    }

    public func expectEnd() throws(ByteDecodingError) {
        guard isAtEnd else { throw ByteDecodingError("\(remaining) trailing bytes") }
    }
}
