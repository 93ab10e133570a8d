import DynamoAPI
import Testing

@testable import DynamoCore

/// Random histories for property-style tests: several replicas, writes with and without
/// contexts, and merges between replicas, all from a seeded generator.
struct History {
    var replicas: [VersionedObject]
    var acknowledged: [[UInt8]] = []
    /// Every version ever written.
    var written: [Version] = []
    var rng: SeededRandom
    let policy: ClockPolicy
    var now: UInt64 = 1_000

    init(seed: UInt64, replicas: Int = 3, policy: ClockPolicy = ClockPolicy()) {
        self.replicas = Array(repeating: VersionedObject(), count: replicas)
        self.rng = SeededRandom(seed: seed)
        self.policy = policy
    }

    mutating func step() {
        now += UInt64.random(in: 1...5, using: &rng)
        let i = Int.random(in: 0..<replicas.count, using: &rng)
        switch Int.random(in: 0..<3, using: &rng) {
        case 0:
            let value = Array("v\(now)".utf8)
            let context: CausalHistory? = Bool.random(using: &rng) ? replicas[i].context : nil
            let (object, version) = try! replicas[i].writing(
                value, context: context, actor: "r\(i)", now: now, policy: policy)
            replicas[i] = object
            written.append(version)
            acknowledged.append(value)
        default:
            let j = Int.random(in: 0..<replicas.count, using: &rng)
            replicas[i] = replicas[i].merged(with: replicas[j], policy: policy)
        }
    }

    var converged: VersionedObject {
        replicas.reduce(VersionedObject()) { $0.merged(with: $1, policy: policy) }
    }
}

