import DynamoCore

/// Structure-aware hostile input: the encodings the decoders expect, with every integer
/// drawn mostly from boundary values (0, 1, byte and word edges, the counter and version
/// ceilings, 2^64 - 1), lengths near the limits, a small pool of node names (so forged
/// rows about a node reach that node), and then a few random mutations of the bytes.
///
/// Purely random bytes almost never get past a magic byte or a tag; this gets most inputs
/// deep into a decoder and into whatever consumes its output, where the arithmetic is.
public struct HostileBytes {
    var rng: SeededRandom

    public init(seed: UInt64) { rng = SeededRandom(seed: seed) }

    static let boundaries: [UInt64] = [
        0, 1, 2, 3, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000, 0xffff_ffff, 0x1_0000_0000,
        (1 << 62) - 1, 1 << 62, (1 << 62) + 1, 1 << 63, .max - 2, .max - 1, .max,
    ]
    static let names = ["n1", "n2", "n3", "", "n1 ", String(repeating: "x", count: 255)]

    public mutating func chance(_ percent: UInt64) -> Bool { rng.next() % 100 < percent }
    public mutating func below(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }

    /// Mostly a boundary, sometimes small, sometimes anything.
    mutating func number() -> UInt64 {
        switch rng.next() % 4 {
        case 0, 1: Self.boundaries[below(Self.boundaries.count)]
        case 2: rng.next() % 8
        default: rng.next()
        }
    }

    /// A count: mostly small (so the structure continues), sometimes a boundary.
    mutating func count(upTo small: Int = 3) -> UInt64 {
        chance(90) ? UInt64(below(small + 1)) : number()
    }

    mutating func name() -> String { Self.names[below(Self.names.count)] }

