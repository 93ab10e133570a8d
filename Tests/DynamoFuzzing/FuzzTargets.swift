public import DynamoCore
import DynamoStorage
import DynamoWire
import NIOCore
import NIOEmbedded

/// What each fuzzer does with one input: decode it, check what decodes re-encodes to
/// itself, and run it through whatever consumes it in the node. Shared by the
/// property-based tests (`make test`) and the libFuzzer driver (`make fuzz-libfuzzer`).
///
/// A trap anywhere is the bug being hunted; the returned strings are broken invariants.
public enum FuzzTarget: UInt8, CaseIterable, Sendable {
    case context, objects, gossip, peerMessage, frames

    public func run(_ bytes: [UInt8]) -> [String] {
        switch self {
        case .context: Self.context(bytes)
        case .objects: Self.objects(bytes)
        case .gossip: Self.gossip(bytes)
        case .peerMessage: Self.peerMessage(bytes)
        case .frames: Self.frames(bytes)
        }
    }

    static let policy = ClockPolicy()

    /// A context header, then two writes with it by each actor it names (their counters are
    /// the ones a write counts on from), and the context a read would then return.
    static func context(_ bytes: [UInt8]) -> [String] {
        // Sealed contexts only come from nodes; the body decoder is what reads them.
        guard let context = try? CausalContext(decodingBody: bytes) else { return [] }
        var broken: [String] = []
        let sealer = ClusterKey.development
        if (try? CausalContext(opening: context.sealed(forKey: [1], with: sealer), forKey: [1], with: sealer)) != context,
            !context.clock.entries.values.contains(where: { $0.max >= Dot.maxCounter })
        {
            broken.append("context does not round-trip")
        }
        if (try? CausalContext(opening: context.sealed(forKey: [1], with: sealer), forKey: [2], with: sealer)) != nil {
            broken.append("a context opened for another key")
        }
        for actor in context.clock.entries.keys.sorted() + ["n1"] {
            guard
                let first = try? VersionedObject().writing(
                    [1], context: context.clock, actor: actor, now: 1, policy: policy)
            else { continue }
            let second = try? first.object.writing(
                [2], context: first.object.context, actor: actor, now: 2, policy: policy)
            if let second {
                let sealed = CausalContext(second.object.context).sealed(forKey: [1], with: sealer)
                _ = try? CausalContext(opening: sealed, forKey: [1], with: sealer)
            }
        }
        return broken
    }

    /// Two stored objects (the input split in half): decoded, merged every way, written on.
    static func objects(_ bytes: [UInt8]) -> [String] {
        let half = bytes.count / 2
        guard let a = try? VersionedObject(decoding: Array(bytes[..<half])) else { return [] }
        var broken: [String] = []
        if (try? VersionedObject(decoding: a.encoded())) != a { broken.append("object does not round-trip") }
        _ = MerkleTree.hash(key: [1], object: a)
        let b = (try? VersionedObject(decoding: Array(bytes[half...]))) ?? VersionedObject()
        let merged = a.merged(with: b, policy: policy)
        _ = merged.merged(with: a, policy: ClockPolicy(maxEntries: 1, conflicts: .lww))
        _ = merged.context.pruned(to: 2, keep: "n1")
        if let written = try? merged.writing(nil, context: merged.context, actor: "n2", now: 9, policy: policy) {
            _ = try? written.object.writing([3], context: nil, actor: "n2", now: 10, policy: policy)
        }
        return broken
    }

    /// A gossip ACK (rows about anyone, the receiver included, and digests) through a
    /// membership, with and without a cluster secret: the rows merged, the digests answered
    /// and the wanted rows sent; every message it makes must round-trip.
    static func gossip(_ bytes: [UInt8]) -> [String] {
        guard case .response(_, .gossipDelta(let rows, let digests))? = try? PeerCodec.decode([0x03, 0x00, 0x29] + bytes)
        else { return [] }
        var broken: [String] = []
        for key in [nil, try? ClusterKey(text: "fuzzing cluster secret")] {
            var membership = Membership(me: member("n1"), seeds: ["127.0.0.1:9"], key: key)
            var rng = SeededRandom(seed: 1)
            _ = membership.receive(membership.resolve(rows), now: 10)
            _ = membership.tick(now: 20, rng: &rng)
            _ = membership.receive(membership.resolve(rows), now: 30)
            membership.setLocalStatus(.leaving, now: 40)
            let (answer, wanted) = GossipDigest.answer(to: digests, from: membership.table)
            let messages: [PeerMessage] = [
                .response(id: 1, .gossipDelta(rows: answer, wanted: wanted)),
                .request(id: 2, .gossipRows(GossipDigest.rows(digests, from: membership.table))),
                .request(id: 3, .gossipDigest(GossipDigest.digests(of: membership.table))),
            ]
            for message in messages where (try? PeerCodec.decode(PeerCodec.encode(message))) != message {
                broken.append("gossip message does not round-trip")
            }
        }
        return broken
    }

