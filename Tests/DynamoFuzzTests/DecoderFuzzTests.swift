import DynamoCore
import Foundation
import NIOCore
import NIOEmbedded
import PropertyBased
import Testing

@testable import DynamoNode
@testable import DynamoStorage
@testable import DynamoWire

/// Fuzzes every decoder of outside bytes, and what consumes its output, with
/// `HostileBytes` (structured, boundary-heavy, mutated) and with plain random bytes.
///
/// A trap anywhere fails the run. `DYNAMO_FUZZ_ITERATIONS` sets the inputs per decoder
/// (default 4000: enough to hit each overflow found by hand in issue 9 several times
/// over); `make fuzz` runs 200,000. A failure prints the property-based seed to replay.
@Suite struct DecoderFuzzTests {
    static let iterations = ProcessInfo.processInfo.environment["DYNAMO_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 4000

    /// Inputs for one fuzz run: a seed per input, so a failing input replays from its seed.
    static func inputs<T>(_ make: @escaping @Sendable (inout HostileBytes) -> T) -> Generator<T, Shrink.None<T>> {
        Generator { rng in
            var hostile = HostileBytes(seed: rng.next())
            return make(&hostile)
        }
    }

    static let policy = ClockPolicy()


    @Test func contextsDecodeOrFailCleanlyAndWritesOnThemNeverTrap() async {
        await propertyCheck(count: Self.iterations, input: Self.inputs { $0.contextBytes() }) { bytes in
            guard let context = try? CausalContext(parsing: Base64URL.encode(bytes)) else { return }
            #expect((try? CausalContext(parsing: context.encoded)) == context)
            // Two writes on the key with that context, coordinated by each actor it names
            // (their counters are the ones a write counts on from).
            for actor in context.clock.entries.keys.sorted() + ["n1"] {
                guard
                    let first = try? VersionedObject().writing(
                        [1], context: context.clock, actor: actor, now: 1, policy: Self.policy)
                else { continue }
                let second = try? first.object.writing(
                    [2], context: first.object.context, actor: actor, now: 2, policy: Self.policy)
                if let second {
                    // What a GET returns: a context a client sends back, or a clean refusal.
                    _ = try? CausalContext(parsing: CausalContext(second.object.context).encoded)
                }
            }
        }
    }

    @Test func storedObjectsRoundTripAndMergeWithoutTrapping() async {
        await propertyCheck(count: Self.iterations, input: Self.inputs { ($0.objectBytes(), $0.objectBytes()) }) {
            pair in
            guard let a = try? VersionedObject(decoding: pair.0) else { return }
            #expect((try? VersionedObject(decoding: a.encoded())) == a)
            _ = MerkleTree.hash(key: [1], object: a)
            let b = (try? VersionedObject(decoding: pair.1)) ?? VersionedObject()
            let merged = a.merged(with: b, policy: Self.policy)
            _ = merged.merged(with: a, policy: ClockPolicy(maxEntries: 1, conflicts: .lww))
            _ = merged.context.pruned(to: 2, keep: "n1")
            if let written = try? merged.writing(nil, context: merged.context, actor: "n2", now: 9, policy: Self.policy) {
                _ = try? written.object.writing([3], context: nil, actor: "n2", now: 10, policy: Self.policy)
            }
        }
    }

    /// Gossip rows reach the membership table (including rows about the receiver itself).
    @Test func gossipRowsNeverTrapTheMembership() async {
        await propertyCheck(count: Self.iterations, input: Self.inputs { $0.memberBytes() }) { bytes in
            guard case .request(_, .gossip(let rows))? = try? PeerCodec.decode([0x02, 0x00, 0x12] + bytes) else {
                return
            }
            var membership = Membership(me: Self.member("n1"), seeds: ["127.0.0.1:9"])
            var rng = SeededRandom(seed: 1)
            _ = membership.receive(rows, now: 10)
            _ = membership.tick(now: 20, rng: &rng)
            _ = membership.receive(rows, now: 30)
            membership.setLocalStatus(.leaving, now: 40)
            #expect(PeerCodec.decode(roundTrip: .gossip(membership.table)))
        }
    }

    /// Every peer message: decodes or fails cleanly, re-encodes to itself, and a request
    /// runs through a real `NodeMachine` over a real `ReplicaStore`.
    @Test func peerMessagesNeverTrapTheCodecOrTheNode() async {
        await propertyCheck(count: Self.iterations, input: Self.inputs { $0.peerMessage() }) { bytes in
            guard let message = try? PeerCodec.decode(bytes) else { return }
            #expect((try? PeerCodec.decode(PeerCodec.encode(message))) == message)
            var node = NodeHarness()
            switch message {
            case .request(_, let request):
                node.run(.peerRequest(handle: 7, from: "n2", request))
            case .response(_, let response):
                node.consume(response)
            case .hello, .proof:
                // Both sides of the handshake, with and without a secret, after a hello.
                let key = try? ClusterKey(secret: Array("0123456789abcdef".utf8))
                for role in [HandshakeRole.listener, .dialer] {
                    for key in [key, nil] {
                        var handshake = PeerHandshake(role: role, me: "n1", key: key, nonce: Array(repeating: 1, count: 16))
                        if case .proof = message {
                            _ = handshake.receive(.hello(Hello(name: "n2", nonce: Array(repeating: 2, count: 16))))
                        }
                        _ = handshake.receive(message)
                        _ = handshake.receive(message)
                    }
                }
            }
        }
    }

    @Test func randomBytesFailCleanlyEverywhere() async {
        let input = Generator<[UInt8], Shrink.None<[UInt8]>> { rng in
            let count = Int(rng.next() % 64)
            return (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        }
        await propertyCheck(count: Self.iterations, input: input) { bytes in
            _ = try? PeerCodec.decode(bytes)
            _ = try? PeerCodec.decode([0x02, 0x00] + bytes)
            _ = try? PeerCodec.decode([0x03, 0x00] + bytes)
            _ = try? VersionedObject(decoding: bytes)
            _ = try? CausalContext(parsing: Base64URL.encode([0xDC, 0x03] + bytes))
            _ = try? CausalContext(parsing: String(decoding: bytes, as: UTF8.self))
            _ = try? NodeIdentity.decode([1] + bytes)
            _ = ReplicaStore.parseHintKey([0x02] + bytes)
            _ = Base64.decode(String(decoding: bytes, as: UTF8.self))
            _ = PercentEncoding.decode(Substring(String(decoding: bytes, as: UTF8.self)))
        }
    }

    /// Frames split at random points, with lengths at and around the limits.
    @Test func frameDecoderClosesOnBadFramesAndNeverTraps() async throws {
        await propertyCheck(count: Self.iterations / 4, input: Self.inputs { hostile -> [UInt8] in
            var stream: [UInt8] = []
            for _ in 0...hostile.below(3) {
                let payload = hostile.peerMessage()
                let lengths: [UInt64] = [0, 1, UInt64(payload.count), UInt64(payload.count) + 1, 16 << 20, (16 << 20) + 1, 0xffff_ffff]
                let length = hostile.chance(80) ? UInt64(payload.count) : lengths[hostile.below(lengths.count)]
                stream += withUnsafeBytes(of: UInt32(truncatingIfNeeded: length).bigEndian, Array.init) + payload
            }
            return stream
        }) { stream in
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(PeerFrameDecoder()))
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
    }

    static func member(_ name: NodeName) -> Member {
        Member(
            name: name, peerAddress: "127.0.0.1:1", httpAddress: "127.0.0.1:2",
            tokens: Token.defaultPositions(for: name, count: 4), status: .up)
    }
}

extension PeerCodec {
    /// Whether a response survives encoding and decoding unchanged.
    static func decode(roundTrip response: PeerResponse) -> Bool {
        (try? decode(encode(.response(id: 1, response)))) == .response(id: 1, response)
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
        run(.peerRequest(handle: 1, from: "n2", .gossip([DecoderFuzzTests.member("n2"), DecoderFuzzTests.member("n3")])))
    }

    /// Feeds an input, executes the storage it asks for until nothing is left, and ticks.
    mutating func run(_ input: NodeMachine.Input) {
        var pending: [NodeMachine.Input] = [input, .tick]
        var next = 0
        while next < pending.count, next < 10_000 {
            clock += 5
            for action in machine.handle(pending[next], now: .init(monotonicMs: clock, wallMs: clock)) {
                guard case .storage(let token, let op) = action else { continue }
                let result = store.execute(op, policy: machine.settings.clocks)
                let updates = store.takeTreeUpdates()
                if !updates.isEmpty { pending.append(.treeUpdates(updates)) }
                pending.append(.storageResult(token: token, result))
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
        case .gossip(let members):
            run(.peerRequest(handle: 2, from: "n2", .gossip(members)))
        case .transfer(let entries, _):
            for entry in entries {
                _ = store.execute(.merge(key: entry.key, object: entry.object, hintFor: nil, sync: false), policy: ClockPolicy())
            }
            run(.tick)
        default:
            run(.peerResponse(requestID: 1, response))
        }
    }
}
