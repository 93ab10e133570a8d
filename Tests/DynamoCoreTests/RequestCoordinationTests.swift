import DynamoCore
import Testing

/// Routing and request coordination on their own: a ring of five nodes seen from n1, with
/// chosen nodes unreachable, and no `NodeMachine`.
private struct Cluster {
    static let names: [NodeName] = ["n1", "n2", "n3", "n4", "n5"]
    static let ring = Ring(nodes: Dictionary(uniqueKeysWithValues: names.map { ($0, Token.defaultPositions(for: $0, count: 8)) }))
    static let now = NodeMachine.Now(monotonicMs: 1_000, wallMs: 5_000)

    var down: Set<NodeName> = []
    var sloppyQuorum = true
    var starting = false
    var departed = false

    var routing: Routing {
        let down = self.down
        return Routing(
            me: "n1", n: 3, sloppyQuorum: sloppyQuorum, routingRing: Self.ring, ring: Self.ring,
            isReachable: { !down.contains($0) })
    }

    var view: RequestCoordination.View { .init(routing: routing, dotFloor: 7, starting: starting, departed: departed) }

    static func settings(readRepair: Bool = true) -> NodeSettings {
        NodeSettings(
            name: "n1", peerAddress: "127.0.0.1:7001", httpAddress: "127.0.0.1:8001",
            tokens: Token.defaultPositions(for: "n1", count: 8), readRepair: readRepair)
    }

    /// A key whose home nodes satisfy `condition`.
    static func key(where condition: ([NodeName]) -> Bool) -> [UInt8] {
        for i in 0..<10_000 {
            let key = Array("key\(i)".utf8)
            if condition(ring.preferenceList(forKey: key).home(3)) { return key }
        }
        fatalError("no such key")
    }

    static func homes(_ key: [UInt8]) -> [NodeName] { ring.preferenceList(forKey: key).home(3) }
    static func preference(_ key: [UInt8]) -> [NodeName] { ring.preferenceList(forKey: key).nodes }
}

private func put(_ key: [UInt8], w: Int? = nil) -> ForwardedPut {
    ForwardedPut(key: key, value: [1], context: nil, w: w)
}

private func version(by actor: NodeName = "n1") -> Version {
    Version(dot: Dot(actor: actor, counter: 8), past: .empty, value: [1], timestamp: 5_000)
}

@Suite struct RoutingTests {
    @Test func aDownHomeNodeIsReplacedByTheNextFallbackWithAHintForIt() {
        let key = Cluster.key { !$0.contains("n1") }
        let homes = Cluster.homes(key)
        var cluster = Cluster()
        cluster.down = [homes[1]]
        let fallback = Cluster.preference(key).dropFirst(3).first { $0 != homes[1] }!
        #expect(
            cluster.routing.replicas(forKey: key) == [
                HintedReplica(node: homes[0], hintFor: nil), HintedReplica(node: homes[2], hintFor: nil),
                HintedReplica(node: fallback, hintFor: homes[1]),
            ])
        cluster.sloppyQuorum = false
        #expect(cluster.routing.replicas(forKey: key).map(\.node) == [homes[0], homes[2]], "strict: home nodes only")
    }

    /// A node that is neither home nor fallback in its own view (a write was forwarded to
    /// it) keeps the version as a hint for the first home node the write cannot reach.
    @Test func aForwardedCoordinatorStandsInForTheFirstUnreachableHome() {
        let key = Cluster.key { !$0.contains("n1") }
        let homes = Cluster.homes(key)
        var cluster = Cluster()
        // n1 is no fallback here as long as every home node is up.
        let replicas = cluster.routing.coordinatorReplicas(forKey: key)
        #expect(replicas.first == HintedReplica(node: "n1", hintFor: homes[0]))
        #expect(replicas.dropFirst().map(\.node) == homes)
        cluster.down = [homes[0]]
        let asFallback = cluster.routing.coordinatorReplicas(forKey: key)
        #expect(asFallback.contains { $0.node == "n1" })
        #expect(asFallback.filter { $0.node == "n1" }.count == 1, "this node is listed once")
    }

    /// A hint whose target cannot take it goes to a home node that made none of its
    /// versions: handing it to its maker would leave one copy of a write acknowledged by two.
    @Test func aStandInIsAHomeNodeThatDidNotMakeTheVersion() {
        let key = Cluster.key { !$0.contains("n1") }
        let homes = Cluster.homes(key)
        let object = VersionedObject(versions: [version(by: homes[1])])
        let hint = Hint(target: homes[0], key: key, object: object)
        #expect(Cluster().routing.standIn(for: hint) == homes[2])
        var cluster = Cluster()
        cluster.down = [homes[2]]
        #expect(cluster.routing.standIn(for: hint) == homes[1], "the maker when no other home node is reachable")
    }

    @Test func aWriteThisNodeCannotStoreGoesToTheOtherReplicasThenTheRest() {
        let key = Cluster.key { $0.first == "n1" }
        let cluster = Cluster()
        let replicas = cluster.routing.replicas(forKey: key)
        let others = cluster.routing.others(of: replicas, forKey: key)
        #expect(Array(others.prefix(2)) == Array(Cluster.homes(key).dropFirst()))
        #expect(Set(others) == Set(Cluster.names).subtracting(["n1"]))
        var strict = cluster
        strict.sloppyQuorum = false
        #expect(strict.routing.others(of: replicas, forKey: key) == Array(Cluster.homes(key).dropFirst()))
    }
}

