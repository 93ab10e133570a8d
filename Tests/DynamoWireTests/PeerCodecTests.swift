import DynamoCore
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@testable import DynamoWire

@Suite struct PeerCodecTests {
    static let object: VersionedObject = {
        var o = try! VersionedObject().writing(
            Array("hello".utf8), context: nil, actor: "n1", now: 42, policy: ClockPolicy()
        ).object
        o = try! o.writing(nil, context: nil, actor: "n2", now: 43, policy: ClockPolicy()).object
        return o
    }()

    static let messages: [PeerMessage] = [
        .hello(Hello(name: "n1")),
        .request(id: 1, .replica(.get(key: [0, 1, 255]))),
        .request(id: 2, .replica(.put(key: Array("k".utf8), object: object, hintFor: "n4"))),
        .request(id: 3, .replica(.put(key: Array("k".utf8), object: object, hintFor: nil))),
        .request(id: 8, .replica(.reap(key: Array("k".utf8), object: object))),
        .request(
            id: 9,
            .pull(
                requester: Member(
                    name: "n6", peerAddress: "a:1", httpAddress: "a:2",
                    tokens: Token.defaultPositions(for: "n6", count: 2),
                    status: .joining), after: [1, 2])),
        .response(id: 10, .transfer(entries: [KeyedObject(key: [1], object: object)], next: [1])),
        .response(id: 11, .transfer(entries: [], next: nil)),
        .request(
            id: 12,
            .treeChildren(
                range: KeyRange(start: RingPosition(5), end: RingPosition(1)),
                nodes: [MerkleNodeID(level: 0, id: 0), MerkleNodeID(level: 3, id: 4095)])),
        .request(
            id: 13,
            .treeSegments(range: KeyRange(start: RingPosition(1), end: RingPosition(9)), segments: [0, 1_048_575])),
        .response(id: 14, .treeHashes([[1, 2, UInt64.max], []])),
        .response(id: 15, .treeKeys([KeyHash(key: [1, 2], hash: 77)])),
        .request(
            id: 4,
            .gossipRows([
                .full(
                    Member(
                        name: "n1", peerAddress: "127.0.0.1:1", httpAddress: "127.0.0.1:2",
                        tokens: Token.defaultPositions(for: "n1", count: 3), status: .up, heartbeat: 9, generation: 2)),
                .state(
                    MemberState(
                        name: "n2", generation: 3, heartbeat: 1 << 40, status: .leaving, settled: true,
                        identity: .max)),
            ])),
        .request(id: 20, .gossipDigest([MemberDigest(name: "n1", generation: 2, heartbeat: 9, identity: 0x0102_0304_0506_0708)])),
        .request(
            id: 5,
            .coordinatePut(ForwardedPut(key: [1], value: [2, 3], context: object.context, w: 3, requestId: "n2-7f3a9c-17"))),
        .request(id: 6, .coordinatePut(ForwardedPut(key: [1], value: nil, context: nil, w: nil))),
        .request(id: 21, .traced(TraceTag(id: "n1-7f3a9c-18", message: .put), .replica(.put(key: [1], object: object, hintFor: "n3")))),
        .request(id: 22, .traced(TraceTag(id: "t", message: .forward), .coordinatePut(ForwardedPut(key: [1], value: [2], context: nil, w: nil)))),
        .request(id: 23, .traced(TraceTag(id: "t", message: .repair), .replica(.get(key: [9])))),
        .response(id: 1, .replica(.object(object))),
        .response(id: 2, .replica(.object(nil))),
        .response(id: 3, .replica(.stored)),
        .response(id: 4, .replica(.failed("disk full"))),
        .response(id: 5, .gossipDelta(rows: [], wanted: [])),
        .response(
            id: 17,
            .gossipDelta(
                rows: [
                    .state(
                        MemberState(name: "n3", generation: 1, heartbeat: 2, status: .left, settled: false, identity: 1))
                ],
                wanted: [MemberDigest(name: "n4", generation: 0, heartbeat: 0, identity: 0)])),
        .response(
            id: 6,
            .coordinated(
                WriteResult(
                    succeeded: true, coordinator: "n2", acks: ["n2", "n3"], required: 2, context: object.context,
                    dot: Dot(actor: "n2", counter: 7),
                    asked: [.init(node: "n2", hintFor: nil), .init(node: "n5", hintFor: "n3")]))),
        .response(
            id: 7,
            .coordinated(
                WriteResult(succeeded: false, coordinator: "n2", acks: [], required: 2, context: .empty, error: "io"))),
        .response(
            id: 16,
            .coordinated(
                WriteResult(
                    succeeded: false, coordinator: "n2", acks: [], required: 2, context: .empty, error: "refused",
                    refusal: ObjectLimitRefusal(
                        key: Array("cart".utf8), bound: .maxObjectBytes, limit: 12 << 20,
                        current: .init(siblings: 12, bytes: 12 << 20), attempted: .init(siblings: 13, bytes: 13 << 20))
                ))),
        .response(id: UInt64.max, .error("unknown")),
    ]

