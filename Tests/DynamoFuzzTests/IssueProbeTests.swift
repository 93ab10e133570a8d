import DynamoAPI
import DynamoCore
import DynamoFuzzing
import NIOCore
import NIOEmbedded
import Testing

@testable import DynamoNode

@testable import DynamoStorage
@testable import DynamoWire

/// The exact inputs that crashed a node (issue 9), each refused cleanly now.
@Suite struct IssueProbeTests {
    /// Probe 1: a range ending at 2^64 - 1 overflowed `low + span + 1`.
    @Test func aContextRangeEndingAtTheTopIsRefused() throws {
        #expect(throws: ContextError.self) {
            try CausalContext(opening: Base64URL.decode("3AMBAXgAAf___________wEA")!, forKey: [1], with: .development)
        }
        // The same clock in today's format, even correctly sealed, is refused by the decoder.
        let body = [0xDC, 0x04] + Array(Base64URL.decode("3AMBAXgAAf___________wEA")!.dropFirst(2))
        #expect(throws: ByteDecodingError.self) { try CausalContext(decodingBody: body) }
    }

    /// Probe 2: counters just under 2^64 were accepted; the next write on the key then
    /// overflowed, and so did every node the returned context reached. Contexts are now
    /// sealed by the cluster (a made-up one is refused), and a counter at the ceiling,
    /// however it got there, refuses the write instead of wrapping.
    @Test func aContextThatLeavesNoRoomForAWriteIsRefused() throws {
        let poison = Base64URL.decode("3AMDAm4xAAH-__________8BAAJuMgAB_v__________AQACbjMAAf7__________wEA")!
        #expect(throws: ContextError.self) { try CausalContext(opening: poison, forKey: [1], with: .development) }
        // The attack review's variant: counters just under the ceiling in a made-up context.
        let forged = CausalContext(CausalHistory(dots: [Dot(actor: "n1", counter: Dot.maxCounter - 1)]))
        let mine = try ClusterKey(text: "the attacker's own secret")
        #expect(throws: ContextError.self) {
            try CausalContext(opening: forged.sealed(forKey: [1], with: mine), forKey: [1], with: .development)
        }
        // A history at the ceiling (a forged replica, a damaged disk) refuses the write.
        let full = CausalHistory(dots: [Dot(actor: "n1", counter: Dot.maxCounter)])
        #expect(throws: ClockError.self) {
            try VersionedObject().writing([1], context: full, actor: "n1", now: 1, policy: ClockPolicy())
        }
        // One below still writes; the context it returns is refused: nothing counts past the ceiling.
        let almost = CausalHistory(dots: [Dot(actor: "n1", counter: Dot.maxCounter - 1)])
        let written = try VersionedObject().writing([1], context: almost, actor: "n1", now: 1, policy: ClockPolicy())
        #expect(written.version.dot.counter == Dot.maxCounter)
        #expect(try VersionedObject(decoding: written.object.encoded()) == written.object)
        let returned = CausalContext(written.object.context).sealed(forKey: [1], with: .development)
        #expect(throws: ContextError.self) { try CausalContext(opening: returned, forKey: [1], with: .development) }
    }

    /// Issue 10's item 5 too: a context is bound to its key.
    @Test func aContextFromAnotherKeyIsRefused() throws {
        let context = CausalContext(CausalHistory(dots: [Dot(actor: "n1", counter: 1)]))
        let sealed = context.sealed(forKey: Array("other".utf8), with: .development)
        #expect(try CausalContext(opening: sealed, forKey: Array("other".utf8), with: .development) == context)
        #expect(throws: ContextError.self) {
            try CausalContext(opening: sealed, forKey: Array("k".utf8), with: .development)
        }
    }

    /// Probe 3: a gossip row with generation 2^64 - 1 overflowed `echo.generation + 1` on
    /// the node it named, and kept doing so after restarts.
    @Test func aGossipRowWithAnImpossibleGenerationIsRefused() {
        var row = FuzzTarget.member("n1")
        row.generation = .max
        let frame = PeerCodec.encode(.request(id: 1, .gossipRows([.full(row)])))
        #expect(throws: ByteDecodingError.self) { try PeerCodec.decode(frame) }
        // At the ceiling, the membership keeps its own generation instead of trapping.
        row.generation = Member.maxVersion
        var membership = Membership(me: FuzzTarget.member("n1"), seeds: [])
        _ = membership.receive([row], now: 1)
        #expect(membership.local.generation == 1)
    }

    /// Probe 4: a `replicaPut` with a 65,536-byte key and a hint target trapped while the
    /// hint's storage key spelled the length in two bytes.
    @Test func aKeyTooLongForAHintIsRefused() throws {
        let key = [UInt8](repeating: 7, count: 65_536)
        let object = try VersionedObject().writing([1], context: nil, actor: "n2", now: 1, policy: ClockPolicy()).object
        let frame = PeerCodec.encode(.request(id: 1, .replica(.put(key: key, object: object, hintFor: "n3"))))
        #expect(throws: ByteDecodingError.self) { try PeerCodec.decode(frame) }
        let store = try ReplicaStore(engine: MemoryEngine())
        let result = store.execute(.merge(key: key, object: object, hintFor: "n3", sync: false), policy: ClockPolicy())
        guard case .failed(let reason) = result else {
            Issue.record("expected a refusal, got \(result)")
            return
        }
        #expect(reason.contains("65535"))
        // The longest key allowed still works as a hint.
        let longest = [UInt8](repeating: 7, count: 65_535)
        #expect(store.execute(.merge(key: longest, object: object, hintFor: "n3", sync: false), policy: ClockPolicy()) == .stored)
        #expect(store.hintCounts["n3"] == 1)
    }
}

/// Found by the attack review of issue 9.
@Suite struct ReviewProbeTests {
    /// `?=` trapped the node (an empty split of "=").
    @Test(arguments: ["/admin/status?=", "/kv/k?a&=", "/kv/k?=&=x&r=2&r=3", "?", "/x?&&"])
    func anyRequestTargetSplits(target: String) {
        let (path, query) = RequestTarget.split(target)
        #expect(!path.contains("?"))
        if target.hasSuffix("r=2&r=3") { #expect(query["r"] == "2") }
    }
}

/// The peer port's admission under a flood (found by the attack reviews).
@Suite struct PeerAdmissionTests {
    @Test func unprovenConnectionsMakeRoomAndCountsNeverDrift() throws {
        let admission = PeerAdmission(limit: 16)  // 4 slots for handshakes
        func connected() throws -> EmbeddedChannel {
            let channel = EmbeddedChannel()
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            return channel
        }
        let channels = try (0..<10).map { _ in try connected() }
        for channel in channels { #expect(admission.admit(channel)) }
        // The six oldest were evicted (closed) to make room for newer ones.
        #expect(channels.prefix(6).allSatisfy { !$0.isActive })
        #expect(channels.suffix(4).allSatisfy { $0.isActive })
        // An evicted connection that finishes its handshake anyway is not served.
        #expect(!admission.proven(channels[0]))
        #expect(admission.proven(channels[9]))
        for channel in channels { admission.closed(channel) }
        #expect(admission.counts == (0, 0))
        // Proven peers fill the rest; at the limit only an unproven one can be replaced.
        let peers = try (0..<16).map { _ in try connected() }
        for peer in peers {
            #expect(admission.admit(peer))
            #expect(admission.proven(peer))
        }
        #expect(!admission.admit(EmbeddedChannel()))
        #expect(admission.counts == (16, 0))
    }
}
