import Testing

@testable import DynamoCore

/// Issue 10, items 6 and 7: a key could take siblings and bytes without end, until it
/// could no longer be decoded (10,001 siblings) or carried to a peer (16 MiB).
@Suite struct ObjectLimitsTests {
    let policy = ClockPolicy()

    /// `n` blind writes by `actor`: every one a sibling.
    func blindWrites(_ n: Int, value: [UInt8] = [1], actor: ActorName = "n1") throws -> VersionedObject {
        var object = VersionedObject()
        for i in 0..<n {
            object = try object.writing(value, context: nil, actor: actor, now: UInt64(i), policy: policy).object
        }
        return object
    }

    @Test(arguments: [0, 1, 3, 40])
    func theEncodedSizeIsComputedExactly(siblings: Int) throws {
        var object = try blindWrites(siblings, value: Array(repeating: 7, count: 200))
        if siblings > 0 {
            // A version with a context (a past) and a tombstone, with counters past one byte.
            object = try object.writing([9], context: object.context, actor: "n2", now: 1 << 40, policy: policy).object
            object = try object.writing(nil, context: nil, actor: "a-longer-actor-name", now: 5, policy: policy).object
        }
        #expect(object.encodedByteCount == object.encoded().count)
        #expect(object.size == ObjectSize(siblings: object.versions.count, bytes: object.encoded().count))
        for value: UInt64 in [0, 1, 127, 128, 16_383, 16_384, 1 << 62, .max] {
            var writer = ByteWriter()
            writer.write(varint: value)
            #expect(ByteWriter.varintSize(value) == writer.bytes.count)
        }
    }

