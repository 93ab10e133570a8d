/// The binary forms of dots and stored objects, shared by storage and the wire.

extension Dot {
    public func encode(into writer: inout ByteWriter) {
        writer.write(string: actor)
        writer.write(varint: counter)
    }

    public var encodedByteCount: Int {
        ByteWriter.lengthPrefixedSize(actor.utf8.count) + ByteWriter.varintSize(counter)
    }

    /// Refuses counters outside 1...`Dot.maxCounter`.
    public static func decode(from reader: inout ByteReader) throws(ByteDecodingError) -> Dot {
        let actor = try reader.readString(max: 255)
        let counter = try reader.readVarint()
        guard counter > 0, counter <= Dot.maxCounter else { throw ByteDecodingError("dot counter \(counter) out of range") }
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
        throws(ByteDecodingError) -> VersionedObject
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

    public init(decoding bytes: [UInt8], maxVersions: Int = decodeVersionLimit) throws(ByteDecodingError) {
        var reader = ByteReader(bytes)
        self = try Self.decode(from: &reader, maxVersions: maxVersions)
        try reader.expectEnd()
    }
}
