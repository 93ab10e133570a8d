import Benchmark
import CLibcrypto
import Crypto
import DynamoCore
import DynamoWire

/// MD5 by the system's libcrypto (one-shot EVP), for comparison with the project's own.
func libcryptoMD5(_ bytes: [UInt8]) -> [UInt8] {
    var digest = [UInt8](repeating: 0, count: 16)
    var length: UInt32 = 0
    _ = bytes.withUnsafeBytes { input in
        EVP_Digest(input.baseAddress, input.count, &digest, &length, EVP_md5(), nil)
    }
    return digest
}

/// The core's work per request, each with its allocations: what the node does on every
/// put and get besides waiting for the disk and the network.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(2), maxIterations: 1_000_000)

    let policy = ClockPolicy()
    let key10 = Array("cart:12345".utf8)
    let key100 = [UInt8](repeating: 0x61, count: 100)
    let value = [UInt8](repeating: 0x78, count: 100)
    // A key with two concurrent versions, and a write that supersedes one of them.
    let (one, first) = try! VersionedObject().writing(
        value, context: nil, actor: "n1", now: 1, policy: policy)
    let (two, _) = try! one.writing(value, context: nil, actor: "n2", now: 2, policy: policy)
    let incoming = VersionedObject(versions: [first])
    let stored = two.encoded()
    let put = PeerMessage.request(id: 42, .replica(.put(key: key10, object: incoming, hintFor: nil)))
    let putBytes = PeerCodec.encode(put)

    Benchmark("MD5 of a 10-byte key") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(MD5.digest(key10)) }
    }
    Benchmark("MD5 of a 100-byte key") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(MD5.digest(key100)) }
    }
    // The same digests by libraries (issue 16: the project's MD5 stays unless one is faster).
    Benchmark("MD5 of a 10-byte key, swift-crypto Insecure.MD5") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(Insecure.MD5.hash(data: key10)) }
    }
    Benchmark("MD5 of a 100-byte key, swift-crypto Insecure.MD5") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(Insecure.MD5.hash(data: key100)) }
    }
    Benchmark("MD5 of a 10-byte key, system libcrypto") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(libcryptoMD5(key10)) }
    }
    Benchmark("MD5 of a 100-byte key, system libcrypto") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(libcryptoMD5(key100)) }
    }
    Benchmark("Ring position of a key") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(RingPosition.of(key: key10)) }
    }
    Benchmark("Clock merge: a replica write into two siblings") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(two.merged(with: incoming, policy: policy)) }
    }
    Benchmark("Coordinated write on two siblings") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? two.writing(value, context: two.context, actor: "n1", now: 3, policy: policy))
        }
    }
    Benchmark("Object decode and encode (two siblings)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? VersionedObject(decoding: stored).encoded())
        }
    }
    Benchmark("Peer codec: encode a replica put") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(PeerCodec.encode(put)) }
    }
    Benchmark("Peer codec: decode a replica put") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? PeerCodec.decode(putBytes)) }
    }
    // A client write through a coordinator's state machine, from the request to the
    // client's answer: its own store, two replicas asked and acknowledging. Untraced, as
    // every request is unless the client asks (X-Dynamo-Trace), and traced.
    Benchmark("Node machine: a coordinated write, untraced") { benchmark in
        var write = MachineWrite()
        for _ in benchmark.scaledIterations { blackHole(write.run(traced: false)) }
    }
    Benchmark("Node machine: a coordinated write, traced") { benchmark in
        var write = MachineWrite()
        for _ in benchmark.scaledIterations { blackHole(write.run(traced: true)) }
    }
    let tree = TreeBox()
    Benchmark("Merkle update of one key in a tree of 100,000", configuration: .init(scalingFactor: .kilo)) {
        benchmark in
        for i in benchmark.scaledIterations {
            tree.seq += 1
            tree.tree.set(tree.keys[i & 1023], hash: tree.seq | 1, seq: tree.seq)
        }
        blackHole(tree.tree.root)
    }
}

/// A Merkle tree of 100,000 keys, built once and updated in place by its benchmark.
final class TreeBox: @unchecked Sendable {
    var tree = MerkleTree()
    let keys = (0..<1024).map { Array("key-\($0 * 97)".utf8) }
    var seq: UInt64 = 1

    init() {
        for i in 0..<100_000 { tree.set(Array("key-\(i)".utf8), hash: UInt64(i) | 1, seq: 1) }
    }
}

/// A node n1 in a cluster of five, and a key it coordinates.
struct MachineWrite {
    var machine: NodeMachine
    let key: [UInt8]
    let now = NodeMachine.Now(monotonicMs: 100, wallMs: 100)
    var client: UInt64 = 1
    let version = Version(dot: Dot(actor: "n1", counter: 1), past: .empty, value: [1, 2, 3], timestamp: 100)

    init() {
        func member(_ i: Int) -> Member {
            Member(
                name: "n\(i)", peerAddress: "127.0.0.1:\(7000 + i)", httpAddress: "127.0.0.1:\(8000 + i)",
                tokens: Token.defaultPositions(for: "n\(i)", count: 8), status: .up)
        }
        machine = NodeMachine(
            settings: NodeSettings(
                name: "n1", peerAddress: "127.0.0.1:7001", httpAddress: "127.0.0.1:8001",
                tokens: Token.defaultPositions(for: "n1", count: 8)),
            seed: 3)
        _ = machine.handle(.peerRequest(handle: 1, from: "n2", .gossipRows((2...5).map { .full(member($0)) })), now: now)
        _ = machine.handle(.tick, now: now)
        let ring = machine.membership.routingRing
        key = (0..<1000).lazy.map { Array("key\($0)".utf8) }.first { ring.preferenceList(forKey: $0).home(3).first == "n1" }!
    }

    /// One write to its answer; the number of actions it took.
    mutating func run(traced: Bool) -> Int {
        client += 1
        var count = 0
        let input: NodeMachine.Input =
            traced
            ? .clientWrite(id: ClientRequestID(client), key: key, value: [1, 2, 3], context: nil, w: 2, trace: "bench-\(client)")
            : .clientWrite(id: ClientRequestID(client), key: key, value: [1, 2, 3], context: nil, w: 2)
        let first = machine.handle(input, now: now)
        count += first.count
        for case .storage(let token, _) in first {
            let sent = machine.handle(.storageResult(token: token, .version(version, size: ObjectSize(siblings: 1, bytes: 3))), now: now)
            count += sent.count
            for case .send(let id, _, _) in sent {
                count += machine.handle(.peerResponse(requestID: id, .replica(.stored)), now: now).count
            }
        }
        return count
    }
}