    @Test func aWriteMayFillAKeyToTheLimitButNotPastIt() {
        let limits = ObjectLimits(warnSiblings: 3, maxSiblings: 5, warnObjectBytes: 100, maxObjectBytes: 1000)
        let key = Array("cart".utf8)
        #expect(
            limits.refusal(forKey: key, current: .init(siblings: 4, bytes: 10), next: .init(siblings: 5, bytes: 12))
                == nil)
        let refusal = limits.refusal(
            forKey: key, current: .init(siblings: 5, bytes: 12), next: .init(siblings: 6, bytes: 14))
        #expect(refusal?.bound == .maxSiblings)
        #expect(refusal?.limit == 5)
        let text = refusal?.description ?? ""
        #expect(text.contains("key \"cart\" has 5 siblings"), "\(text)")
        #expect(text.contains("would make 6, over the limit of 5 (--max-siblings)"), "\(text)")
        #expect(text.contains("X-Dynamo-Context"), "\(text)")
        // Bytes likewise, named by their own flag.
        let big = limits.refusal(
            forKey: key, current: .init(siblings: 1, bytes: 900), next: .init(siblings: 1, bytes: 1001))
        #expect(big?.bound == .maxObjectBytes)
        #expect(big?.description.contains("over the limit of 1000 bytes (--max-object-bytes)") == true)
        #expect(big?.description.contains("write a smaller value") == true)
        // Warnings.
        #expect(!limits.isNear(.init(siblings: 2, bytes: 99)))
        #expect(limits.isNear(.init(siblings: 3, bytes: 1)))
        #expect(limits.isNear(.init(siblings: 1, bytes: 100)))
    }

    /// A key already over a limit (stored before the limits, or merged from diverged
    /// replicas) must stay resolvable: a change that does not grow it passes.
    @Test func aKeyOverTheLimitCanAlwaysShrink() {
        let limits = ObjectLimits(warnSiblings: 3, maxSiblings: 5, warnObjectBytes: 100, maxObjectBytes: 1000)
        let over = ObjectSize(siblings: 9, bytes: 5000)
        #expect(limits.refusal(forKey: [1], current: over, next: .init(siblings: 1, bytes: 20)) == nil)
        #expect(limits.refusal(forKey: [1], current: over, next: .init(siblings: 9, bytes: 4000)) == nil)
        #expect(
            limits.refusal(forKey: [1], current: over, next: .init(siblings: 10, bytes: 4000))?.bound == .maxSiblings)
        #expect(
            limits.refusal(forKey: [1], current: over, next: .init(siblings: 8, bytes: 5001))?.bound == .maxObjectBytes)
    }

    @Test func flagValuesAreCheckedAgainstTheFrameAndTheValueLimit() {
        #expect(ObjectLimits().problem(maxValueBytes: 1 << 20) == nil)
        #expect(ObjectLimits().problem(maxValueBytes: 8 << 20) == nil)
        // Every default fits the frame with room for the key and the message.
        #expect(ObjectLimits.defaultMaxObjectBytes <= ObjectLimits.ceilingBytes)
        #expect(ObjectLimits.ceilingBytes + KeyLimits.absoluteMaxKeyBytes + 1024 < ObjectLimits.peerFrameBytes)
        #expect(ObjectLimits.largestMaxSiblings < VersionedObject.decodeVersionLimit)
        let cases: [(ObjectLimits, String)] = [
            (.configured(maxSiblings: 0), "--max-siblings"),
            (.configured(maxSiblings: 1001), "--max-siblings"),
            (.configured(maxSiblings: 5, warnSiblings: 6), "--warn-siblings"),
            (.configured(maxObjectBytes: ObjectLimits.ceilingBytes + 1), "--max-object-bytes"),
            (.configured(maxObjectBytes: 1 << 20), "--max-value-bytes"),
            (.configured(maxObjectBytes: 2 << 20, warnObjectBytes: 3 << 20), "--warn-object-bytes"),
        ]
        for (limits, flag) in cases {
            #expect(limits.problem(maxValueBytes: 1 << 20)?.contains(flag) == true, "\(limits)")
        }
        // Warnings left unset follow a lowered maximum.
        let low = ObjectLimits.configured(maxSiblings: 5, maxObjectBytes: 65_536)
        #expect(low.warnSiblings == 5 && low.warnObjectBytes == 65_536)
        #expect(low.problem(maxValueBytes: 16_384) == nil)
    }

    /// 500 blind writes took 1.1 s at first and 12.4 s by the fourth 500: the merge compared
    /// every pair of versions. Now it is linear in the versions: merging two piles of
    /// 30,000 concurrent versions (1.8 billion comparisons before) takes a moment.
    @Test(.timeLimit(.minutes(1)))
    func mergingManyConcurrentVersionsIsNotQuadratic() throws {
        let ours = VersionedObject(
            versions: (1...30_000).map {
                Version(dot: Dot(actor: "n1", counter: UInt64($0)), past: .empty, value: [1], timestamp: 1)
            })
        let theirs = VersionedObject(
            versions: (1...30_000).map {
                Version(dot: Dot(actor: "n2", counter: UInt64($0)), past: .empty, value: [2], timestamp: 1)
            })
        let merged = ours.merged(with: theirs, policy: policy)
        #expect(merged.versions.count == 60_000)
        #expect(merged.merged(with: ours, policy: policy) == merged)
        // A write with the merged context replaces them all.
        let resolved = try merged.writing([3], context: merged.context, actor: "n1", now: 2, policy: policy)
        #expect(resolved.object.versions == [resolved.version])
    }

    /// Merge keeps its meaning: duplicates collapse, a version with the same dot but other
    /// contents stays (a damaged or forged copy is not silently dropped), and only a version
    /// whose past covers another's dot supersedes it.
    @Test func mergeStillKeepsWhatNoVersionSupersedes() throws {
        let a = Version(dot: Dot(actor: "n1", counter: 1), past: .empty, value: [1], timestamp: 1)
        let a2 = Version(dot: Dot(actor: "n1", counter: 1), past: .empty, value: [9], timestamp: 1)
        let b = Version(dot: Dot(actor: "n2", counter: 1), past: CausalHistory(dots: [a.dot]), value: [2], timestamp: 2)
        let c = Version(dot: Dot(actor: "n3", counter: 1), past: .empty, value: [3], timestamp: 3)
        let left = VersionedObject(versions: [a, c])
        #expect(left.merged(with: left, policy: policy) == left)
        #expect(left.merged(with: VersionedObject(versions: [a2]), policy: policy).versions.count == 3)
        let merged = left.merged(with: VersionedObject(versions: [b]), policy: policy)
        #expect(Set(merged.versions) == [b, c])
        #expect(merged == VersionedObject(versions: [b]).merged(with: left, policy: policy))
    }
}

/// The node refuses a write that would cross the limits before anything is stored, says
/// why to the client, and lists the key in its status.
@Suite struct ObjectLimitNodeTests {
    static let limits = ObjectLimits(warnSiblings: 3, maxSiblings: 5, warnObjectBytes: 1 << 20, maxObjectBytes: 2 << 20)