    /// A write refused by the object limits travels back to the node that forwarded it,
    /// refusal and all; an answer without one is encoded exactly as before it existed.
    @Test func aForwardedWriteKeepsItsRefusal() throws {
        let plain = WriteResult(succeeded: false, coordinator: "n2", acks: [], required: 2, context: .empty, error: "x")
        var refused = plain
        refused.refusal = ObjectLimitRefusal(
            key: [1], bound: .maxSiblings, limit: 100, current: .init(siblings: 100, bytes: 9),
            attempted: .init(siblings: 101, bytes: 10))
        let without = PeerCodec.encode(.response(id: 1, .coordinated(plain)))
        let with = PeerCodec.encode(.response(id: 1, .coordinated(refused)))
        #expect(Array(with.prefix(without.count)) == without)
        #expect(try PeerCodec.decode(with) == .response(id: 1, .coordinated(refused)))
    }

    /// An object stored before the limits with more versions than a peer decodes is never
    /// sent: the receiver would close the link every other request shares.
    @Test func anObjectPastTheDecodeLimitIsNotSent() {
        let count = VersionedObject.decodeVersionLimit + 1
        let object = VersionedObject(
            versions: (1...count).map {
                Version(dot: Dot(actor: "n1", counter: UInt64($0)), past: .empty, value: [], timestamp: 1)
            })
        let problem = PeerCodec.tooLarge(.response(id: 1, .replica(.object(object))))
        #expect(problem?.contains("10001 versions") == true, "\(problem ?? "nil")")
        #expect(PeerCodec.tooLarge(.response(id: 1, .replica(.object(Self.object)))) == nil)
        // A traced replica put is checked as its inner put (it once went unchecked).
        let put = PeerRequest.replica(.put(key: [1], object: object, hintFor: nil))
        #expect(PeerCodec.tooLarge(.request(id: 2, .traced(TraceTag(id: "t", message: .put), put))) != nil)
        #expect(PeerCodec.approximateBytes(.request(id: 2, .traced(TraceTag(id: "t", message: .put), put))) > count * 64)
        // At the frame's edge the tag counts: a put that just fits untraced does not with a
        // 64-byte trace id.
        func sized(_ size: Int) -> PeerRequest {
            let version = Version(dot: Dot(actor: "n1", counter: 1), past: .empty, value: [UInt8](repeating: 7, count: size), timestamp: 1)
            return .replica(.put(key: [1], object: VersionedObject(versions: [version]), hintFor: nil))
        }
        let probe = PeerCodec.encode(.request(id: 3, sized(0))).count
        let edge = sized(PeerCodec.frameBudget - probe - 8)
        #expect(PeerCodec.tooLarge(.request(id: 3, edge)) == nil)
        let tag = TraceTag(id: String(repeating: "t", count: 64), message: .put)
        #expect(PeerCodec.tooLarge(.request(id: 3, .traced(tag, edge))) != nil)
        let encoded = PeerCodec.encode(.response(id: 1, .replica(.object(object))))
        #expect(throws: ByteDecodingError.self) { try PeerCodec.decode(encoded) }
    }

