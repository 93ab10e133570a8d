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
public struct DecodingError: Error, Hashable, Sendable, CustomStringConvertible {
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

    public mutating func readByte() throws(DecodingError) -> UInt8 {
        guard offset < bytes.count else { throw DecodingError("truncated") }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// A LEB128 varint in its one shortest form: bits past 64 (which a shift would drop
    /// silently, turning 2^70 into another number) and padding groups (`80 00` for 0) are
    /// refused, so every value has exactly one encoding.
    public mutating func readVarint() throws(DecodingError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try readByte()
            guard shift < 64 else { throw DecodingError("varint too long") }
            if shift == 63, byte > 1 { throw DecodingError("varint exceeds 64 bits") }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 {
                if byte == 0, shift > 0 { throw DecodingError("varint not in its shortest form") }
                return result
            }
            shift += 7
        }
    }

    public mutating func readInt(max limit: Int) throws(DecodingError) -> Int {
        let v = try readVarint()
        guard v <= UInt64(limit) else { throw DecodingError("count \(v) exceeds \(limit)") }
        return Int(v)
    }

    public mutating func readBytes(max limit: Int = .max) throws(DecodingError) -> [UInt8] {
        let count = try readInt(max: limit)
        return try readRaw(count)
    }

    public mutating func readRaw(_ count: Int) throws(DecodingError) -> [UInt8] {
        guard count >= 0, count <= remaining else { throw DecodingError("truncated") }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    public mutating func readString(max limit: Int = 4096) throws(DecodingError) -> String {
        let raw = try readBytes(max: limit)
        guard let s = String(validating: raw, as: UTF8.self) else { throw DecodingError("invalid UTF-8") }
        return s
    }

    public mutating func readBool() throws(DecodingError) -> Bool {
        switch try readByte() {
        case 0: return false
        case 1: return true
        case let b: throw DecodingError("invalid bool \(b)")
        }
    }

    public func expectEnd() throws(DecodingError) {
        guard isAtEnd else { throw DecodingError("\(remaining) trailing bytes") }
    }
}

extension Dot {
    public func encode(into writer: inout ByteWriter) {
        writer.write(string: actor)
        writer.write(varint: counter)
    }

    public var encodedByteCount: Int {
        ByteWriter.lengthPrefixedSize(actor.utf8.count) + ByteWriter.varintSize(counter)
    }

    /// Refuses counters outside 1...`Dot.maxCounter`.
    public static func decode(from reader: inout ByteReader) throws(DecodingError) -> Dot {
        let actor = try reader.readString(max: 255)
        let counter = try reader.readVarint()
        guard counter > 0, counter <= Dot.maxCounter else { throw DecodingError("dot counter \(counter) out of range") }
        return Dot(actor: actor, counter: counter)
    }
}

/// Binary form of stored objects.
extension VersionedObject {
    /// The most versions a peer's object may have: peers are not trusted with more (and no
    /// node sends more, see `ObjectLimits`).
    public static let decodeVersionLimit = 10_000
    /// The most versions an object read from the node's own store may have. Higher than
    /// what peers may send: builds before the object limits stored keys past
    /// `decodeVersionLimit` (10,001 blind writes did it), and such a key must stay
    /// readable here so that a write with its context can resolve it.
    public static let storedVersionLimit = 1_000_000

    public func encode(into writer: inout ByteWriter) {
        writer.write(varint: UInt64(versions.count))
        for v in versions {
            v.dot.encode(into: &writer)
            v.past.encode(into: &writer)
            writer.write(varint: v.timestamp)
            if let value = v.value {
                writer.write(1)
                writer.write(bytes: value)
            } else {
                writer.write(0)
            }
        }
    }

    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 64 + versions.reduce(0) { $0 + ($1.value?.count ?? 0) })
        encode(into: &writer)
        return writer.bytes
    }

    /// The exact size of `encoded()`, computed without encoding (values are only counted).
    public var encodedByteCount: Int {
        var total = ByteWriter.varintSize(UInt64(versions.count))
        for v in versions {
            total += v.dot.encodedByteCount + v.past.encodedByteCount + ByteWriter.varintSize(v.timestamp) + 1
            if let value = v.value { total += ByteWriter.lengthPrefixedSize(value.count) }
        }
        return total
    }

    public static func decode(from reader: inout ByteReader, maxVersions: Int = decodeVersionLimit)
        throws(DecodingError) -> VersionedObject
    {
        let count = try reader.readInt(max: maxVersions)
        var versions: [Version] = []
        // A version takes at least 5 bytes: a made-up count reserves no more than the input could hold.
        versions.reserveCapacity(min(count, reader.remaining / 5))
        for _ in 0..<count {
            let dot = try Dot.decode(from: &reader)
            let past = try CausalHistory.decode(from: &reader)
            let timestamp = try reader.readVarint()
            let value: [UInt8]? = try reader.readBool() ? reader.readBytes() : nil
            versions.append(
                Version(dot: dot, past: past, value: value, timestamp: timestamp)
            )
        }
        return VersionedObject(versions: versions)
    }

    public init(decoding bytes: [UInt8], maxVersions: Int = decodeVersionLimit) throws(DecodingError) {
        var reader = ByteReader(bytes)
        self = try Self.decode(from: &reader, maxVersions: maxVersions)
        try reader.expectEnd()
    }
}
