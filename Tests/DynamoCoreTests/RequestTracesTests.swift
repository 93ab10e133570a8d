import Testing

@testable import DynamoCore

/// Request traces at one node: bounded, recorded on both sides of a message, and absent
/// (nothing wrapped, nothing kept) for requests that are not traced.
@Suite struct RequestTracesTests {
    static func step(_ us: UInt64) -> TraceStep { TraceStep(.local, monotonicUs: us, wallUs: us) }

    @Test func tracesAreBoundedInNumberStepsAndAge() {
        var traces = RequestTraces()
        for i in 0..<(RequestTraces.maxTraces + 44) { traces.record("t\(i)", Self.step(1), atMs: 0) }
        #expect(traces.count == RequestTraces.maxTraces)
        #expect(traces.steps(of: "t0") == nil, "the oldest went first")
        #expect(traces.steps(of: "t\(RequestTraces.maxTraces + 43)") != nil)
        for _ in 0..<(RequestTraces.maxSteps + 10) { traces.record("long", Self.step(2), atMs: 0) }
        #expect(traces.steps(of: "long")?.count == RequestTraces.maxSteps)
        traces.record("late", Self.step(3), atMs: RequestTraces.maxAgeMs)
        traces.prune(atMs: RequestTraces.maxAgeMs + 1)
        #expect(traces.ids == ["late"], "traces older than the age bound are forgotten")
    }

    @Test func traceIdsAreValidatedLikeRequestIds() {
        #expect(TraceTag.isValid(id: "n1-ab12-7"))
        #expect(TraceTag.isValid(id: String(repeating: "a", count: 64)))
        for bad in ["", String(repeating: "a", count: 65), "a b", "a\n", "ü", "a/b"] {
            #expect(!TraceTag.isValid(id: bad), "\(bad)")
        }
    }

    static func coordinatorOfAKey() -> (NodeMachine, key: [UInt8]) {
        var (node, _, _) = WriteRoutingTests.setUp()
        let key = (0..<1000).lazy.map { Array("key\($0)".utf8) }.first {
            node.membership.routingRing.preferenceList(forKey: $0).home(3).first == "n1"
        }!
        _ = node.handle(.tick, now: WriteRoutingTests.now)
        return (node, key)
    }

    /// Drives a write coordinated by n1 to its answer: its own store, then each replica's.
    static func write(traced: Bool) -> (NodeMachine, [NodeMachine.Action]) {
        var (node, key) = coordinatorOfAKey()
        let now = WriteRoutingTests.now
        var all = node.handle(
            .clientWrite(id: 9, key: key, value: [1], context: nil, w: 2, trace: traced ? "req-1" : nil), now: now)
        guard case .storage(let token, _)? = all.first(where: { if case .storage = $0 { true } else { false } }) else {
            return (node, all)
        }
        let version = Version(dot: Dot(actor: "n1", counter: 1), past: .empty, value: [1], timestamp: 100)
        var actions = node.handle(.storageResult(token: token, .version(version, size: ObjectSize(siblings: 1, bytes: 1))), now: now)
        all += actions
        for action in actions {
            if case .send(let id, _, _) = action {
                actions = node.handle(.peerResponse(requestID: id, .replica(.stored)), now: now)
                all += actions
            }
        }
        return (node, all)
    }

    @Test func anUntracedWriteWrapsNothingAndKeepsNothing() {
        let (node, actions) = Self.write(traced: false)
        #expect(actions.contains { if case .writeReply = $0 { true } else { false } })
        for action in actions {
            if case .send(_, _, .traced) = action { Issue.record("an untraced request went wrapped") }
        }
        #expect(node.traceIds.isEmpty)
        #expect(node.tracedInFlight == 0)
    }

    @Test func aTracedWriteRecordsEachStepAndWrapsItsReplicaRequests() throws {
        let (node, actions) = Self.write(traced: true)
        let sends = actions.compactMap { action -> TraceTag? in
            if case .send(_, _, .traced(let tag, .replica(.put))) = action { return tag }
            return nil
        }
        #expect(sends.count == 2 && sends.allSatisfy { $0 == TraceTag(id: "req-1", message: .put) })
        let kinds = try #require(node.traceSteps("req-1")).map(\.kind)
        #expect(kinds.first == .request)
        #expect(kinds.filter { $0 == .send }.count == 2)
        #expect(kinds.filter { $0 == .reply }.count == 2)
        #expect(kinds.contains(.local))
        #expect(kinds.contains(.answered))
        #expect(node.tracedInFlight == 0, "everything traced was answered")
    }