@Suite struct RequestCoordinationTests {
    /// A write for keys elsewhere goes to each home node in turn while none answers, then is
    /// coordinated here rather than refused, as a hint for the first home node.
    @Test func aWriteNoHomeNodeTakesIsForwardedInTurnThenCoordinatedHere() throws {
        let key = Cluster.key { !$0.contains("n1") }
        let homes = Cluster.homes(key)
        let cluster = Cluster()
        var requests = RequestCoordination(settings: Cluster.settings())
        var steps = requests.write(.client(9), put(key), view: cluster.view, now: Cluster.now)
        var asked: [NodeName] = []
        while case .forward(_, let target, let write)? = steps.first {
            asked.append(target)
            steps = requests.forwardAnswered(write, nil, view: cluster.view, now: Cluster.now)
        }
        #expect(asked == homes)
        #expect(steps.first == .event(.hintKept(key: key, target: homes[0])))
        guard case .store(.coordinateWrite(_, _, _, let actor, let wall, let hintFor, _, let floor, _), _)? = steps.last
        else {
            Issue.record("expected the write to be stored here, got \(steps)")
            return
        }
        #expect(actor == "n1" && wall == 5_000 && hintFor == homes[0] && floor == 7)
        #expect(requests.pendingWrites == 1)
    }

