/// The opaque context a client gets from a read and hands back on its next write.
///
/// It is the merged clock of the versions the client saw: a small binary form (a magic
/// byte, a format version, the clock) followed by a tag. (The HTTP API carries these bytes
/// as URL-safe base64: `ContextHeader` in DynamoAPI.)
/// The tag is an HMAC of the key and the clock, under the cluster secret (or, in a
/// cluster without one, a fixed development key). So a node takes back only contexts
/// that some node of its cluster issued for that very key: a context a client made up
/// (claiming counters near the ceiling, say, to make the key unwritable) or one from
/// another key (which would silently discard this key's versions) is a clear 400.
public struct CausalContext: Hashable, Sendable {
    public var clock: CausalHistory

    public init(_ clock: CausalHistory) { self.clock = clock }

    static let magic: UInt8 = 0xDC
    /// 3: the clock alone. 4: sealed (a tag of key and clock follows).
    static let formatVersion: UInt8 = 4
    static let tagBytes = 16

    /// The clock's binary form: magic, format version, clock.
    public var body: [UInt8] {
        var writer = ByteWriter()
        writer.write(Self.magic)
        writer.write(Self.formatVersion)
        clock.encode(into: &writer)
        return writer.bytes
    }

    /// Decodes a body (what `body` writes), refusing anything malformed.
    public init(decodingBody bytes: [UInt8]) throws(ByteDecodingError) {
        var reader = ByteReader(bytes)
        guard try reader.readByte() == Self.magic else { throw ByteDecodingError("not a dynamo context") }
        let version = try reader.readByte()
        guard version == Self.formatVersion else {
            throw ByteDecodingError(
                version == 3 ? "a context from an older version (read the key again)" : "unknown context format \(version)")
        }
        clock = try CausalHistory.decode(from: &reader)
        try reader.expectEnd()
    }

    private static func tag(_ body: [UInt8], key: [UInt8], sealer: ClusterKey) -> [UInt8] {
        Array(sealer.mac("dynamo context v4", [key, body]).prefix(tagBytes))
    }

    /// The sealed bytes clients get for `key`: the body and its tag.
    public func sealed(forKey key: [UInt8], with sealer: ClusterKey) -> [UInt8] {
        let body = self.body
        return body + Self.tag(body, key: key, sealer: sealer)
    }

    /// Opens sealed bytes sent with a write of `key`; `ContextError` says what is wrong.
    public init(opening bytes: [UInt8], forKey key: [UInt8], with sealer: ClusterKey) throws(ContextError) {
        guard bytes.count > Self.tagBytes + 2 else { throw ContextError("context is corrupt (too short)") }
        let body = Array(bytes.dropLast(Self.tagBytes))
        let clock: CausalHistory
        do {
            clock = try Self(decodingBody: body).clock
        } catch {
            throw ContextError("context is corrupt (\(error.reason))")
        }
        guard ClusterKey.tagsMatch(Self.tag(body, key: key, sealer: sealer), bytes.suffix(Self.tagBytes)) else {
            throw ContextError(
                "context was not issued for this key by this cluster (send the context a read of this key returned)")
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
