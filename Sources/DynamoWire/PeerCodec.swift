public import DynamoCore
public import NIOCore

/// Binary encoding of `PeerMessage` payloads (the bytes inside one frame).
///
/// Unknown type bytes, truncation and trailing garbage are `ByteDecodingError`s; the channel
/// that sent them is closed and nothing else is affected.
public enum PeerCodec {
    enum Tag: UInt8 {
        case hello = 0x01
        case request = 0x02
        case response = 0x03
        case proof = 0x04
        case replicaGet = 0x10
        case replicaPut = 0x11
        case gossipDigest = 0x18
        case gossipRows = 0x19
        case coordinatePut = 0x13
        case replicaReap = 0x14
        case pull = 0x15
        case treeChildren = 0x16
        case treeSegments = 0x17
        case traced = 0x1a
        case replyObject = 0x20
        case replyStored = 0x21
        case replyFailed = 0x22
        case replyGossipDelta = 0x29
        case replyCoordinated = 0x24
        case replyError = 0x25
        case replyTransfer = 0x26
        case replyTreeHashes = 0x27
        case replyTreeKeys = 0x28
    }

    /// Largest key we accept from a peer (values are bounded by the frame).
    static let maxKey = KeyLimits.absoluteMaxKeyBytes
    static let maxMembers = 4096
    static let maxTokens = 4096