@Suite struct CausalHistoryTests {
    func randomHistory(_ rng: inout SeededRandom) -> CausalHistory {
        var h = CausalHistory()
        for actor in ["a", "b", "c", "d"] where Bool.random(using: &rng) {
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                h.insert(
                    Dot(actor: actor, counter: UInt64.random(in: 1...12, using: &rng)),
                    timestamp: UInt64.random(in: 0...100, using: &rng))
            }
        }
        return h
    }

    @Test func mergeIsCommutativeAssociativeAndIdempotent() {
        var rng = SeededRandom(seed: 11)
        for _ in 0..<500 {
            let a = randomHistory(&rng)
            let b = randomHistory(&rng)
            let c = randomHistory(&rng)
            #expect(a.merged(with: b) == b.merged(with: a))
            #expect(a.merged(with: b).merged(with: c) == a.merged(with: b.merged(with: c)))
            #expect(a.merged(with: a) == a)
            #expect(a.merged(with: b).descends(a) && a.merged(with: b).descends(b))
        }
    }

    @Test func coversExactlyTheInsertedEventsAsCompactIntervals() {
        var rng = SeededRandom(seed: 12)
        for _ in 0..<300 {
            var h = CausalHistory()
            var inserted: Set<UInt64> = []
            for _ in 0..<Int.random(in: 0...30, using: &rng) {
                let c = UInt64.random(in: 1...40, using: &rng)
                inserted.insert(c)
                h.insert(Dot(actor: "a", counter: c), timestamp: 1)
            }
            for c in UInt64(1)...41 { #expect(h.covers(Dot(actor: "a", counter: c)) == inserted.contains(c)) }
            let ranges = h.entries["a"]?.ranges ?? []
            // Canonical: sorted, disjoint and never adjacent.
            for (x, y) in zip(ranges, ranges.dropFirst()) { #expect(x.upperBound + 1 < y.lowerBound) }
        }
        var run = CausalHistory()
        for c in UInt64(501)...600 { run.insert(Dot(actor: "n1", counter: c), timestamp: 1) }
        #expect(run.entries["n1"]?.ranges == [501...600])
    }

    @Test func pruningKeepsTheNewestEntriesAndTheWriter() {
        var h = CausalHistory()
        for i in 1...15 { h.insert(Dot(actor: "a\(i)", counter: 1), timestamp: UInt64(i * 10)) }
        h.insert(Dot(actor: "old-writer", counter: 3), timestamp: 1)
        let pruned = h.pruned(to: 10, keep: "old-writer")
        #expect(pruned.entries.count == 10)
        #expect(pruned.covers(Dot(actor: "old-writer", counter: 3)))
        #expect(Set(pruned.entries.keys).subtracting(["old-writer"]) == Set((7...15).map { "a\($0)" }))
        #expect(h.pruned(to: 20, keep: nil) == h)
    }

    @Test func roundTripsAndRejectsNonCanonicalForms() throws {
        var rng = SeededRandom(seed: 13)
        for _ in 0..<200 {
            let h = randomHistory(&rng)
            var w = ByteWriter()
            h.encode(into: &w)
            var r = ByteReader(w.bytes)
            #expect(try CausalHistory.decode(from: &r) == h)
        }
        // Overlapping ranges [1...3] and [2...2] are not canonical.
        var w = ByteWriter()
        w.write(varint: 1)
        w.write(string: "a")
        w.write(varint: 0)
        w.write(varint: 2)
        for (low, span) in [(UInt64(1), UInt64(2)), (2, 0)] {
            w.write(varint: low)
            w.write(varint: span)
        }
        var r = ByteReader(w.bytes)
        #expect(throws: ByteDecodingError.self) { try CausalHistory.decode(from: &r) }
    }

    @Test func writesPruneTheirClocksToTheConfiguredBound() {
        let policy = ClockPolicy(maxEntries: 3)
        var object = VersionedObject()
        for (i, actor) in ["a", "b", "c", "d", "e"].enumerated() {
            object =
                try! object.writing(Array("x".utf8), context: object.context, actor: actor, now: UInt64(i), policy: policy)
                .object
        }
        #expect(object.versions.count == 1, "each write covered the last: pruning keeps the newest entries, so no false sibling")
        #expect(object.versions.allSatisfy { $0.past.entries.count <= 3 })
        #expect(object.versions.contains { $0.dot.actor == "e" })
    }
}

@Suite struct VersionedObjectTests {
    let policy = ClockPolicy()

    @Test func blindWritesBecomeSiblingsAndAContextReplacesExactlyWhatItCovers() throws {
        var object = VersionedObject()
        object = try object.writing(Array("a".utf8), context: nil, actor: "n1", now: 1, policy: policy).object
        let seen = object.context
        object = try object.writing(Array("b".utf8), context: nil, actor: "n1", now: 2, policy: policy).object
        object = try object.writing(Array("c".utf8), context: nil, actor: "n2", now: 3, policy: policy).object
        #expect(object.versions.compactMap(\.value).sorted { $0.lexicographicallyPrecedes($1) } == [[97], [98], [99]])
        // A stale context (it saw only "a") replaces only "a".
        object = try object.writing(Array("d".utf8), context: seen, actor: "n1", now: 4, policy: policy).object
        #expect(Set(object.versions.compactMap(\.value)) == [[98], [99], [100]])
        // The merged context replaces everything.
        object = try object.writing(Array("e".utf8), context: object.context, actor: "n3", now: 5, policy: policy).object
        #expect(object.versions.map(\.value) == [[101]])
    }

    @Test(arguments: 0..<200) func acknowledgedWritesAreNeverLostWithoutAContext(seed: Int) {
        var history = History(seed: UInt64(seed))
        for _ in 0..<40 { history.step() }
        // Every value is either still present or was superseded by a write whose context covered it.
        let final = history.converged
        let present = Set(final.versions)
        #expect(!history.written.isEmpty)
        for version in history.written where !present.contains(version) {
            #expect(final.versions.contains { $0.supersedes(version) }, "seed \(seed): lost \(version.dot)")
        }
        #expect(!final.isEmpty || history.acknowledged.isEmpty)
    }

    @Test(arguments: 0..<100) func mergeIsCommutativeAssociativeAndIdempotent(seed: Int) {
        var history = History(seed: UInt64(seed))
        for _ in 0..<30 { history.step() }
        let (a, b, c) = (history.replicas[0], history.replicas[1], history.replicas[2])
        #expect(a.merged(with: b, policy: policy) == b.merged(with: a, policy: policy))
        #expect(
            a.merged(with: b, policy: policy).merged(with: c, policy: policy)
                == a.merged(with: b.merged(with: c, policy: policy), policy: policy))
        #expect(a.merged(with: a, policy: policy) == a)
    }

    @Test func aContextFromABlindWriteCoversOnlyThatWrite() throws {
        // n1 writes "a", then a blind "b": the context of "b" must not cover "a".
        var object = try VersionedObject().writing([97], context: nil, actor: "n1", now: 1, policy: policy).object
        let (afterB, b) = try object.writing([98], context: nil, actor: "n1", now: 2, policy: policy)
        object = afterB
        #expect(object.versions.count == 2)
        #expect(b.clock.covers(b.dot) && !b.clock.covers(Dot(actor: "n1", counter: 1)))
        object = try object.writing([99], context: b.clock, actor: "n1", now: 3, policy: policy).object
        #expect(Set(object.versions.compactMap(\.value)) == [[97], [99]])
    }

    @Test func aDotCollisionWithDifferentContentKeepsBoth() {
        let dot = Dot(actor: "n1", counter: 1)
        let one = VersionedObject(versions: [Version(dot: dot, past: .empty, value: [1], timestamp: 1)])
        let other = VersionedObject(versions: [Version(dot: dot, past: .empty, value: [2], timestamp: 2)])
        #expect(one.merged(with: other, policy: policy).versions.count == 2)
    }

    @Test func tombstonesAreVersionsAndDeleteWithContextLeavesOnlyATombstone() throws {
        var object = try VersionedObject().writing([1], context: nil, actor: "n1", now: 1, policy: policy).object
        object = try object.writing(nil, context: object.context, actor: "n2", now: 2, policy: policy).object
        #expect(object.isDeleted)
        #expect(object.versions.count == 1)
        // A concurrent write survives a delete that did not see it.
        let concurrent = try VersionedObject().writing([9], context: nil, actor: "n3", now: 3, policy: policy).object
        let merged = object.merged(with: concurrent, policy: policy)
        #expect(merged.liveVersions.map(\.value) == [[9]])
        #expect(!merged.isDeleted)
    }

    @Test func lastWriteWinsKeepsOnlyTheNewestVersion() throws {
        let lww = ClockPolicy(conflicts: .lww)
        let a = try VersionedObject().writing([1], context: nil, actor: "n1", now: 10, policy: lww).object
        let b = try VersionedObject().writing([2], context: nil, actor: "n2", now: 20, policy: lww).object
        #expect(a.merged(with: b, policy: lww).versions.map(\.value) == [[2]])
        #expect(b.merged(with: a, policy: lww).versions.map(\.value) == [[2]])
        let c = try a.writing([3], context: nil, actor: "n1", now: 30, policy: lww).object
        #expect(c.versions.map(\.value) == [[3]])
    }

    @Test func objectsRoundTripThroughTheirBinaryForm() throws {
        var history = History(seed: 99)
        for _ in 0..<50 { history.step() }
        for object in history.replicas {
            #expect(try VersionedObject(decoding: object.encoded()) == object)
        }
    }
}