    @Test func aForwardedWriteIsAnsweredWithItsCoordinatorsResult() {
        let key = Cluster.key { !$0.contains("n1") }
        var requests = RequestCoordination(settings: Cluster.settings())
        let steps = requests.write(.client(9), put(key), view: Cluster().view, now: Cluster.now)
        guard case .forward(_, _, let write)? = steps.first else {
            Issue.record("expected a forward, got \(steps)")
            return
        }
        let result = WriteResult(succeeded: true, coordinator: "n2", acks: ["n2", "n3"], required: 2, context: .empty)
        #expect(
            requests.forwardAnswered(write, .coordinated(result), view: Cluster().view, now: Cluster.now)
                == [.writeReply(.client(9), result)])
        #expect(requests.pendingWrites == 0)
        #expect(requests.forwardAnswered(write, nil, view: Cluster().view, now: Cluster.now).isEmpty, "answered once")
    }

    @Test func aStartingNodeCoordinatesNoWrite() throws {
        let key = Cluster.key { $0.first == "n1" }
        var cluster = Cluster()
        cluster.starting = true
        var requests = RequestCoordination(settings: Cluster.settings())
        let client = requests.write(.client(9), put(key, w: 3), view: cluster.view, now: Cluster.now)
        guard case .writeReply(.client(9), let result)? = client.first else {
            Issue.record("expected a failed write, got \(client)")
            return
        }
        #expect(!result.succeeded && result.required == 3 && result.acks.isEmpty)
        #expect(result.error?.contains("is starting") == true)
        let peer = requests.coordinate(.peer(4), put(key), view: cluster.view, now: Cluster.now)
        guard case .refuse(4, let reason)? = peer.first else {
            Issue.record("expected the forwarder to be refused, got \(peer)")
            return
        }
        #expect(reason.contains("try another node"))
        #expect(requests.pendingWrites == 0)
    }

    /// A node that left (and is about to exit) stores nothing more: what it kept would go
    /// with it. Its clients and forwarders are told to try another node.
    @Test func aNodeThatLeftCoordinatesNoWrite() {
        let key = Cluster.key { $0.first == "n1" }
        var cluster = Cluster()
        cluster.departed = true
        var requests = RequestCoordination(settings: Cluster.settings())
        let client = requests.write(.client(9), put(key), view: cluster.view, now: Cluster.now)
        guard case .writeReply(.client(9), let result)? = client.first, client.count == 1 else {
            Issue.record("expected a failed write, got \(client)")
            return
        }
        #expect(!result.succeeded && result.error == "n1 left the cluster; try another node")
        #expect(requests.coordinate(.peer(4), put(key), view: cluster.view, now: Cluster.now) == [
            .refuse(4, "n1 left the cluster; try another node")
        ])
        #expect(requests.pendingWrites == 0)
    }

    /// Stored here, the version goes to the other home nodes; the client is answered at W.
    @Test func aStoredWriteIsReplicatedAndAnsweredAtW() throws {
        let key = Cluster.key { $0.first == "n1" }
        let homes = Cluster.homes(key)
        var requests = RequestCoordination(settings: Cluster.settings())
        let steps = requests.write(.client(9), put(key), view: Cluster().view, now: Cluster.now)
        guard case .store(_, let write)? = steps.last else {
            Issue.record("expected a store, got \(steps)")
            return
        }
        let size = ObjectSize(siblings: 1, bytes: 1)
        let sent = requests.stored(write, .version(version(), size: size), view: Cluster().view, now: Cluster.now)
        #expect(sent.first == .watch(key: key, size, .written))
        let replicas = sent.compactMap { step -> (NodeName, RunID)? in
            if case .replica(.put, let node, let run, _) = step { return (node, run) }
            return nil
        }
        #expect(replicas.map(\.0) == Array(homes.dropFirst()))
        let (node, run) = try #require(replicas.first)
        let answer = requests.replied(run: run, from: node, .stored, now: Cluster.now)
        guard case .writeReply(.client(9), let result)? = answer.first else {
            Issue.record("expected the answer at W=2, got \(answer)")
            return
        }
        #expect(result.succeeded && result.acks == ["n1", node] && result.dot == version().dot)
    }

    /// A full disk here: the write goes to the other replicas (with why), and when none
    /// takes it the client learns both.
    @Test func aWriteThisNodeCannotStoreFailsOverThenFailsWithWhy() throws {
        let key = Cluster.key { $0.first == "n1" }
        var cluster = Cluster()
        cluster.sloppyQuorum = false
        var requests = RequestCoordination(settings: Cluster.settings())
        let steps = requests.write(.client(9), put(key), view: cluster.view, now: Cluster.now)
        guard case .store(_, let write)? = steps.last else {
            Issue.record("expected a store, got \(steps)")
            return
        }
        var next = requests.stored(write, .failed("disk full"), view: cluster.view, now: Cluster.now)
        var asked: [NodeName] = []
        while case .forward(_, let target, _)? = next.first {
            asked.append(target)
            next = requests.forwardAnswered(write, .error("no"), view: cluster.view, now: Cluster.now)
        }
        #expect(asked == Array(Cluster.homes(key).dropFirst()))
        guard case .writeReply(.client(9), let result)? = next.first else {
            Issue.record("expected a failed write, got \(next)")
            return
        }
        #expect(result.error == "local write failed (disk full) and no other replica could coordinate it")
        #expect(requests.pendingWrites == 0)
        // A forwarded write that cannot be stored goes back as an error.
        let forwarded = requests.coordinate(.peer(4), put(key), view: cluster.view, now: Cluster.now)
        guard case .store(_, let again)? = forwarded.last else { return }
        #expect(
            requests.stored(again, .failed("disk full"), view: cluster.view, now: Cluster.now)
                == [.refuse(4, "n1 cannot store the write: disk full")])
    }

    @Test func aWriteOverTheLimitsIsRefusedWithTheRefusal() throws {
        let key = Cluster.key { $0.first == "n1" }
        var requests = RequestCoordination(settings: Cluster.settings())
        let steps = requests.write(.client(9), put(key), view: Cluster().view, now: Cluster.now)
        guard case .store(_, let write)? = steps.last else { return }
        let current = ObjectSize(siblings: 4, bytes: 10)
        let refusal = ObjectLimitRefusal(
            key: key, bound: .maxSiblings, limit: 4, current: current, attempted: ObjectSize(siblings: 5, bytes: 11))
        let answer = requests.stored(write, .refused(refusal), view: Cluster().view, now: Cluster.now)
        #expect(answer.first == .watch(key: key, current, .refused))
        guard case .writeReply(.client(9), let result)? = answer.last else {
            Issue.record("expected a refused write, got \(answer)")
            return
        }
        #expect(!result.succeeded && result.refusal == refusal && result.error == refusal.description)
    }

    /// A read asks every home node; the node's own reads (tombstone sweeps) answer no one,
    /// and without read repair a stale replica gets no write.
    @Test func readsAnswerTheirClientAndRepairOnlyWhenAllowed() throws {
        let key = Cluster.key { $0.first == "n1" }
        let homes = Cluster.homes(key)
        let stale = homes[2]
        for (readRepair, client) in [(true, ClientRequestID(9)), (false, 9), (true, RequestCoordination.internalClient)] {
            var requests = RequestCoordination(settings: Cluster.settings(readRepair: readRepair))
            let asked = requests.read(
                client: client, key: key, r: 2, routing: Cluster().routing, mayReap: false, now: Cluster.now)
            let runs = asked.compactMap { step -> (NodeName, RunID)? in
                if case .replica(.get, let node, let run, _) = step { return (node, run) }
                return nil
            }
            #expect(runs.map(\.0) == homes)
            let run = try #require(runs.first).1
            let found = VersionedObject(versions: [version()])
            var steps = requests.replied(run: run, from: homes[0], .object(found), now: Cluster.now)
            steps += requests.replied(run: run, from: homes[1], .object(found), now: Cluster.now)
            steps += requests.replied(run: run, from: stale, .object(nil), now: Cluster.now)
            let replied = steps.contains { if case .readReply(client, _) = $0 { true } else { false } }
            #expect(replied == (client != RequestCoordination.internalClient))
            let repairs = steps.filter { if case .replica(.put, stale, run, _) = $0 { true } else { false } }
            #expect(repairs.count == (readRepair ? 1 : 0))
            #expect(steps.contains(.event(.readRepair(key: key, peer: stale))) == readRepair)
        }
    }

    /// A traced read and write: each replica with when it was sent its part and answered
    /// (µs after the request came), a fallback with the home node it stands in for, the
    /// one not waited for without an answer, and when the client was answered.
    @Test func eachReplyCarriesWhenEachReplicaWasAskedAndAnswered() throws {
        let key = Cluster.key { $0.first == "n1" }
        let homes = Cluster.homes(key)
        func at(_ us: UInt64) -> NodeMachine.Now { NodeMachine.Now(monotonicMs: us / 1000, wallMs: 5_000, monotonicUs: us) }
        var requests = RequestCoordination(settings: Cluster.settings())
        let asked = requests.read(client: 9, key: key, r: 2, routing: Cluster().routing, mayReap: false, now: at(10_000))
        guard case .replica(.get, _, let run, _)? = asked.first else {
            Issue.record("expected a read, got \(asked)")
            return
        }
        let found = VersionedObject(versions: [version()])
        var steps = requests.replied(run: run, from: homes[1], .object(found), now: at(10_400))
        steps += requests.replied(run: run, from: homes[0], .failed("disk"), now: at(10_900))
        steps += requests.replied(run: run, from: homes[2], .object(found), now: at(11_500))
        let outcome = try #require(
            steps.compactMap { step -> GetCoordinator.Outcome? in
                if case .readReply(9, let outcome) = step { return outcome }
                return nil
            }.first)
        let trace = try #require(outcome.trace)
        #expect(trace.replicas.map(\.node) == homes)
        #expect(trace.replicas.map(\.sentUs) == [0, 0, 0])
        #expect(trace.replicas.map(\.answeredUs) == [900, 400, 1_500])
        #expect(trace.replicas[0].failure == "disk")
        #expect(trace.repliedUs == 1_500)

        // A write with a home node down: the fallback is traced with the home it stands
        // in for; this node's own store counts as its answer.
        var cluster = Cluster()
        cluster.down = [homes[2]]
        let write = requests.write(.client(8), put(key), view: cluster.view, now: at(20_000))
        guard case .store(_, let id)? = write.last else { return }
        let sent = requests.stored(id, .version(version(), size: .init(siblings: 1, bytes: 1)), view: cluster.view, now: at(20_300))
        let replicas = sent.compactMap { step -> (NodeName, RunID)? in
            if case .replica(.put, let node, let run, _) = step { return (node, run) }
            return nil
        }
        let (first, putRun) = try #require(replicas.first)
        let answer = requests.replied(run: putRun, from: first, .stored, now: at(21_000))
        guard case .writeReply(.client(8), let result)? = answer.first, let writeTrace = result.trace else {
            Issue.record("expected the answer at W=2, got \(answer)")
            return
        }
        #expect(writeTrace.replicas.first == .init(node: "n1", hintFor: nil, sentUs: 0, answeredUs: 300))
        #expect(writeTrace.replicas.contains { $0.node == first && $0.sentUs == 300 && $0.answeredUs == 1_000 })
        let fallback = try #require(writeTrace.replicas.first { $0.hintFor == homes[2] })
        #expect(fallback.answeredUs == nil && writeTrace.repliedUs == 1_000)
    }

    /// Every run answers by its deadline, and a tick after that leaves nothing running.
    @Test func aTickPastTheDeadlinesAnswersEveryRun() throws {
        let key = Cluster.key { $0.first == "n1" }
        var requests = RequestCoordination(settings: Cluster.settings())
        _ = requests.read(client: 1, key: key, r: 2, routing: Cluster().routing, mayReap: false, now: Cluster.now)
        let steps = requests.write(.client(2), put(key), view: Cluster().view, now: Cluster.now)
        guard case .store(_, let write)? = steps.last else { return }
        _ = requests.stored(
            write, .version(version(), size: ObjectSize(siblings: 1, bytes: 1)), view: Cluster().view, now: Cluster.now)
        #expect(requests.running == 2)
        let later = NodeMachine.Now(monotonicMs: 1_000_000, wallMs: 1_000_000)
        let answers = requests.tick(now: later)
        #expect(answers.contains { if case .readReply(1, let outcome) = $0 { !outcome.succeeded } else { false } })
        #expect(answers.contains { if case .writeReply(.client(2), let result) = $0 { !result.succeeded } else { false } })
        #expect(requests.tick(now: later).isEmpty)
        #expect(requests.running == 0)
    }
}