    public static func encode(_ message: PeerMessage) -> [UInt8] {
        var w = ByteWriter(capacity: 128)
        switch message {
        case .hello(let hello):
            w.write(Tag.hello.rawValue)
            w.write(raw: Hello.magic)
            w.write(UInt8(hello.protocolVersion >> 8))
            w.write(UInt8(hello.protocolVersion & 0xff))
            w.write(string: hello.name)
            w.write(bytes: hello.nonce)
            w.write(bytes: hello.proof)
        case .proof(let proof):
            w.write(Tag.proof.rawValue)
            w.write(bytes: proof)
        case .request(let id, let request):
            w.write(Tag.request.rawValue)
            w.write(varint: id)
            encode(request, into: &w)
        case .response(let id, let response):
            w.write(Tag.response.rawValue)
            w.write(varint: id)
            encode(response, into: &w)
        }
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(ByteDecodingError) -> PeerMessage {
        var r = ByteReader(bytes)
        let message: PeerMessage
        switch try tag(&r) {
        case .hello:
            guard try r.readRaw(4) == Hello.magic else { throw ByteDecodingError("bad magic: not a dynamo peer") }
            let version = UInt16(try r.readByte()) << 8 | UInt16(try r.readByte())
            let name = try r.readString(max: 255)
            // Versions before 3 end here; `PeerHandshake` refuses them by number.
            let nonce = r.isAtEnd ? [] : try r.readBytes(max: 64)
            let proof = r.isAtEnd ? [] : try r.readBytes(max: 64)
            message = .hello(Hello(name: name, protocolVersion: version, nonce: nonce, proof: proof))
        case .proof:
            message = .proof(try r.readBytes(max: 64))
        case .request:
            let id = try r.readVarint()
            message = .request(id: id, try decodeRequest(&r))
        case .response:
            let id = try r.readVarint()
            message = .response(id: id, try decodeResponse(&r))
        default:
            throw ByteDecodingError("unexpected message type")
        }
        try r.expectEnd()
        return message
    }

    private static func tag(_ r: inout ByteReader) throws(ByteDecodingError) -> Tag {
        let byte = try r.readByte()
        guard let tag = Tag(rawValue: byte) else {
            throw ByteDecodingError("unknown message type 0x\(String(byte, radix: 16))")
        }
        return tag
    }

    private static func encode(_ request: PeerRequest, into w: inout ByteWriter) {
        switch request {
        case .traced(let tag, let inner):
            // (Never one the decoder would refuse: an invalid tag goes untraced.)
            if case .traced = inner { return encode(inner, into: &w) }
            guard TraceTag.isValid(id: tag.id) else { return encode(inner, into: &w) }
            w.write(Tag.traced.rawValue)
            w.write(string: tag.id)
            w.write(tag.message.rawValue)
            encode(inner, into: &w)
        case .replica(.get(let key)):
            w.write(Tag.replicaGet.rawValue)
            w.write(bytes: key)
        case .replica(.put(let key, let object, let hintFor)):
            w.write(Tag.replicaPut.rawValue)
            w.write(bytes: key)
            object.encode(into: &w)
            writeOptional(hintFor, into: &w)
        case .replica(.reap(let key, let object)):
            w.write(Tag.replicaReap.rawValue)
            w.write(bytes: key)
            object.encode(into: &w)
        case .gossipDigest(let digests):
            w.write(Tag.gossipDigest.rawValue)
            encode(digests, into: &w)
        case .gossipRows(let rows):
            w.write(Tag.gossipRows.rawValue)
            encode(rows, into: &w)
        case .pull(let requester, let after):
            w.write(Tag.pull.rawValue)
            encode([requester], into: &w)
            writeOptional(after, into: &w)
        case .treeChildren(let range, let nodes):
            w.write(Tag.treeChildren.rawValue)
            encode(range, into: &w)
            w.write(varint: UInt64(nodes.count))
            for node in nodes {
                w.write(UInt8(node.level))
                w.write(varint: UInt64(node.id))
            }
        case .treeSegments(let range, let segments):
            w.write(Tag.treeSegments.rawValue)
            encode(range, into: &w)
            w.write(varint: UInt64(segments.count))
            for segment in segments { w.write(varint: UInt64(segment)) }
        case .coordinatePut(let put):
            w.write(Tag.coordinatePut.rawValue)
            w.write(bytes: put.key)
            writeOptional(put.value, into: &w)
            w.write(bool: put.context != nil)
            put.context?.encode(into: &w)
            w.write(varint: UInt64(put.w ?? 0))
            // (Never one the decoder would refuse: that would close the link.)
            let requestId = put.requestId.map { Array($0.utf8) }.flatMap { $0.count <= ForwardedPut.maxRequestIdBytes ? $0 : nil }
            writeOptional(requestId, into: &w)
        }
    }

    private static func decodeRequest(_ r: inout ByteReader, traced: Bool = false) throws(ByteDecodingError)
        -> PeerRequest
    {
        switch try tag(&r) {
        case .traced:
            guard !traced else { throw ByteDecodingError("a traced request inside a traced request") }
            let id = try r.readString(max: TraceTag.maxIdBytes)
            guard TraceTag.isValid(id: id) else { throw ByteDecodingError("invalid trace id") }
            guard let message = TraceMessage(rawValue: try r.readByte()) else {
                throw ByteDecodingError("unknown traced message kind")
            }
            return .traced(TraceTag(id: id, message: message), try decodeRequest(&r, traced: true))
        case .replicaGet:
            return .replica(.get(key: try r.readBytes(max: maxKey)))
        case .replicaPut:
            let key = try r.readBytes(max: maxKey)
            let object = try VersionedObject.decode(from: &r)
            let hintFor: String? = try r.readBool() ? r.readString(max: 255) : nil
            return .replica(.put(key: key, object: object, hintFor: hintFor))
        case .replicaReap:
            let key = try r.readBytes(max: maxKey)
            return .replica(.reap(key: key, object: try VersionedObject.decode(from: &r)))
        case .gossipDigest:
            return .gossipDigest(try decodeDigests(&r))
        case .gossipRows:
            return .gossipRows(try decodeRows(&r))
        case .pull:
            let members = try decodeMembers(&r)
            guard members.count == 1 else { throw ByteDecodingError("pull names one requester") }
            let after: [UInt8]? = try r.readBool() ? r.readBytes(max: maxKey) : nil
            return .pull(requester: members[0], after: after)
        case .treeChildren:
            let range = try decodeRange(&r)
            let count = try r.readInt(max: 65_536)
            var nodes: [MerkleNodeID] = []
            for _ in 0..<count {
                let level = Int(try r.readByte())
                guard level < MerkleTree.depth else { throw ByteDecodingError("tree level out of range") }
                let id = try r.readVarint()
                guard id < UInt64(1) << (MerkleTree.bitsPerLevel * level) else {
                    throw ByteDecodingError("tree node id out of range")
                }
                nodes.append(MerkleNodeID(level: level, id: UInt32(id)))
            }
            return .treeChildren(range: range, nodes: nodes)
        case .treeSegments:
            let range = try decodeRange(&r)
            let count = try r.readInt(max: 65_536)
            var segments: [UInt32] = []
            for _ in 0..<count {
                let segment = try r.readVarint()
                guard segment < UInt64(1) << (MerkleTree.bitsPerLevel * MerkleTree.depth) else {
                    throw ByteDecodingError("tree segment out of range")
                }
                segments.append(UInt32(segment))
            }
            return .treeSegments(range: range, segments: segments)
        case .coordinatePut:
            let key = try r.readBytes(max: maxKey)
            let value: [UInt8]? = try r.readBool() ? r.readBytes() : nil
            let context: CausalHistory? = try r.readBool() ? CausalHistory.decode(from: &r) : nil
            let w = try r.readInt(max: 1024)
            let requestId: String? = try r.readBool() ? r.readString(max: ForwardedPut.maxRequestIdBytes) : nil
            return .coordinatePut(
                ForwardedPut(key: key, value: value, context: context, w: w == 0 ? nil : w, requestId: requestId))
        default:
            throw ByteDecodingError("unknown request type")
        }
    }

    private static func encode(_ response: PeerResponse, into w: inout ByteWriter) {
        switch response {
        case .replica(.object(let object)):
            w.write(Tag.replyObject.rawValue)
            w.write(bool: object != nil)
            object?.encode(into: &w)
        case .replica(.stored):
            w.write(Tag.replyStored.rawValue)
        case .replica(.failed(let reason)):
            w.write(Tag.replyFailed.rawValue)
            w.write(string: reason)
        case .gossipDelta(let rows, let wanted):
            w.write(Tag.replyGossipDelta.rawValue)
            encode(rows, into: &w)
            encode(wanted, into: &w)
        case .coordinated(let result):
            w.write(Tag.replyCoordinated.rawValue)
            w.write(bool: result.succeeded)
            w.write(string: result.coordinator)
            w.write(varint: UInt64(result.acks.count))
            for ack in result.acks { w.write(string: ack) }
            w.write(varint: UInt64(result.required))
            result.context.encode(into: &w)
            writeOptional(result.error, into: &w)
            w.write(bool: result.dot != nil)
            result.dot?.encode(into: &w)
            w.write(varint: UInt64(result.asked.count))
            for replica in result.asked {
                w.write(string: replica.node)
                writeOptional(replica.hintFor, into: &w)
            }
            // Appended, and only when there is one: every other answer is encoded as before.
            if let refusal = result.refusal { encode(refusal, into: &w) }
        case .error(let reason):
            w.write(Tag.replyError.rawValue)
            w.write(string: reason)
        case .treeHashes(let lists):
            w.write(Tag.replyTreeHashes.rawValue)
            w.write(varint: UInt64(lists.count))
            for list in lists {
                w.write(varint: UInt64(list.count))
                for hash in list { w.write(varint: hash) }
            }
        case .treeKeys(let entries):
            w.write(Tag.replyTreeKeys.rawValue)
            w.write(varint: UInt64(entries.count))
            for entry in entries {
                w.write(bytes: entry.key)
                w.write(varint: entry.hash)
            }
        case .transfer(let entries, let next):
            w.write(Tag.replyTransfer.rawValue)
            w.write(varint: UInt64(entries.count))
            for entry in entries {
                w.write(bytes: entry.key)
                entry.object.encode(into: &w)
            }
            writeOptional(next, into: &w)
        }
    }

    private static func decodeResponse(_ r: inout ByteReader) throws(ByteDecodingError) -> PeerResponse {
        switch try tag(&r) {
        case .replyObject:
            return .replica(.object(try r.readBool() ? VersionedObject.decode(from: &r) : nil))
        case .replyStored:
            return .replica(.stored)
        case .replyFailed:
            return .replica(.failed(try r.readString()))
        case .replyGossipDelta:
            return .gossipDelta(rows: try decodeRows(&r), wanted: try decodeDigests(&r))
        case .replyCoordinated:
            let succeeded = try r.readBool()
            let coordinator = try r.readString(max: 255)
            let count = try r.readInt(max: maxMembers)
            var acks: [NodeName] = []
            for _ in 0..<count { acks.append(try r.readString(max: 255)) }
            let required = try r.readInt(max: 1024)
            let context = try CausalHistory.decode(from: &r)
            let error: String? = try r.readBool() ? r.readString() : nil
            let dot: Dot? = try r.readBool() ? Dot.decode(from: &r) : nil
            var asked: [HintedReplica] = []
            for _ in 0..<(try r.readInt(max: maxMembers)) {
                let node = try r.readString(max: 255)
                asked.append(HintedReplica(node: node, hintFor: try r.readBool() ? r.readString(max: 255) : nil))
            }
            let refusal = r.isAtEnd ? nil : try decodeRefusal(&r)
            return .coordinated(
                WriteResult(
                    succeeded: succeeded, coordinator: coordinator, acks: acks, required: required, context: context,
                    error: error, dot: dot, asked: asked, refusal: refusal))
        case .replyError:
            return .error(try r.readString())
        case .replyTreeHashes:
            let count = try r.readInt(max: 65_536)
            var lists: [[UInt64]] = []
            for _ in 0..<count {
                let size = try r.readInt(max: MerkleTree.fanout)
                var list: [UInt64] = []
                for _ in 0..<size { list.append(try r.readVarint()) }
                lists.append(list)
            }
            return .treeHashes(lists)
        case .replyTreeKeys:
            let count = try r.readInt(max: 1_000_000)
            var entries: [KeyHash] = []
            for _ in 0..<count {
                let key = try r.readBytes(max: maxKey)
                entries.append(KeyHash(key: key, hash: try r.readVarint()))
            }
            return .treeKeys(entries)
        case .replyTransfer:
            let count = try r.readInt(max: 100_000)
            var entries: [KeyedObject] = []
            for _ in 0..<count {
                let key = try r.readBytes(max: maxKey)
                entries.append(KeyedObject(key: key, object: try VersionedObject.decode(from: &r)))
            }
            let next: [UInt8]? = try r.readBool() ? r.readBytes(max: maxKey) : nil
            return .transfer(entries: entries, next: next)
        default:
            throw ByteDecodingError("unknown response type")
        }
    }

    private static func encode(_ range: KeyRange, into w: inout ByteWriter) {
        w.write(raw: range.start.bytes)
        w.write(raw: range.end.bytes)
    }

    private static func decodeRange(_ r: inout ByteReader) throws(ByteDecodingError) -> KeyRange {
        KeyRange(start: RingPosition(bytes: try r.readRaw(16)), end: RingPosition(bytes: try r.readRaw(16)))
    }

    private static func writeOptional(_ value: String?, into w: inout ByteWriter) {
        w.write(bool: value != nil)
        if let value { w.write(string: value) }
    }

    private static func writeOptional(_ value: [UInt8]?, into w: inout ByteWriter) {
        w.write(bool: value != nil)
        if let value { w.write(bytes: value) }
    }

    private static func encode(_ members: [Member], into w: inout ByteWriter) {
        w.write(varint: UInt64(members.count))
        for m in members { encode(m, into: &w) }
    }

    private static func encode(_ m: Member, into w: inout ByteWriter) {
        w.write(string: m.name)
        w.write(string: m.peerAddress)
        w.write(string: m.httpAddress)
        w.write(varint: UInt64(m.tokens.count))
        for t in m.tokens { w.write(raw: t.bytes) }
        encode(m.status, into: &w)
        encodeVersion(heartbeat: m.heartbeat, generation: m.generation, into: &w)
        w.write(bool: m.settled)
        w.write(bytes: m.admission)
    }

    private static func decodeMembers(_ r: inout ByteReader) throws(ByteDecodingError) -> [Member] {
        let count = try r.readInt(max: maxMembers)
        var members: [Member] = []
        for _ in 0..<count { members.append(try decodeMember(&r)) }
        return members
    }

    private static func decodeMember(_ r: inout ByteReader) throws(ByteDecodingError) -> Member {
        let name = try r.readString(max: 255)
        let peer = try r.readString(max: 255)
        let http = try r.readString(max: 255)
        let tokenCount = try r.readInt(max: maxTokens)
        var tokens: [RingPosition] = []
        for _ in 0..<tokenCount { tokens.append(RingPosition(bytes: try r.readRaw(16))) }
        let status = try decodeStatus(&r)
        let (heartbeat, generation) = try decodeVersion(&r)
        let settled = try r.readBool()
        let admission = try r.readBytes(max: 64)
        return Member(
            name: name, peerAddress: peer, httpAddress: http, tokens: tokens, status: status,
            heartbeat: heartbeat, generation: generation, settled: settled, admission: admission)
    }

    private static func encode(_ status: MemberStatus, into w: inout ByteWriter) {
        w.write(UInt8(MemberStatus.allCases.firstIndex(of: status)!))
    }

    private static func decodeStatus(_ r: inout ByteReader) throws(ByteDecodingError) -> MemberStatus {
        let statusIndex = Int(try r.readByte())
        guard statusIndex < MemberStatus.allCases.count else { throw ByteDecodingError("bad member status") }
        return MemberStatus.allCases[statusIndex]
    }

    private static func encodeVersion(heartbeat: UInt64, generation: UInt64, into w: inout ByteWriter) {
        w.write(varint: heartbeat)
        w.write(varint: generation)
    }

    /// A heartbeat and a generation, each at most `Member.maxVersion`.
    private static func decodeVersion(_ r: inout ByteReader) throws(ByteDecodingError) -> (UInt64, UInt64) {
        let heartbeat = try r.readVarint()
        let generation = try r.readVarint()
        guard heartbeat <= Member.maxVersion, generation <= Member.maxVersion else {
            throw ByteDecodingError("member heartbeat or generation out of range")
        }
        return (heartbeat, generation)
    }

    /// A `Member.fingerprint`: 8 bytes, big-endian.
    private static func encodeFingerprint(_ fingerprint: UInt64, into w: inout ByteWriter) {
        w.write(raw: withUnsafeBytes(of: fingerprint.bigEndian, Array.init))
    }

    private static func decodeFingerprint(_ r: inout ByteReader) throws(ByteDecodingError) -> UInt64 {
        try r.readRaw(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    private static func encode(_ digests: [MemberDigest], into w: inout ByteWriter) {
        w.write(varint: UInt64(digests.count))
        for d in digests {
            w.write(string: d.name)
            encodeVersion(heartbeat: d.heartbeat, generation: d.generation, into: &w)
            encodeFingerprint(d.identity, into: &w)
        }
    }

    private static func decodeDigests(_ r: inout ByteReader) throws(ByteDecodingError) -> [MemberDigest] {
        let count = try r.readInt(max: maxMembers)
        var digests: [MemberDigest] = []
        for _ in 0..<count {
            let name = try r.readString(max: 255)
            let (heartbeat, generation) = try decodeVersion(&r)
            let identity = try decodeFingerprint(&r)
            digests.append(MemberDigest(name: name, generation: generation, heartbeat: heartbeat, identity: identity))
        }
        return digests
    }

    /// Gossip rows: a byte says whole (1) or state only (0).
    private static func encode(_ rows: [GossipRow], into w: inout ByteWriter) {
        w.write(varint: UInt64(rows.count))
        for row in rows {
            switch row {
            case .full(let member):
                w.write(1 as UInt8)
                encode(member, into: &w)
            case .state(let state):
                w.write(0 as UInt8)
                w.write(string: state.name)
                encode(state.status, into: &w)
                encodeVersion(heartbeat: state.heartbeat, generation: state.generation, into: &w)
                w.write(bool: state.settled)
                encodeFingerprint(state.identity, into: &w)
            }
        }
    }

    private static func decodeRows(_ r: inout ByteReader) throws(ByteDecodingError) -> [GossipRow] {
        let count = try r.readInt(max: maxMembers)
        var rows: [GossipRow] = []
        for _ in 0..<count {
            switch try r.readByte() {
            case 1: rows.append(.full(try decodeMember(&r)))
            case 0:
                let name = try r.readString(max: 255)
                let status = try decodeStatus(&r)
                let (heartbeat, generation) = try decodeVersion(&r)
                let settled = try r.readBool()
                let identity = try decodeFingerprint(&r)
                rows.append(
                    .state(
                        MemberState(
                            name: name, generation: generation, heartbeat: heartbeat, status: status, settled: settled,
                            identity: identity)))
            default: throw ByteDecodingError("bad gossip row kind")
            }
        }
        return rows
    }
}

extension PeerCodec {
    static func encode(_ refusal: ObjectLimitRefusal, into w: inout ByteWriter) {
        w.write(refusal.bound.rawValue)
        w.write(bytes: refusal.key)
        w.write(varint: UInt64(refusal.limit))
        for size in [refusal.current, refusal.attempted] {
            w.write(varint: UInt64(size.siblings))
            w.write(varint: UInt64(size.bytes))
        }
    }

    static func decodeRefusal(_ r: inout ByteReader) throws(ByteDecodingError) -> ObjectLimitRefusal {
        guard let bound = ObjectLimitRefusal.Bound(rawValue: try r.readByte()) else {
            throw ByteDecodingError("unknown object limit")
        }
        let key = try r.readBytes(max: maxKey)
        // Sizes are reported, never computed with: any value a peer could hold will do.
        let limit = try r.readInt(max: Int(UInt32.max))
        var sizes: [ObjectSize] = []
        for _ in 0..<2 {
            let siblings = try r.readInt(max: Int(UInt32.max))
            sizes.append(ObjectSize(siblings: siblings, bytes: try r.readInt(max: Int(UInt32.max))))
        }
        return ObjectLimitRefusal(key: key, bound: bound, limit: limit, current: sizes[0], attempted: sizes[1])
    }

    /// Room left in a frame for the length, the request id and a tag.
    static let frameBudget = PeerFrameDecoder.defaultMaxFrameSize - 64

    /// Why `message` cannot be sent in one frame (nil when it can). A frame over the limit
    /// would make the receiver close the link every other request shares, so such a
    /// message is answered with an error instead of being sent. Values dominate the size,
    /// so only a message whose values come near the limit is encoded to be measured.
    /// An object with more versions than a peer decodes (stored by a build before the
    /// object limits) is refused the same way: the receiver would close the link on it.
    public static func tooLarge(_ message: PeerMessage) -> String? {
        // (A traced request counts its inner request's objects, and is measured whole: its
        // tag can be longer than the frame's 64 bytes of slack.)
        guard let (values, versions) = objectBytes(message) else { return nil }
        if versions > VersionedObject.decodeVersionLimit {
            return
                "the key holds \(versions) versions, more than a peer decodes (\(VersionedObject.decodeVersionLimit)); read it from a home node with r=1 and write back with its context to resolve them"
        }
        guard values > frameBudget / 2 else { return nil }
        let size = encode(message).count
        guard size > frameBudget else { return nil }
        return "\(size) bytes do not fit in one peer frame (\(frameBudget)); the key holds too many or too large versions"
    }

    /// The value bytes (64 more per version) of the objects a message carries, and the
    /// most versions one of them has; nil for a message without objects.
    static func objectBytes(_ message: PeerMessage) -> (bytes: Int, versions: Int)? {
        var values = 0
        var versions = 0
        func add(_ object: VersionedObject) {
            versions = max(versions, object.versions.count)
            for version in object.versions { values += (version.value?.count ?? 0) + 64 }
        }
        switch message {
        case .request(let id, .traced(_, let inner)):
            return objectBytes(.request(id: id, inner))
        case .request(_, .replica(.put(_, let object, _))), .request(_, .replica(.reap(_, let object))),
            .response(_, .replica(.object(let object?))):
            add(object)
        case .response(_, .transfer(let entries, _)):
            for entry in entries { add(entry.object) }
        default:
            return nil
        }
        return (values, versions)
    }

    /// About how many bytes a message holds in memory (its objects' values, else a few
    /// hundred): what a queue of messages held back is bounded by.
    public static func approximateBytes(_ message: PeerMessage) -> Int {
        256 + (objectBytes(message)?.bytes ?? 0)
    }
}

/// Splits the peer byte stream into frames: a 4-byte big-endian length, then that many
/// bytes of `PeerCodec` payload, followed (once a session authenticates the connection)
/// by the payload's `FrameAuthenticator` tag. A frame over the connection's limit, one
/// whose tag is wrong, or a payload that does not decode, is an error that closes the
/// connection.
///
/// Until the handshake is done only small frames are allowed (`PeerChannelState`), so a
/// stranger cannot make a node buffer megabytes before proving anything.
public struct PeerFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = PeerMessage

    public let state: PeerChannelState

    public init(state: PeerChannelState = PeerChannelState(maxFrameSize: PeerFrameDecoder.defaultMaxFrameSize)) {
        self.state = state
    }

    /// Room for the largest object a node stores (`ObjectLimits.ceilingBytes`) with its key.
    public static let defaultMaxFrameSize = ObjectLimits.peerFrameBytes
    /// Room for a hello or a proof, and nothing more.
    public static let handshakeMaxFrameSize = 1024

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        let maxFrameSize = state.maxFrameSize
        let tagBytes = state.session == nil ? 0 : FrameAuthenticator.tagBytes
        // A TLS record (0x16 0x03 ...) where a frame should start: say what it is.
        if !state.isEstablished, length >> 16 == 0x1603 {
            throw PeerProtocolError.handshake("the peer speaks TLS and this node was started without --tls-cert")
        }
        guard Int(length) > tagBytes, Int(length) <= maxFrameSize else {
            throw PeerProtocolError.frameTooLarge(Int(length), limit: maxFrameSize)
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        let payload = buffer.readBytes(length: Int(length) - tagBytes)!
        if tagBytes > 0 {
            let tag = buffer.readBytes(length: tagBytes)!
            guard state.session!.verify(received: payload, tag: tag) else {
                throw PeerProtocolError.malformed("frame authentication failed (changed, injected or replayed)")
            }
        }
        do {
            context.fireChannelRead(wrapInboundOut(try PeerCodec.decode(payload)))
        } catch {
            throw PeerProtocolError.malformed(error.reason)
        }
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 { throw PeerProtocolError.truncated(buffer.readableBytes) }
        return .needMoreData
    }
}

/// What the frame decoder and encoder of one peer connection share with the handler that
/// runs its handshake: the largest frame accepted now (small until the peer proved the
/// cluster secret), and the session that tags frames after it. All three live on the
/// connection's event loop.
public final class PeerChannelState: @unchecked Sendable {
    public var maxFrameSize: Int
    public var session: FrameAuthenticator?

    public init(maxFrameSize: Int) { self.maxFrameSize = maxFrameSize }

    public static func forHandshake() -> PeerChannelState {
        PeerChannelState(maxFrameSize: PeerFrameDecoder.handshakeMaxFrameSize)
    }

    /// The handshake is done: full-size frames, tagged from now on if there is a session.
    public func established(session: FrameAuthenticator?) {
        maxFrameSize = PeerFrameDecoder.defaultMaxFrameSize
        self.session = session
    }

    public var isEstablished: Bool { maxFrameSize > PeerFrameDecoder.handshakeMaxFrameSize }
}

/// Writes `PeerMessage`s as length-prefixed frames (tagged once the connection has a session).
public struct PeerFrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = PeerMessage

    public let state: PeerChannelState?

    public init(state: PeerChannelState? = nil) { self.state = state }

    public func encode(data: PeerMessage, out: inout ByteBuffer) throws {
        let payload = PeerCodec.encode(data)
        let tag = state?.session?.tag(sending: payload) ?? []
        out.writeInteger(UInt32(payload.count + tag.count))
        out.writeBytes(payload)
        out.writeBytes(tag)
    }
}

/// Why a peer connection was closed.
public enum PeerProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    case frameTooLarge(Int, limit: Int)
    case malformed(String)
    case truncated(Int)
    case handshake(String)

    public var description: String {
        switch self {
        case .frameTooLarge(let size, let limit): "peer frame of \(size) bytes exceeds the \(limit)-byte limit"
        case .malformed(let reason): "malformed peer message: \(reason)"
        case .truncated(let bytes): "connection closed inside a frame (\(bytes) bytes left)"
        case .handshake(let reason): "peer handshake failed: \(reason)"
        }
    }
}
