import Testing

@testable import DynamoCore

@Suite struct PutCoordinatorTests {
    let version = try! VersionedObject().writing([1], context: nil, actor: "a", now: 1, policy: ClockPolicy()).object
    let replicas = ["a", "b", "c"].map { HintedReplica(node: $0, hintFor: nil) }

    func coordinator(w: Int) -> PutCoordinator {
        PutCoordinator(
            key: [1], object: version, replicas: replicas, coordinator: "a", localStored: true, w: w, now: 0,
            timeoutMs: 100)
    }

    @Test func sendsToTheOtherReplicasAndAnswersAtW() {
        var put = coordinator(w: 2)
        let sent = put.start()
        #expect(
            sent == [
                .send(to: "b", .put(key: [1], object: version, hintFor: nil)),
                .send(to: "c", .put(key: [1], object: version, hintFor: nil)),
            ])
        let actions = put.receive(from: "c", .stored)
        #expect(actions == [.respond(.init(succeeded: true, acks: ["a", "c"], required: 2))])
        #expect(put.receive(from: "b", .stored) == [])
        #expect(put.isFinished(now: 1))
    }

    @Test func failsWhenWCanNoLongerBeMetOrTheDeadlinePasses() {
        var put = coordinator(w: 3)
        _ = put.start()
        #expect(
            put.receive(from: "b", .failed("disk")) == [.respond(.init(succeeded: false, acks: ["a"], required: 3))])

        var slow = coordinator(w: 3)
        _ = slow.start()
        _ = slow.receive(from: "b", .stored)
        #expect(slow.tick(now: 50) == [])
        #expect(slow.tick(now: 100) == [.respond(.init(succeeded: false, acks: ["a", "b"], required: 3))])
        #expect(slow.tick(now: 200) == [])
    }

    /// Issue 10, item 1: a replica that fails (a refused connection right after a crash) is
    /// replaced by the next fallback within the same request, with a hint for it.
    @Test func aFailedReplicaIsReplacedByTheNextFallbackWithAHint() {
        var put = PutCoordinator(
            key: [1], object: version, replicas: replicas, coordinator: "a", localStored: true, w: 3, now: 0,
            timeoutMs: 100, fallbacks: ["b", "d", "e"])
        _ = put.start()
        #expect(put.receive(from: "b", .failed("no answer from b"), now: 2) == [.send(to: "d", .put(key: [1], object: version, hintFor: "b"))])
        // The fallback fails too: the next one stands in for the same home node.
        #expect(put.receive(from: "d", .failed("no answer from d"), now: 3) == [.send(to: "e", .put(key: [1], object: version, hintFor: "b"))])
        #expect(put.receive(from: "c", .stored, now: 4) == [])
        #expect(put.receive(from: "e", .stored, now: 5) == [.respond(.init(succeeded: true, acks: ["a", "c", "e"], required: 3))])
        #expect(put.replicas.map(\.node) == ["a", "b", "c", "d", "e"])
        #expect(put.replicas.last?.hintFor == "b")
        // No fallbacks left, or past the deadline: W cannot be met, and the write fails.
        var late = PutCoordinator(
            key: [1], object: version, replicas: replicas, coordinator: "a", localStored: true, w: 3, now: 0,
            timeoutMs: 100, fallbacks: ["d"])
        _ = late.start()
        #expect(late.receive(from: "b", .failed("timeout"), now: 100) == [.respond(.init(succeeded: false, acks: ["a"], required: 3))])
    }

    @Test func ignoresRepliesFromStrangersAndDuplicates() {
        var put = coordinator(w: 3)
        _ = put.start()
        #expect(put.receive(from: "z", .stored) == [])
        #expect(put.receive(from: "b", .stored) == [])
        #expect(put.receive(from: "b", .stored) == [])
        #expect(put.receive(from: "c", .stored).count == 1)
    }

    @Test func wOfOneAnswersAtStart() {
        var put = coordinator(w: 1)
        #expect(put.start().last == .respond(.init(succeeded: true, acks: ["a"], required: 1)))
    }
}