    /// Key lengths around every limit a key meets (hint storage keys spell it in 2 bytes).
    mutating func key() -> [UInt8] {
        let lengths = [0, 1, 3, 16, 255, 256, 1024, 1025, 65_535, 65_536, 65_537]
        let length = chance(70) ? 1 + below(8) : lengths[below(lengths.count)]
        return (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    mutating func clock(into w: inout ByteWriter) {
        let actors = count()
        w.write(varint: actors)
        for _ in 0..<min(actors, 4) {
            w.write(string: name())
            w.write(varint: number())
            let ranges = count()
            w.write(varint: ranges)
            // Mostly well-formed (ascending, disjoint), so decoding gets to the arithmetic
            // with ends at the boundaries; sometimes any pair of numbers.
            let ends = (0..<2 * min(ranges, 4)).map { _ in number() }.sorted()
            let ordered = chance(70)
            for i in 0..<Int(min(ranges, 4)) {
                if ordered {
                    w.write(varint: ends[2 * i])
                    w.write(varint: ends[2 * i + 1] &- ends[2 * i])
                } else {
                    w.write(varint: number())
                    w.write(varint: number())
                }
            }
        }
    }

    mutating func object(into w: inout ByteWriter) {
        let versions = count()
        w.write(varint: versions)
        for _ in 0..<min(versions, 4) {
            w.write(string: name())
            w.write(varint: number())
            clock(into: &w)
            w.write(varint: number())
            if chance(80) {
                w.write(1)
                w.write(bytes: key())
            } else {
                w.write(chance(90) ? 0 : UInt8(truncatingIfNeeded: number()))
            }
        }
    }

    mutating func member(into w: inout ByteWriter) {
        w.write(string: name())
        w.write(string: chance(90) ? "127.0.0.1:\(below(65_536))" : name())
        w.write(string: "127.0.0.1:\(below(65_536))")
        let tokens = self.count(upTo: 8)
        w.write(varint: tokens)
        for _ in 0..<min(tokens, 8) { w.write(raw: (0..<16).map { _ in UInt8(truncatingIfNeeded: rng.next()) }) }
        w.write(UInt8(below(5)))
        w.write(varint: number())
        w.write(varint: number())
        w.write(UInt8(below(3)))
        w.write(bytes: chance(80) ? [] : bytes(count: chance(50) ? 32 : below(80)))
    }

    /// Gossip rows: whole members, and state rows (mostly of names `name()` also gives).
    mutating func rows(into w: inout ByteWriter) {
        let count = count()
        w.write(varint: count)
        for _ in 0..<min(count, 4) {
            let whole = chance(50)
            w.write(whole ? 1 : (chance(90) ? 0 : UInt8(truncatingIfNeeded: 2 + below(3))))
            if whole {
                member(into: &w)
            } else {
                w.write(string: name())
                w.write(UInt8(below(6)))
                w.write(varint: number())
                w.write(varint: number())
                w.write(UInt8(below(3)))
                fingerprint(into: &w)
            }
        }
    }

    /// Gossip digests: names with a heartbeat and a generation.
    mutating func digests(into w: inout ByteWriter) {
        let count = count()
        w.write(varint: count)
        for _ in 0..<min(count, 6) {
            w.write(string: name())
            w.write(varint: number())
            w.write(varint: number())
            fingerprint(into: &w)
        }
    }

    /// An identity fingerprint: mostly that of a member `member(into:)` could make (so
    /// state rows sometimes match a held row), else any 8 bytes.
    mutating func fingerprint(into w: inout ByteWriter) {
        let value = chance(50) ? FuzzTarget.member(name()).fingerprint : rng.next()
        w.write(raw: withUnsafeBytes(of: value.bigEndian, Array.init))
    }

    mutating func bytes(count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }

    mutating func optionalBytes(into w: inout ByteWriter, _ make: (inout HostileBytes) -> [UInt8]) {
        let present = chance(60)
        w.write(present ? 1 : 0)
        if present { w.write(bytes: make(&self)) }
    }

    mutating func range(into w: inout ByteWriter) {
        for _ in 0..<32 { w.write(UInt8(truncatingIfNeeded: chance(50) ? 0 : rng.next())) }
    }

    /// One peer request body (its tag and fields), a fifth of them traced: wrapped with a
    /// trace id (often plausible, sometimes invalid or too long) and a message kind (some
    /// unknown), rarely twice.
    mutating func request(into w: inout ByteWriter) {
        if chance(20) {
            w.write(0x1a)
            w.write(bytes: chance(80) ? Array("n1-\(below(1 << 20))".utf8) : bytes(count: below(80)))
            w.write(UInt8(below(7)))
            if chance(5) {
                w.write(0x1a)
                w.write(bytes: Array("t".utf8))
                w.write(1)
            }
        }
        switch below(7) {
        case 0:
            w.write(0x10)
            w.write(bytes: key())
        case 1:
            w.write(0x11)
            w.write(bytes: key())
            object(into: &w)
            optionalBytes(into: &w) { Array($0.name().utf8) }
        case 2:
            w.write(0x14)
            w.write(bytes: key())
            object(into: &w)
        case 3:
            w.write(chance(50) ? 0x18 : 0x19)
            if w.bytes.last == 0x18 { digests(into: &w) } else { rows(into: &w) }
        case 4:
            w.write(0x13)
            w.write(bytes: key())
            optionalBytes(into: &w) { $0.key() }
            let hasContext = chance(70)
            w.write(hasContext ? 1 : 0)
            if hasContext { clock(into: &w) }
            w.write(varint: count())
            // The request id: often a plausible one, sometimes control characters or too long.
            optionalBytes(into: &w) { $0.chance(70) ? Array("n2-\($0.below(1 << 20))".utf8) : $0.bytes(count: $0.below(80)) }
        case 5:
            w.write(0x16)
            range(into: &w)
            let count = count()
            w.write(varint: count)
            for _ in 0..<min(count, 4) {
                w.write(UInt8(below(7)))
                w.write(varint: number())
            }
        default:
            w.write(0x17)
            range(into: &w)
            let count = count()
            w.write(varint: count)
            for _ in 0..<min(count, 4) { w.write(varint: number()) }
        }
    }

    /// One peer response body.
    mutating func response(into w: inout ByteWriter) {
        switch below(6) {
        case 0:
            w.write(0x20)
            w.write(1)
            object(into: &w)
        case 1:
            w.write(0x29)
            rows(into: &w)
            digests(into: &w)
        case 2:
            w.write(0x24)
            w.write(UInt8(below(2)))
            w.write(string: name())
            w.write(varint: 1)
            w.write(string: name())
            w.write(varint: count())
            clock(into: &w)
            w.write(0)
            w.write(1)
            w.write(string: name())
            w.write(varint: number())
            w.write(varint: 0)
        case 3:
            w.write(0x26)
            let count = count()
            w.write(varint: count)
            for _ in 0..<min(count, 3) {
                w.write(bytes: key())
                object(into: &w)
            }
            optionalBytes(into: &w) { $0.key() }
        case 4:
            w.write(0x27)
            w.write(varint: 1)
            let size = count(upTo: 16)
            w.write(varint: size)
            for _ in 0..<min(size, 16) { w.write(varint: number()) }
        default:
            w.write(0x28)
            let count = count()
            w.write(varint: count)
            for _ in 0..<min(count, 3) {
                w.write(bytes: key())
                w.write(varint: number())
            }
        }
    }

    /// A whole peer frame payload: hello, request or response.
    public mutating func peerMessage() -> [UInt8] {
        var w = ByteWriter()
        switch below(5) {
        case 0:
            w.write(0x01)
            w.write(raw: Array("DYNM".utf8))
            w.write(0)
            w.write(UInt8(below(5)))
            w.write(string: name())
            w.write(bytes: bytes(count: chance(70) ? 16 : below(70)))
            w.write(bytes: bytes(count: chance(70) ? 32 : below(70)))
        case 4:
            w.write(0x04)
            w.write(bytes: bytes(count: chance(70) ? 32 : below(70)))
        case 1, 2:
            w.write(0x02)
            w.write(varint: number())
            request(into: &w)
        default:
            w.write(0x03)
            w.write(varint: number())
            response(into: &w)
        }
        return mutated(w.bytes)
    }

    /// A context header's bytes (before base64): magic, format, clock.
    public mutating func contextBytes() -> [UInt8] {
        var w = ByteWriter()
        w.write(chance(95) ? 0xDC : UInt8(truncatingIfNeeded: rng.next()))
        w.write(chance(95) ? 4 : UInt8(truncatingIfNeeded: rng.next()))
        clock(into: &w)
        return mutated(w.bytes)
    }

    public mutating func objectBytes() -> [UInt8] {
        var w = ByteWriter()
        object(into: &w)
        return mutated(w.bytes)
    }

    /// A gossip exchange's payload: rows, then digests.
    public mutating func gossipBytes() -> [UInt8] {
        var w = ByteWriter()
        rows(into: &w)
        digests(into: &w)
        return mutated(w.bytes)
    }

    /// A third of the time, one to three byte-level mutations: flip, cut, insert, repeat.
    public mutating func mutated(_ input: [UInt8]) -> [UInt8] {
        guard chance(33) else { return input }
        var bytes = input
        for _ in 0...below(3) {
            let at = bytes.isEmpty ? 0 : below(bytes.count)
            switch below(4) {
            case 0 where !bytes.isEmpty: bytes[at] ^= UInt8(truncatingIfNeeded: 1 << below(8))
            case 1: bytes = Array(bytes.prefix(at))
            case 2:
                var w = ByteWriter()
                w.write(varint: number())
                bytes.insert(contentsOf: w.bytes, at: at)
            default: bytes += bytes.suffix(from: at).prefix(16)
            }
        }
        return bytes
    }
}