    func machine() -> NodeMachine {
        let settings = NodeSettings(
            name: "n1", peerAddress: "127.0.0.1:7001", httpAddress: "127.0.0.1:8001",
            tokens: Token.defaultPositions(for: "n1", count: 8), objectLimits: Self.limits)
        return NodeMachine(settings: settings, seed: 1)
    }

    @Test func aRefusedWriteIsAnsweredWithTheRefusalAndNeverReplicated() throws {
        var node = machine()
        let now = NodeMachine.Now(monotonicMs: 100, wallMs: 100)
        let key = Array("cart".utf8)
        let actions = node.handle(.clientWrite(id: 7, key: key, value: [1], context: nil, w: nil), now: now)
        guard case .storage(let token, .coordinateWrite(_, _, _, _, _, _, _, _, let limits)) = actions.last else {
            Issue.record("expected a coordinated write, got \(actions)")
            return
        }
        #expect(limits == Self.limits)
        let refusal = ObjectLimitRefusal(
            key: key, bound: .maxSiblings, limit: 5, current: .init(siblings: 5, bytes: 80),
            attempted: .init(siblings: 6, bytes: 96))
        let answer = node.handle(.storageResult(token: token, .refused(refusal)), now: now)
        #expect(!answer.contains { if case .send = $0 { true } else { false } })
        let reply = answer.compactMap { action -> WriteResult? in
            if case .writeReply(7, let result) = action { return result }
            return nil
        }.first
        #expect(reply?.succeeded == false)
        #expect(reply?.refusal == refusal)
        #expect(reply?.error?.contains("--max-siblings") == true)
        #expect(
            answer.contains(.objectNearLimit(ObjectReport(key: key, size: refusal.current, refused: true, atMs: 100))))
        #expect(node.hotKeys.reports.map(\.key) == [key])
        #expect(node.hotKeys.refusedWrites == 1)
    }

    /// A joining node's transfer batch ends before an object that would not fit with it
    /// (it goes alone in the next), and skips a key stored past what a peer decodes: one
    /// such key made the whole answer too large for a frame, and the join never finished.
    @Test func transferBatchesFitInAFrame() {
        var node = machine()
        let now = NodeMachine.Now(monotonicMs: 100, wallMs: 100)
        let joiner = Member(
            name: "n2", peerAddress: "127.0.0.1:7002", httpAddress: "127.0.0.1:8002",
            tokens: Token.defaultPositions(for: "n2", count: 8), status: .joining)
        func version(_ counter: Int, size: Int) -> Version {
            Version(
                dot: Dot(actor: "n1", counter: UInt64(counter)), past: .empty,
                value: [UInt8](repeating: 1, count: size), timestamp: 1)
        }
        let legacy = VersionedObject(
            versions: (1...(VersionedObject.decodeVersionLimit + 1)).map { version($0, size: 0) })
        let big = VersionedObject(versions: [version(1, size: 3 << 20)])
        let bigger = VersionedObject(versions: [version(1, size: 2 << 20)])
        let entries = [
            KeyedObject(key: [1], object: legacy), KeyedObject(key: [2], object: big),
            KeyedObject(key: [3], object: bigger),
        ]
        let asked = node.handle(.peerRequest(handle: 1, from: "n2", .pull(requester: joiner, after: nil)), now: now)
        guard case .storage(let token, .scanOwn) = asked.last else {
            Issue.record("expected a scan, got \(asked)")
            return
        }
        let answer = node.handle(.storageResult(token: token, .entries(entries)), now: now)
        #expect(answer == [.respond(handle: 1, .transfer(entries: [entries[1]], next: [2]))])
    }

    @Test func keysPastAWarningAreListedOnceEachAndBounded() {
        var hot = HotKeys(capacity: 3)
        for i in 0..<5 {
            #expect(hot.note([UInt8(i)], .init(siblings: 4, bytes: 1), .written, atMs: 1).isNew)
        }
        #expect(!hot.note([4], .init(siblings: 5, bytes: 1), .refused, atMs: 2).isNew)
        #expect(hot.reports.map(\.key) == [[4], [3], [2]])
        #expect(hot.reports.first?.size.siblings == 5)
        #expect(hot.refusedWrites == 1)
        // A read after a refusal keeps it; a stored write clears it.
        #expect(hot.note([4], .init(siblings: 5, bytes: 1), .read, atMs: 3).report.refused)
        #expect(!hot.note([4], .init(siblings: 5, bytes: 1), .written, atMs: 4).report.refused)
        hot.cleared([3])
        #expect(hot.reports.map(\.key) == [[4], [2]])
    }
}
