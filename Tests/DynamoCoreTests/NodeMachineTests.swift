import Testing

@testable import DynamoCore

/// How a node introduces itself when it starts.
@Suite struct NodeMachineStartTests {
    /// The status a node's first gossip message gives for itself.
    static func announcedStatus(freshIdentity: Bool) -> MemberStatus? {
        let settings = NodeSettings(
            name: "n3", peerAddress: "127.0.0.1:7003", httpAddress: "127.0.0.1:8003",
            tokens: Token.defaultPositions(for: "n3", count: 8), generation: 2, seeds: ["127.0.0.1:7001"],
            freshIdentity: freshIdentity)
        var machine = NodeMachine(settings: settings, seed: 1)
        let now = NodeMachine.Now(monotonicMs: 10, wallMs: 10)
        // The seed answers the SYN asking for n3's row; the ACK2 carries it.
        for case .send(let id, _, .gossipDigest) in machine.handle(.tick, now: now) {
            let ack = PeerResponse.gossipDelta(rows: [], wanted: [MemberDigest(name: "n3", generation: 0, heartbeat: 0, identity: 0)])
            for case .send(_, _, .gossipRows(let rows)) in machine.handle(.peerResponse(requestID: id, ack), now: now) {
                for case .full(let member) in rows where member.name == "n3" { return member.status }
            }
        }
        return nil
    }

    /// A known node that restarts never left the ring: peers must not route its ranges
    /// elsewhere while it waits for its first gossip answer (the console's event log showed
    /// ranges moving away and back on every restart).
    @Test func aRestartedNodeAnnouncesItselfUp() {
        #expect(Self.announcedStatus(freshIdentity: false) == .up)
    }

    /// A new node (or one that lost its disk) must pull its ranges before it takes any.
    @Test func aFreshNodeAnnouncesItselfJoining() {
        #expect(Self.announcedStatus(freshIdentity: true) == .joining)
    }
}

/// A joining node is `up` only once every key it pulled is stored: found by an attacker,
/// whose refill on a full disk said "joined and took 500 keys" with 107 of them missing.
@Suite struct JoinRefillTests {
    @Test func pulledKeysThatCannotBeStoredArePulledAgainBeforeTheNodeIsUp() {
        let settings = NodeSettings(
            name: "n3", peerAddress: "127.0.0.1:7003", httpAddress: "127.0.0.1:8003",
            tokens: Token.defaultPositions(for: "n3", count: 8), generation: 1, seeds: ["127.0.0.1:7001"],
            gossipIntervalMs: 100, freshIdentity: true)
        var node = NodeMachine(settings: settings, seed: 1)
        var clock: UInt64 = 0
        func step(_ input: NodeMachine.Input) -> [NodeMachine.Action] {
            clock += 10
            return node.handle(input, now: .init(monotonicMs: clock, wallMs: 1_000_000 + clock))
        }
        /// Ticks until the node asks n1 for a pull; answers it with one key; returns the
        /// storage token of that key's merge.
        func pullOnce() -> StorageToken? {
            for _ in 0..<200 {
                for action in step(.tick) {
                    if case .send(let id, _, .pull) = action {
                        let entry = KeyedObject(key: Array("k".utf8), object: VersionedObject(versions: [
                            Version(dot: Dot(actor: "n1", counter: 1), past: .empty, value: [1], timestamp: 1)
                        ]))
                        for reply in step(.peerResponse(requestID: id, .transfer(entries: [entry], next: nil))) {
                            if case .storage(let token, .merge) = reply { return token }
                        }
                    }
                }
            }
            return nil
        }
        let n1 = Member(
            name: "n1", peerAddress: "127.0.0.1:7001", httpAddress: "127.0.0.1:8001",
            tokens: Token.defaultPositions(for: "n1", count: 8), status: .up, heartbeat: 5)
        for action in step(.tick) {
            if case .send(let id, _, .gossipDigest) = action {
                _ = step(.peerResponse(requestID: id, .gossipDelta(rows: [.full(n1)], wanted: [])))
            }
        }
        guard let first = pullOnce() else {
            Issue.record("no pull was sent")
            return
        }
        let failed = step(.storageResult(token: first, .failed("IO error: No space left on device")))
        #expect(failed.contains { if case .event(.pullFailed) = $0 { true } else { false } })
        for _ in 0..<5 {
            #expect(!step(.tick).contains { if case .joined = $0 { true } else { false } })
        }
        guard let second = pullOnce() else {
            Issue.record("the key was not pulled again")
            return
        }
        _ = step(.storageResult(token: second, .stored))
        var joined = false
        for _ in 0..<50 where !joined {
            joined = step(.tick).contains { if case .joined = $0 { true } else { false } }
        }
        #expect(joined, "up once the key is stored")
    }