@Suite struct CausalContextTests {
    @Test func roundTripsAndRefusesAnotherClustersSeal() throws {
        var clock = CausalHistory()
        for i in 1...300 { clock.insert(Dot(actor: "n1", counter: UInt64(i)), timestamp: 1_700_000_000_000) }
        clock.insert(Dot(actor: "n2", counter: 1), timestamp: 5)
        clock.insert(Dot(actor: "n3", counter: 4), timestamp: 5)
        #expect(clock.entries["n1"]?.ranges == [1...300] && clock.entries["n3"]?.ranges == [4...4])
        let key: [UInt8] = [1, 2, 3]
        let sealed = CausalContext(clock).sealed(forKey: key, with: .development)
        #expect(try CausalContext(opening: sealed, forKey: key, with: .development).clock == clock)
        let empty = CausalContext(.empty).sealed(forKey: key, with: .development)
        #expect(try CausalContext(opening: empty, forKey: key, with: .development).clock == .empty)
        // Sealed by another cluster's secret: refused.
        let other = try ClusterKey(text: "another cluster's secret!")
        #expect(throws: ContextError.self) {
            try CausalContext(opening: CausalContext(clock).sealed(forKey: key, with: other), forKey: key, with: .development)
        }
    }

    @Test(arguments: [[], [0xDC], [0xDC, 4], [UInt8](repeating: 0, count: 18), [UInt8](repeating: 0xFF, count: 300)])
    func garbageIsAClearErrorNeverACrash(bytes: [UInt8]) {
        #expect(throws: ContextError.self) { try CausalContext(opening: bytes, forKey: [1], with: .development) }
    }

    /// Random bytes never crash the parser; a body it accepts encodes back to itself, and no
    /// random bytes open as a context (they would need the cluster's tag).
    @Test func randomBytesNeverCrashTheParser() {
        var rng = SeededRandom(seed: 5)
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if let context = try? CausalContext(decodingBody: [0xDC, 4] + bytes) {
                #expect(context.body == [0xDC, 4] + bytes, "\(bytes) decoded to \(context.clock)")
            }
            #expect(throws: ContextError.self) {
                try CausalContext(opening: bytes, forKey: [1], with: .development)
            }
        }
    }
}