    @Test func aReplicaRecordsItsSideOfATracedPutWithItsHint() throws {
        var (node, _, _) = WriteRoutingTests.setUp()
        let now = WriteRoutingTests.now
        let object = VersionedObject(versions: [
            Version(dot: Dot(actor: "n2", counter: 1), past: .empty, value: [1], timestamp: 1)
        ])
        let tag = TraceTag(id: "req-2", message: .put)
        let actions = node.handle(
            .peerRequest(handle: 7, from: "n2", .traced(tag, .replica(.put(key: [1], object: object, hintFor: "n3")))),
            now: now)
        guard case .storage(let token, _)? = actions.first(where: { if case .storage = $0 { true } else { false } })
        else {
            Issue.record("no storage operation")
            return
        }
        let answer = node.handle(.storageResult(token: token, .stored), now: now)
        #expect(answer.contains(.respond(handle: 7, .replica(.stored))))
        let steps = try #require(node.traceSteps("req-2"))
        #expect(steps.map(\.kind) == [.receive, .hint, .answer])
        #expect(steps[0].peer == "n2" && steps[1].peer == "n3" && steps[2].detail == "stored")
        #expect(node.tracedInFlight == 0)
    }

    @Test func slowAndLossyLinksShapeMessagesWithTheInjectedRandomness() {
        var rng = SeededRandom(seed: 7)
        let faults = LinkFaults(delayMs: ["n3": 200], jitterMs: ["n3": 50], loss: ["n4": 0.1, "n5": .nan])
        var lost = 0
        for _ in 0..<10_000 {
            if case .lose = faults.fate(to: "n4", using: &rng) { lost += 1 }
            guard case .deliver(let ms) = faults.fate(to: "n3", using: &rng), (150...250).contains(ms) else {
                Issue.record("a delay outside 200±50")
                return
            }
        }
        #expect((800...1200).contains(lost), "about 10% lost: \(lost)")
        #expect(faults.fate(to: "n5", using: &rng) == .deliver(afterMs: 0), "NaN loss is none")
        #expect(faults.fate(to: "n1", using: &rng) == .deliver(afterMs: 0))
        #expect(faults.summary == ["n3 +200±50 ms", "n4 10% lost"])
        #expect(LinkFaults(delayMs: ["n3": 0], jitterMs: [:], loss: ["n3": 0]).isEmpty)
        #expect(LinkFaults(delayMs: ["n3": .max], jitterMs: [:], loss: [:]).delayMs["n3"] == 60_000)
    }

    @Test func slowLinksHoldBackABoundedAmount() {
        var budget = HoldBackBudget(maxMessages: 3, maxBytes: 1000)
        var taken = [budget.take(400), budget.take(400), budget.take(201), budget.take(200), budget.take(0)]
        #expect(taken == [true, true, false, true, false], "past the bytes, then past the messages")
        #expect(budget.messages == 3 && budget.bytes == 1000)
        budget.give(400)
        taken = [budget.take(400), budget.take(.max)]
        #expect(taken == [true, false], "room again once one left; no overflow on a huge size")
        for _ in 0..<10 { budget.give(1000) }
        #expect(budget.messages == 0 && budget.bytes == 0)
    }

    /// A read traced under an id this node already keeps, or an invalid one, goes untraced:
    /// nothing recorded, nothing wrapped.
    @Test func aReusedOrInvalidTraceIdTracesNothing() {
        var (node, key) = Self.coordinatorOfAKey()
        let now = WriteRoutingTests.now
        func wrapped(_ actions: [NodeMachine.Action]) -> Int {
            actions.filter { if case .send(_, _, .traced) = $0 { true } else { false } }.count
        }
        #expect(wrapped(node.handle(.clientGet(id: 1, key: key, r: nil, trace: "t-1"), now: now)) == 2)
        let steps = node.traceSteps("t-1")?.count
        #expect(wrapped(node.handle(.clientGet(id: 2, key: key, r: nil, trace: "t-1"), now: now)) == 0)
        #expect(wrapped(node.handle(.clientGet(id: 3, key: key, r: nil, trace: "bad id"), now: now)) == 0)
        #expect(node.traceSteps("t-1")?.count == steps)
        #expect(node.traceIds == ["t-1"])
    }
}