    /// A node without seeds that lost its data waits for a member that knows it before it
    /// comes up, and pulls its ranges then (an attacker saw one serve 404s for acknowledged
    /// keys); alone, it comes up after 10 gossip intervals.
    @Test func aSeedlessNodeThatLostDataWaitsForThePeersThatKnowIt() {
        func node() -> NodeMachine {
            NodeMachine(
                settings: NodeSettings(
                    name: "n1", peerAddress: "127.0.0.1:7001", httpAddress: "127.0.0.1:8001",
                    tokens: Token.defaultPositions(for: "n1", count: 8), generation: 3, gossipIntervalMs: 100,
                    freshIdentity: true, awaitPeers: true),
                seed: 1)
        }
        func isJoined(_ actions: [NodeMachine.Action]) -> Bool {
            actions.contains { if case .joined = $0 { true } else { false } }
        }
        var alone = node()
        #expect(alone.membership.local.status == .joining)
        var upAt: UInt64?
        for t in stride(from: UInt64(10), through: 3_000, by: 10) where upAt == nil {
            if isJoined(alone.handle(.tick, now: .init(monotonicMs: t, wallMs: t))) { upAt = t }
        }
        #expect(upAt.map { $0 >= 1_000 } == true, "alone: up after 10 gossip intervals, not at once (\(upAt ?? 0))")

        var known = node()
        var pulled = false
        for t in stride(from: UInt64(10), through: 3_000, by: 10) where !pulled {
            if t == 200 {
                let n2 = Member(
                    name: "n2", peerAddress: "127.0.0.1:7002", httpAddress: "127.0.0.1:8002",
                    tokens: Token.defaultPositions(for: "n2", count: 8), status: .up, heartbeat: 9)
                _ = known.handle(.peerRequest(handle: 1, from: "n2", .gossipRows([.full(n2)])), now: .init(monotonicMs: t, wallMs: t))
            }
            let actions = known.handle(.tick, now: .init(monotonicMs: t, wallMs: t))
            #expect(!isJoined(actions), "never up before it pulled")
            pulled = actions.contains { if case .send(_, _, .pull) = $0 { true } else { false } }
        }
        #expect(pulled, "a peer got in touch: the node pulls its ranges from it")
    }

    /// A node still pulling its ranges does not answer reads from its partial copy (an
    /// attacker saw `404` for acknowledged keys from a refill stuck on a full disk).
    @Test func aNodeStillPullingItsRangesDoesNotAnswerReads() {
        var node = NodeMachine(
            settings: NodeSettings(
                name: "n3", peerAddress: "127.0.0.1:7003", httpAddress: "127.0.0.1:8003",
                tokens: Token.defaultPositions(for: "n3", count: 8), seeds: ["127.0.0.1:7001"], freshIdentity: true),
            seed: 1)
        let asked = node.handle(
            .peerRequest(handle: 4, from: "n1", .replica(.get(key: Array("k".utf8)))),
            now: .init(monotonicMs: 10, wallMs: 10))
        #expect(
            asked.contains {
                if case .respond(4, .replica(.failed(let why))) = $0 { why.contains("pulling its ranges") } else { false }
            }, "\(asked)")
        #expect(!asked.contains { if case .storage = $0 { true } else { false } })
    }
}

/// A copy handed to a node as its home (a delivered hint, an ownership handoff) is stored
/// synced even when replica writes are not: its sender deletes its own synced copy once
/// this node answers (found by the simulator: a delivered hint lost to the target's power).
@Suite struct HandoverDurabilityTests {
    static func merge(of request: PeerRequest) -> StorageOp? {
        let settings = NodeSettings(
            name: "n3", peerAddress: "127.0.0.1:7003", httpAddress: "127.0.0.1:8003",
            tokens: Token.defaultPositions(for: "n3", count: 8), generation: 1, seeds: [], durability: .coordinator)
        var node = NodeMachine(settings: settings, seed: 1)
        for action in node.handle(.peerRequest(handle: 1, from: "n1", request), now: .init(monotonicMs: 5, wallMs: 5)) {
            if case .storage(_, let op) = action { return op }
        }
        return nil
    }

    static let object = VersionedObject(versions: [
        Version(dot: Dot(actor: "n1", counter: 1), past: .empty, value: [1], timestamp: 1)
    ])

    @Test func aHandedOverCopyIsSyncedAndAPlainReplicaWriteIsNot() {
        let key = Array("k".utf8)
        #expect(
            Self.merge(of: .replica(.put(key: key, object: Self.object, hintFor: "n3")))
                == .merge(key: key, object: Self.object, hintFor: nil, sync: true))
        #expect(
            Self.merge(of: .replica(.put(key: key, object: Self.object, hintFor: nil)))
                == .merge(key: key, object: Self.object, hintFor: nil, sync: false))
        #expect(
            Self.merge(of: .replica(.put(key: key, object: Self.object, hintFor: "n4")))
                == .merge(key: key, object: Self.object, hintFor: "n4", sync: true))
    }
}

/// Write routing: a node outside a key's first N healthy nodes forwards a client's write to
/// them in order, takes the first coordinator's answer, and coordinates the write itself
/// when none of them answers (rather than refuse it).
@Suite struct WriteRoutingTests {
    static let now = NodeMachine.Now(monotonicMs: 100, wallMs: 100)