@Suite struct GetCoordinatorTests {
    let policy = ClockPolicy()
    let config = QuorumConfig(requestTimeoutMs: 100, readRepairWindowMs: 100)

    /// Issue 10, item 3: a read that fails on storage errors says so, not "in time".
    @Test func aReadThatFailsOnStorageErrorsCarriesTheReasons() {
        var get = GetCoordinator(
            key: [7], replicas: ["a", "b", "c"].map { HintedReplica(node: $0, hintFor: nil) }, r: 2, policy: policy,
            now: 0, config: config)
        _ = get.start()
        #expect(get.receive(from: "a", .failed("RocksDB get failed: IO error")) == [])
        guard case .respond(let outcome)? = get.receive(from: "b", .failed("stored object is corrupt")).first else {
            Issue.record("no answer once R could not be met")
            return
        }
        #expect(!outcome.succeeded)
        #expect(outcome.failed == ["a": "RocksDB get failed: IO error", "b": "stored object is corrupt"])
    }

    @Test func answersWithTheMergeOfRRepliesThenRepairsStaleReplicas() throws {
        let old = try VersionedObject().writing([1], context: nil, actor: "a", now: 1, policy: policy).object
        let new = try old.writing([2], context: old.context, actor: "a", now: 2, policy: policy).object
        var get = GetCoordinator(
            key: [7], replicas: ["a", "b", "c"].map { HintedReplica(node: $0, hintFor: nil) }, r: 2, policy: policy,
            now: 0, config: config)
        #expect(get.start() == ["a", "b", "c"].map { .send(to: $0, .get(key: [7])) })
        #expect(get.receive(from: "a", .object(new)) == [])
        let answer = get.receive(from: "b", .object(old))
        #expect(
            answer == [
                .respond(.init(succeeded: true, object: new, replies: ["a", "b"], required: 2, asked: get.replicas))
            ])
        // The late reply from c (missing) completes the set: b (stale) and c (missing) are repaired.
        let repairs = get.receive(from: "c", .object(nil))
        #expect(
            Set(repairs) == [
                .send(to: "b", .put(key: [7], object: new, hintFor: nil)),
                .send(to: "c", .put(key: [7], object: new, hintFor: nil)),
            ])
        #expect(get.isFinished)
    }

    @Test func siblingsFromDifferentReplicasAreAllReturned() throws {
        let x = try VersionedObject().writing([1], context: nil, actor: "a", now: 1, policy: policy).object
        let y = try VersionedObject().writing([2], context: nil, actor: "b", now: 1, policy: policy).object
        var get = GetCoordinator(
            key: [7], replicas: ["a", "b"].map { HintedReplica(node: $0, hintFor: nil) }, r: 2, policy: policy, now: 0,
            config: config)
        _ = get.start()
        _ = get.receive(from: "a", .object(x))
        guard case .respond(let outcome) = get.receive(from: "b", .object(y)).first else {
            Issue.record("no answer")
            return
        }
        #expect(outcome.object.versions.count == 2)
    }

    @Test func timesOutWithTooFewRepliesAndStillRepairsWhatItSaw() throws {
        let x = try VersionedObject().writing([1], context: nil, actor: "a", now: 1, policy: policy).object
        var get = GetCoordinator(
            key: [7], replicas: ["a", "b", "c"].map { HintedReplica(node: $0, hintFor: nil) }, r: 3, policy: policy,
            now: 0, config: config)
        _ = get.start()
        _ = get.receive(from: "a", .object(x))
        _ = get.receive(from: "b", .object(nil))
        #expect(
            get.tick(now: 100) == [
                .respond(.init(succeeded: false, object: x, replies: ["a", "b"], required: 3, asked: get.replicas))
            ])
        #expect(get.tick(now: 200) == [.send(to: "b", .put(key: [7], object: x, hintFor: nil))])
        #expect(get.isFinished)
    }

    @Test func aFallbackIsRepairedAsAHintForTheNodeItStandsIn() throws {
        let x = try VersionedObject().writing([1], context: nil, actor: "a", now: 1, policy: policy).object
        let replicas = [HintedReplica(node: "a", hintFor: nil), HintedReplica(node: "d", hintFor: "b")]
        var get = GetCoordinator(key: [7], replicas: replicas, r: 2, policy: policy, now: 0, config: config)
        _ = get.start()
        _ = get.receive(from: "a", .object(x))
        let actions = get.receive(from: "d", .object(nil))
        #expect(actions.contains(.send(to: "d", .put(key: [7], object: x, hintFor: "b"))))
    }

    /// A tombstone written at wall time 1000, read at `wallNow` with a 500 ms grace.
    func tombstoneRead(wallNow: UInt64, replicas: [HintedReplica], replies: [(String, VersionedObject?)])
        -> [GetCoordinator.Action]
    {
        var config = self.config
        config.tombstoneGraceMs = 500
        var get = GetCoordinator(
            key: [7], replicas: replicas, r: 3, policy: policy, now: 0, config: config, wallNow: wallNow)
        _ = get.start()
        return replies.flatMap { get.receive(from: $0.0, .object($0.1)) }.filter {
            if case .respond = $0 { return false }
            return true
        }
    }

    var tombstone: VersionedObject {
        let live = try! VersionedObject().writing([1], context: nil, actor: "a", now: 900, policy: policy).object
        return try! live.writing(nil, context: live.context, actor: "a", now: 1000, policy: policy).object
    }

    var home: [HintedReplica] { ["a", "b", "c"].map { HintedReplica(node: $0, hintFor: nil) } }

    @Test func anOldTombstoneEveryHomeReplicaHasIsReaped() {
        let actions = tombstoneRead(
            wallNow: 2000, replicas: home, replies: [("a", tombstone), ("b", tombstone), ("c", tombstone)])
        #expect(Set(actions) == Set(["a", "b", "c"].map { .send(to: $0, .reap(key: [7], object: tombstone)) }))
        // A replica that already reaped (answers nothing) is left alone; the others reap.
        let partly = tombstoneRead(
            wallNow: 2000, replicas: home, replies: [("a", tombstone), ("b", nil), ("c", tombstone)])
        #expect(Set(partly) == Set(["a", "c"].map { .send(to: $0, .reap(key: [7], object: tombstone)) }))
    }

    @Test func tombstonesAreKeptWhileYoungStaleOrNotEveryHomeReplicaAnswered() throws {
        // Younger than the grace period: nothing happens.
        #expect(
            tombstoneRead(
                wallNow: 1200, replicas: home, replies: [("a", tombstone), ("b", tombstone), ("c", tombstone)]
            ).isEmpty)
        // A replica still holding the deleted value is repaired, not reaped.
        let live = try VersionedObject().writing([1], context: nil, actor: "a", now: 900, policy: policy).object
        #expect(
            tombstoneRead(wallNow: 2000, replicas: home, replies: [("a", tombstone), ("b", live), ("c", tombstone)])
                == [.send(to: "b", .put(key: [7], object: tombstone, hintFor: nil))])
        // A fallback among the replicas: the intended home node has not been heard from.
        let sloppy = [home[0], home[1], HintedReplica(node: "d", hintFor: "c")]
        #expect(
            tombstoneRead(
                wallNow: 2000, replicas: sloppy, replies: [("a", tombstone), ("b", tombstone), ("d", tombstone)]
            ).isEmpty)
    }

    @Test func failedRepliesCountAgainstR() {
        var get = GetCoordinator(
            key: [7], replicas: ["a", "b"].map { HintedReplica(node: $0, hintFor: nil) }, r: 2, policy: policy, now: 0,
            config: config)
        _ = get.start()
        let actions = get.receive(from: "a", .failed("io"))
        #expect(
            actions == [
                .respond(
                    .init(
                        succeeded: false, object: VersionedObject(), replies: [], required: 2, asked: get.replicas,
                        failed: ["a": "io"]))
            ])
    }
}