    /// Any peer message: requests run through a real `NodeMachine` over a real store,
    /// responses through what consumes them, hellos and proofs through both handshakes.
    static func peerMessage(_ bytes: [UInt8]) -> [String] {
        guard let message = try? PeerCodec.decode(bytes) else { return [] }
        var broken: [String] = []
        if (try? PeerCodec.decode(PeerCodec.encode(message))) != message { broken.append("message does not round-trip") }
        var node = NodeHarness()
        switch message {
        case .request(_, let request):
            node.run(.peerRequest(handle: 7, from: "n2", request))
        case .response(_, let response):
            node.consume(response)
        case .hello, .proof:
            for role in [HandshakeRole.listener, .dialer] {
                for key in [try? ClusterKey(text: "fuzzing cluster secret"), nil] {
                    var handshake = PeerHandshake(
                        role: role, me: "n1", key: key, nonce: [UInt8](repeating: 1, count: Hello.nonceBytes))
                    if case .proof = message {
                        _ = handshake.receive(.hello(Hello(name: "n2", nonce: [UInt8](repeating: 2, count: 16))))
                    }
                    _ = handshake.receive(message)
                    _ = handshake.receive(message)
                }
            }
        }
        return broken
    }

    /// A byte stream through the frame decoder, fed in pieces of varying size.
    static func frames(_ stream: [UInt8]) -> [String] {
        for limit in [PeerFrameDecoder.handshakeMaxFrameSize, PeerFrameDecoder.defaultMaxFrameSize] {
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(PeerFrameDecoder(state: PeerChannelState(maxFrameSize: limit))))
            var rest = stream[...]
            var chunk = 1
            while !rest.isEmpty {
                let piece = rest.prefix(chunk)
                rest = rest.dropFirst(chunk)
                chunk = chunk * 3 % 97 + 1
                do {
                    try channel.writeInbound(channel.allocator.buffer(bytes: piece))
                } catch {
                    break  // the connection would be closed: fine
                }
                while (try? channel.readInbound(as: PeerMessage.self)) != nil {}
            }
            _ = try? channel.finish()
        }
        return []
    }

    public static func member(_ name: NodeName) -> Member {
        Member(
            name: name, peerAddress: "127.0.0.1:1", httpAddress: "127.0.0.1:2",
            tokens: Token.defaultPositions(for: name, count: 4), status: .up)
    }
}

extension HostileBytes {
    /// A structured input for `target`.
    public mutating func input(for target: FuzzTarget) -> [UInt8] {
        switch target {
        case .context: return contextBytes()
        case .objects: return objectBytes() + objectBytes()
        case .gossip: return gossipBytes()
        case .peerMessage: return peerMessage()
        case .frames:
            var stream: [UInt8] = []
            for _ in 0...below(3) {
                let payload = peerMessage()
                let lengths: [UInt64] = [0, 1, UInt64(payload.count) + 1, 1024, 1025, 16 << 20, (16 << 20) + 1, 0xffff_ffff]
                let length = chance(80) ? UInt64(payload.count) : lengths[below(lengths.count)]
                stream += withUnsafeBytes(of: UInt32(truncatingIfNeeded: length).bigEndian, Array.init) + payload
            }
            return stream
        }
    }
}

/// A node's state machine with its storage run inline over memory: the shell without I/O.
struct NodeHarness {
    var machine: NodeMachine
    let store: ReplicaStore
    var clock: UInt64 = 1_000

    init() {
        let settings = NodeSettings(
            name: "n1", peerAddress: "127.0.0.1:1", httpAddress: "127.0.0.1:2",
            tokens: Token.defaultPositions(for: "n1", count: 4))
        machine = NodeMachine(settings: settings, seed: 1)
        store = try! ReplicaStore(engine: MemoryEngine())
        // Two more members, so requests have replicas, fallbacks and hints to work with.
        run(.peerRequest(handle: 1, from: "n2", .gossipRows([.full(FuzzTarget.member("n2")), .full(FuzzTarget.member("n3"))])))
    }

    /// Feeds an input, executes the storage it asks for until nothing is left, and ticks.
    mutating func run(_ input: NodeMachine.Input) {
        var pending: [NodeMachine.Input] = [input, .tick]
        var next = 0
        while next < pending.count, next < 10_000 {
            clock += 5
            for action in machine.handle(pending[next], now: .init(monotonicMs: clock, wallMs: clock)) {
                guard case .storage(let token, let op) = action else { continue }
                let done = store.perform(op, policy: machine.settings.clocks)
                pending.append(.storageResult(token: token, done.result, treeUpdates: done.treeUpdates))
            }
            next += 1
        }
    }

    /// What the node does with each kind of response payload, run directly.
    mutating func consume(_ response: PeerResponse) {
        switch response {
        case .replica(.object(let object?)):
            _ = store.execute(.merge(key: [1], object: object, hintFor: "n3", sync: false), policy: ClockPolicy())
            _ = store.execute(.read(key: [1]), policy: ClockPolicy())
        case .gossipDelta(let rows, let wanted):
            run(.peerRequest(handle: 2, from: "n2", .gossipRows(rows)))
            run(.peerRequest(handle: 3, from: "n2", .gossipDigest(wanted)))
            run(.peerResponse(requestID: 1, response))
        case .transfer(let entries, _):
            for entry in entries {
                _ = store.execute(
                    .merge(key: entry.key, object: entry.object, hintFor: nil, sync: false), policy: ClockPolicy())
            }
            run(.tick)
        default:
            run(.peerResponse(requestID: 1, response))
        }
    }
}