    static func member(_ name: NodeName, port: Int) -> Member {
        Member(
            name: name, peerAddress: "127.0.0.1:\(7000 + port)", httpAddress: "127.0.0.1:\(8000 + port)",
            tokens: Token.defaultPositions(for: name, count: 8), status: .up)
    }

    /// n1 knowing n2...n5, and a key whose first three replicas are other nodes.
    static func setUp() -> (NodeMachine, key: [UInt8], homes: [NodeName]) {
        var node = NodeMachine(
            settings: NodeSettings(
                name: "n1", peerAddress: "127.0.0.1:7001", httpAddress: "127.0.0.1:8001",
                tokens: Token.defaultPositions(for: "n1", count: 8)),
            seed: 3)
        let others = (2...5).map { member("n\($0)", port: $0) }
        _ = node.handle(.peerRequest(handle: 1, from: "n2", .gossipRows(others.map { .full($0) })), now: now)
        for i in 0..<1000 {
            let key = Array("key\(i)".utf8)
            let homes = node.membership.routingRing.preferenceList(forKey: key).home(3)
            if !homes.contains("n1") { return (node, key, homes) }
        }
        fatalError("no key without n1 among its homes")
    }

    static func forwards(_ actions: [NodeMachine.Action]) -> [(PeerRequestID, String)] {
        actions.compactMap { action in
            if case .send(let id, let address, .coordinatePut) = action { return (id, address) }
            return nil
        }
    }

    static func address(of node: NodeName) -> String { "127.0.0.1:\(7000 + Int(node.dropFirst())!)" }

    @Test func aWriteGoesToTheFirstHomeNodeThenTheNextWhenItDoesNotAnswer() throws {
        var (node, key, homes) = Self.setUp()
        let first = Self.forwards(node.handle(.clientWrite(id: 9, key: key, value: [1], context: nil, w: nil), now: Self.now))
        #expect(first.map(\.1) == [Self.address(of: homes[0])])
        let second = Self.forwards(node.handle(.peerResponse(requestID: try #require(first.first).0, nil), now: Self.now))
        #expect(second.map(\.1) == [Self.address(of: homes[1])])
        let result = WriteResult(
            succeeded: true, coordinator: homes[1], acks: homes, required: 2, context: .empty, error: nil)
        let answer = node.handle(.peerResponse(requestID: try #require(second.first).0, .coordinated(result)), now: Self.now)
        #expect(answer.contains(.writeReply(client: 9, result)))
    }

    @Test func aWriteNoHomeNodeAnswersIsCoordinatedHere() throws {
        var (node, key, homes) = Self.setUp()
        var actions = node.handle(.clientWrite(id: 9, key: key, value: [1], context: nil, w: nil), now: Self.now)
        var asked: [String] = []
        while let (id, address) = Self.forwards(actions).first {
            asked.append(address)
            actions = node.handle(.peerResponse(requestID: id, nil), now: Self.now)
        }
        #expect(asked == homes.map(Self.address(of:)))
        #expect(actions.contains { if case .storage(_, .coordinateWrite) = $0 { true } else { false } })
    }
}

/// Every client write is answered, whenever its replicas' replies come.
@Suite struct WriteAnswerTests {
    /// A reply that arrives after the write's deadline but before the next tick once made
    /// the node forget the write without answering it: its client waited for ever.
    @Test func aWriteWhoseReplyComesAfterItsDeadlineIsStillAnswered() throws {
        var (node, _, _) = WriteRoutingTests.setUp()
        let key = try #require(
            (0..<1000).lazy.map { Array("key\($0)".utf8) }.first {
                node.membership.routingRing.preferenceList(forKey: $0).home(3).first == "n1"
            })
        let start = WriteRoutingTests.now
        let asked = node.handle(.clientWrite(id: 9, key: key, value: [1], context: nil, w: 3), now: start)
        guard case .storage(let token, .coordinateWrite) = asked.last else {
            Issue.record("expected the write to be coordinated here, got \(asked)")
            return
        }
        let version = Version(dot: Dot(actor: "n1", counter: 1), past: .empty, value: [1], timestamp: 100)
        let sent = node.handle(
            .storageResult(token: token, .version(version, size: ObjectSize(siblings: 1, bytes: 1))), now: start)
        let puts = sent.compactMap { action -> PeerRequestID? in
            if case .send(let id, _, .replica(.put)) = action { return id }
            return nil
        }
        #expect(puts.count == 2)
        // Past the deadline, before any tick: one replica acknowledges.
        let late = NodeMachine.Now(monotonicMs: start.monotonicMs + 10_000, wallMs: start.wallMs + 10_000)
        let first = node.handle(.peerResponse(requestID: try #require(puts.first), .replica(.stored)), now: late)
        let then = node.handle(.tick, now: late)
        let answers = (first + then).compactMap { action -> WriteResult? in
            if case .writeReply(9, let result) = action { return result }
            return nil
        }
        #expect(answers.count == 1, "\(first + then)")
        #expect(answers.first?.succeeded == false && answers.first?.acks.count == 2)
    }
}
