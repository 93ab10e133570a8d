import DynamoCore
import DynamoFuzzing
import Testing

@testable import DynamoStorage
@testable import DynamoWire

/// The exact inputs that crashed a node (issue 9), each refused cleanly now.
@Suite struct IssueProbeTests {
    /// Probe 1: a range ending at 2^64 - 1 overflowed `low + span + 1`.
    @Test func aContextRangeEndingAtTheTopIsRefused() {
        #expect(throws: ContextError.self) { try CausalContext(parsing: "3AMBAXgAAf___________wEA") }
    }

    /// Probe 2: counters just under 2^64 were accepted; the next write on the key then
    /// overflowed, and so did every node the returned context reached.
    @Test func aContextThatLeavesNoRoomForAWriteIsRefused() throws {
        let poison = "3AMDAm4xAAH-__________8BAAJuMgAB_v__________AQACbjMAAf7__________wEA"
        #expect(throws: ContextError.self) { try CausalContext(parsing: poison) }
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
        #expect(throws: ContextError.self) { try CausalContext(parsing: CausalContext(written.object.context).encoded) }
    }

    /// Probe 3: a gossip row with generation 2^64 - 1 overflowed `echo.generation + 1` on
    /// the node it named, and kept doing so after restarts.
    @Test func aGossipRowWithAnImpossibleGenerationIsRefused() {
        var row = FuzzTarget.member("n1")
        row.generation = .max
        let frame = PeerCodec.encode(.request(id: 1, .gossip([row])))
        #expect(throws: DecodingError.self) { try PeerCodec.decode(frame) }
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
        #expect(throws: DecodingError.self) { try PeerCodec.decode(frame) }
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