    @Test(arguments: 0..<messages.count) func everyMessageRoundTrips(index: Int) throws {
        let message = Self.messages[index]
        #expect(try PeerCodec.decode(PeerCodec.encode(message)) == message)
    }

    /// A traced request is one wrapper with a valid id and a known kind: anything else is
    /// refused (the link closes), and the encoder never sends what would be refused.
    @Test func tracedRequestsAreOneWellFormedWrapper() throws {
        let inner = PeerRequest.replica(.get(key: [1]))
        func bytes(id: String, kind: UInt8, nested: Bool = false) -> [UInt8] {
            var w = ByteWriter(capacity: 64)
            w.write(PeerCodec.Tag.request.rawValue)
            w.write(varint: 1)
            w.write(PeerCodec.Tag.traced.rawValue)
            w.write(string: id)
            w.write(kind)
            if nested {
                w.write(PeerCodec.Tag.traced.rawValue)
                w.write(string: "x")
                w.write(1)
            }
            w.write(PeerCodec.Tag.replicaGet.rawValue)
            w.write(bytes: [1])
            return w.bytes
        }
        #expect(try PeerCodec.decode(bytes(id: "ok-1", kind: 1)) == .request(id: 1, .traced(TraceTag(id: "ok-1", message: .get), inner)))
        for bad in [bytes(id: "", kind: 1), bytes(id: "a b", kind: 1), bytes(id: String(repeating: "a", count: 65), kind: 1),
            bytes(id: "ok", kind: 0), bytes(id: "ok", kind: 99), bytes(id: "ok", kind: 1, nested: true)]
        {
            #expect(throws: ByteDecodingError.self) { try PeerCodec.decode(bad) }
        }
        // What would be refused goes unwrapped (or once wrapped) instead.
        let invalid = PeerMessage.request(id: 2, .traced(TraceTag(id: "a b", message: .get), inner))
        #expect(try PeerCodec.decode(PeerCodec.encode(invalid)) == .request(id: 2, inner))
        let twice = PeerMessage.request(id: 3, .traced(TraceTag(id: "a", message: .get), .traced(TraceTag(id: "b", message: .put), inner)))
        #expect(try PeerCodec.decode(PeerCodec.encode(twice)) == .request(id: 3, .traced(TraceTag(id: "b", message: .put), inner)))
    }

    @Test func frameDecoderHandlesBytesOneAtATimeAndWhole() throws {
        let pairs: [(ByteBuffer, [PeerMessage])] = Self.messages.map { message in
            var buffer = ByteBuffer()
            try! PeerFrameEncoder().encode(data: message, out: &buffer)
            return (buffer, [message])
        }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { PeerFrameDecoder() }
    }