/// Last write wins as a policy: ties, tombstones and a clock running ahead.
@Suite struct LastWriteWinsTests {
    let lww = ClockPolicy(conflicts: .lww)

    func version(_ actor: String, _ counter: UInt64, at timestamp: UInt64, _ value: [UInt8]?) -> VersionedObject {
        VersionedObject(versions: [
            Version(dot: Dot(actor: actor, counter: counter), past: .empty, value: value, timestamp: timestamp)
        ])
    }

    /// Equal timestamps: every replica picks the same winner whatever order it merges in
    /// (the dot breaks the tie), so replicas never disagree for good.
    @Test func aTieIsBrokenTheSameWayEverywhere() {
        let a = version("n1", 1, at: 100, [1])
        let b = version("n2", 1, at: 100, [2])
        let c = version("n2", 2, at: 100, [3])
        let orders = [[a, b, c], [c, b, a], [b, a, c], [c, a, b]]
        let winners = orders.map { $0.reduce(VersionedObject()) { $0.merged(with: $1, policy: lww) } }
        #expect(Set(winners).count == 1)
        #expect(winners[0].versions.map(\.value) == [[3]], "the larger dot wins a tie")
    }

    @Test func tombstonesTakePartByTheirTimestamp() {
        let write = version("n1", 1, at: 100, [1])
        let newerDelete = version("n2", 1, at: 200, nil)
        #expect(write.merged(with: newerDelete, policy: lww).isDeleted)
        let olderDelete = version("n2", 1, at: 50, nil)
        #expect(write.merged(with: olderDelete, policy: lww).versions.map(\.value) == [[1]])
    }

    /// The policy's known cost: a node whose clock runs ahead wins over a write made later
    /// in real time elsewhere (why `siblings` is the default; the README says so).
    @Test func aClockRunningAheadWinsOverALaterWrite() {
        let aheadByAMinute = version("n1", 1, at: 1_000 + 60_000, [1])
        let laterButBehind = version("n2", 1, at: 2_000, [2])
        #expect(aheadByAMinute.merged(with: laterButBehind, policy: lww).versions.map(\.value) == [[1]])
    }
}