    /// After the handshake every frame carries a tag: frames pass between two channels that
    /// share a session, and a changed or replayed frame closes the connection.
    @Test func taggedFramesPassAndChangedOrReplayedOnesAreRefused() throws {
        let key = try ClusterKey(text: "a cluster secret for the test")
        let nonces = ([UInt8](repeating: 1, count: 16), [UInt8](repeating: 2, count: 16))
        let sending = PeerChannelState(maxFrameSize: PeerFrameDecoder.defaultMaxFrameSize)
        sending.session = key.session(role: .dialer, me: "n1", peer: "n2", myNonce: nonces.0, peerNonce: nonces.1)
        func receiver() -> EmbeddedChannel {
            let state = PeerChannelState(maxFrameSize: PeerFrameDecoder.defaultMaxFrameSize)
            state.session = key.session(role: .listener, me: "n2", peer: "n1", myNonce: nonces.1, peerNonce: nonces.0)
            return EmbeddedChannel(handler: ByteToMessageHandler(PeerFrameDecoder(state: state)))
        }
        var frames: [ByteBuffer] = []
        for message in Self.messages.prefix(3) {
            var buffer = ByteBuffer()
            try PeerFrameEncoder(state: sending).encode(data: message, out: &buffer)
            frames.append(buffer)
        }
        let good = receiver()
        for frame in frames { try good.writeInbound(frame) }
        for message in Self.messages.prefix(3) { #expect(try good.readInbound(as: PeerMessage.self) == message) }

        var changed = frames[0]
        changed.setInteger(changed.getInteger(at: 6, as: UInt8.self)! ^ 1, at: 6)
        #expect(throws: PeerProtocolError.self) { try receiver().writeInbound(changed) }
        let replayed = receiver()
        try replayed.writeInbound(frames[0])
        #expect(throws: PeerProtocolError.self) { try replayed.writeInbound(frames[0]) }
        #expect(throws: PeerProtocolError.self) { try receiver().writeInbound(frames[1]) }
    }

    @Test func oversizeFramesAreRejectedBeforeTheyAreBuffered() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(PeerFrameDecoder(state: PeerChannelState(maxFrameSize: 1024))))
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(1_000_000))
        #expect(throws: PeerProtocolError.self) { try channel.writeInbound(buffer) }
    }

    @Test(arguments: [
        [UInt8](), [0x7f], [0x01, 0x41, 0x42, 0x43, 0x44, 0, 1, 0], [0x02, 0x01, 0x99], [0x03, 0x01, 0x20, 0x01],
        [0x02, 0x01, 0x10, 0xff, 0xff, 0xff, 0xff, 0x0f],
    ])
    func garbagePayloadsAreDecodingErrors(bytes: [UInt8]) {
        #expect(throws: ByteDecodingError.self) { try PeerCodec.decode(bytes) }
    }

    @Test func garbageFramesCloseTheChannelWithAProtocolError() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(PeerFrameDecoder()))
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(3))
        buffer.writeBytes([0xEE, 0xEE, 0xEE])
        #expect(throws: PeerProtocolError.self) { try channel.writeInbound(buffer) }
    }

    @Test func aConnectionClosedMidFrameIsReported() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(PeerFrameDecoder()))
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(100))
        buffer.writeBytes([1, 2, 3])
        try channel.writeInbound(buffer)
        #expect(throws: PeerProtocolError.self) { try channel.finish() }
    }

    /// Random and corrupted bytes never crash the decoder, and whatever it accepts is a
    /// message in its own right: it encodes back to as many bytes as it came from (the same
    /// fields, siblings perhaps in their canonical order) and decodes again to itself, so a
    /// decoder that dropped bits (it once kept only the low bit of a varint's tenth byte)
    /// or invented fields fails here; and most random bytes are refused.
    @Test func randomBytesNeverCrashTheDecoder() {
        var rng = SeededRandom(seed: 3)
        var refused = 0
        for _ in 0..<5000 {
            let bytes = (0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if let message = try? PeerCodec.decode(bytes) {
                Self.expectCanonical(message, from: bytes)
            } else {
                refused += 1
            }
            // Valid message with one corrupted byte.
            var valid = PeerCodec.encode(Self.messages[Int.random(in: 0..<Self.messages.count, using: &rng)])
            valid[Int.random(in: 0..<valid.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            if let message = try? PeerCodec.decode(valid) { Self.expectCanonical(message, from: valid) }
        }
        #expect(refused > 4_000, "random bytes are mostly not a message: \(refused) of 5000 refused")
    }

    static func expectCanonical(_ message: PeerMessage, from bytes: [UInt8]) {
        let again = PeerCodec.encode(message)
        #expect(again.count == bytes.count, "\(bytes) decoded to \(message), which encodes to \(again)")
        #expect((try? PeerCodec.decode(again)) == message, "\(message) does not survive a round trip")
    }

    @Test func varintsHaveOneEncoding() throws {
        var overlong = ByteReader([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])
        #expect(throws: ByteDecodingError.self) { try overlong.readVarint() }
        var padded = ByteReader([0x80, 0x00])
        #expect(throws: ByteDecodingError.self) { try padded.readVarint() }
        var largest = ByteReader([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
        #expect(try largest.readVarint() == UInt64.max)
        var zero = ByteReader([0x00])
        #expect(try zero.readVarint() == 0)
    }
}
