import DynamoCore
import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import DynamoStorage

/// An engine that counts the batches written to it and can be made to fail them.
final class CountingEngine: StorageEngine, Sendable {
    let inner = MemoryEngine()
    private let state = NIOLockedValueBox((batches: 0, syncedBatches: 0, failing: false, applyThenFail: false))

    var batches: Int { state.withLockedValue { $0.batches } }
    var syncedBatches: Int { state.withLockedValue { $0.syncedBatches } }
    var failing: Bool {
        get { state.withLockedValue { $0.failing } }
        set { state.withLockedValue { $0.failing = newValue } }
    }
    /// Writes take effect and then fail, as a log record written whole whose sync failed
    /// does once the store is reopened.
    var applyThenFail: Bool {
        get { state.withLockedValue { $0.applyThenFail } }
        set { state.withLockedValue { $0.applyThenFail = newValue } }
    }

    func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]? { try inner.get(key) }
    func put(_ key: [UInt8], _ value: [UInt8], sync: Bool) throws(StorageError) {
        try write([.put(key: key, value: value)], sync: sync)
    }
    func delete(_ key: [UInt8], sync: Bool) throws(StorageError) { try write([.delete(key: key)], sync: sync) }
    func scan(from start: [UInt8], to end: [UInt8]?, limit: Int) throws(StorageError) -> [(
        key: [UInt8], value: [UInt8]
    )] { try inner.scan(from: start, to: end, limit: limit) }

    func write(_ changes: [StorageChange], sync: Bool) throws(StorageError) {
        let failing = state.withLockedValue { state in
            if !state.failing {
                state.batches += 1
                if sync { state.syncedBatches += 1 }
            }
            return state.failing
        }
        if failing { throw StorageError("IO error: No space left on device (test)") }
        try inner.write(changes, sync: sync)
        if applyThenFail { throw StorageError("IO error: sync failed (test)") }
    }
}

@Suite struct GroupCommitTests {
    let policy = ClockPolicy()

    func coordinate(_ key: String, _ value: String, sync: Bool = true) -> StorageOp {
        .coordinateWrite(
            key: Array(key.utf8), value: Array(value.utf8), context: nil, actor: "n1", now: 1, hintFor: nil, sync: sync,
            limits: ObjectLimits())
    }

    @Test func aBatchOfWritesIsOneEngineWriteWithOneSync() throws {
        let engine = CountingEngine()
        let store = try ReplicaStore(engine: engine)
        let ops = (0..<50).map { coordinate("key-\($0)", "v\($0)", sync: $0 == 7) }
        let completions = store.perform(batch: ops, policy: policy)
        #expect(completions.count == 50)
        #expect(completions.allSatisfy { if case .version = $0.result { true } else { false } })
        #expect(engine.batches == 1)
        #expect(engine.syncedBatches == 1, "one change asked for a sync: the batch is synced")
        #expect(store.keyCount == 50)
        // The Merkle updates of the batch come with its first answer, numbered in order.
        #expect(completions[0].treeUpdates.map(\.seq) == Array(1...50))
        #expect(completions.dropFirst().allSatisfy { $0.treeUpdates.isEmpty })
    }

    @Test func eachOperationSeesTheWritesBeforeItInTheBatch() throws {
        let store = try ReplicaStore(engine: CountingEngine())
        // Two blind writes to one key in one batch: the second sees the first and keeps
        // both as siblings, with distinct dots.
        let completions = store.perform(batch: [coordinate("k", "a"), coordinate("k", "b")], policy: policy)
        guard case .version(let first, _) = completions[0].result, case .version(let second, let size) = completions[1].result
        else {
            Issue.record("both writes must be stored: \(completions.map(\.result))")
            return
        }
        #expect(first.dot != second.dot)
        #expect(size.siblings == 2)
        #expect(try store.object(for: Array("k".utf8))?.versions.count == 2)
        #expect(store.keyCount == 1)
        // A hint stored in the batch is seen by a later coordinated write of its key.
        let key = Array("h".utf8)
        let hinted = VersionedObject(versions: [
            Version(dot: Dot(actor: "n1", counter: 40), past: .empty, value: [1], timestamp: 1)
        ])
        let results = store.perform(
            batch: [
                .merge(key: key, object: hinted, hintFor: "n3", sync: true),
                .coordinateWrite(
                    key: key, value: [2], context: nil, actor: "n1", now: 2, hintFor: nil, sync: true,
                    limits: ObjectLimits()),
            ], policy: policy)
        guard case .version(let written, _) = results[1].result else {
            Issue.record("the write must be stored: \(results[1].result)")
            return
        }
        #expect(written.dot.counter > 40, "the new dot counts on from the hint written before it in the batch")
        #expect(store.hintCounts == ["n3": 1])
    }

    @Test func aRefusedOperationLeavesNothingAndTheOthersCommit() throws {
        let store = try ReplicaStore(engine: CountingEngine())
        var limits = ObjectLimits()
        limits.maxSiblings = 1
        let key = Array("full".utf8)
        let refused = StorageOp.coordinateWrite(
            key: key, value: [2], context: nil, actor: "n1", now: 1, hintFor: nil, sync: true, limits: limits)
        let results = store.perform(
            batch: [
                .coordinateWrite(
                    key: key, value: [1], context: nil, actor: "n1", now: 1, hintFor: nil, sync: true, limits: limits),
                refused, coordinate("other", "x"),
            ], policy: policy
        ).map(\.result)
        guard case .version = results[0], case .refused = results[1], case .version = results[2] else {
            Issue.record("expected stored, refused, stored: \(results)")
            return
        }
        #expect(try store.object(for: key)?.versions.map(\.value) == [[1]])
        #expect(store.keyCount == 2)
    }

    @Test func aFailedCommitFailsEveryChangeAndCountsNothing() throws {
        let engine = CountingEngine()
        let store = try ReplicaStore(engine: engine)
        _ = store.perform(batch: [coordinate("kept", "1")], policy: policy)
        _ = store.takeTreeUpdates()
        engine.failing = true
        let results = store.perform(
            batch: [coordinate("a", "1"), .read(key: Array("kept".utf8)), coordinate("b", "2")], policy: policy)
        #expect(results.map(\.result).enumerated().allSatisfy { index, result in
            if index == 1 { if case .object(let object?) = result { return object.versions.count == 1 } else { return false } }
            if case .failed(let reason) = result { return reason.contains("No space left") }
            return false
        })
        #expect(store.keyCount == 1, "nothing of the failed batch counts")
        #expect(store.takeTreeUpdates().isEmpty, "nor reaches the Merkle trees")
        #expect(try store.object(for: Array("a".utf8)) == nil)
        engine.failing = false
        guard case .version = store.perform(batch: [coordinate("a", "1")], policy: policy)[0].result else {
            Issue.record("writes work again")
            return
        }
        #expect(store.keyCount == 2)
    }

    /// Found by a review: a batch whose sync failed can come back with the log. The store
    /// then looks for hints of every key it writes (else a hint's dot could be numbered
    /// again), and counts keys and hints anew once it takes writes again.
    @Test func aBatchThatFailedButCameBackIsCountedAndItsHintsAreSeen() throws {
        let engine = CountingEngine()
        let store = try ReplicaStore(engine: engine)
        let key = Array("h".utf8)
        let hinted = VersionedObject(versions: [
            Version(dot: Dot(actor: "n1", counter: 40), past: .empty, value: [1], timestamp: 1)
        ])
        engine.applyThenFail = true
        let failed = store.perform(batch: [.merge(key: key, object: hinted, hintFor: "n3", sync: true)], policy: policy)
        guard case .failed = failed[0].result else {
            Issue.record("the merge must fail: \(failed[0].result)")
            return
        }
        #expect(store.hintCounts.isEmpty, "nothing is counted for a failed commit")
        engine.applyThenFail = false
        guard case .version(let written, _) = store.perform(batch: [coordinate("h", "new")], policy: policy)[0].result
        else {
            Issue.record("the write must be stored")
            return
        }
        #expect(written.dot.counter > 40, "the new dot counts on from the hint the failed batch left")
        try store.recountIfUncertain()
        #expect(store.hintCounts == ["n3": 1])
        #expect(store.keyCount == 1)
    }

    @Test func metadataChangesMadeTogetherKeepEachOther() throws {
        let store = try ReplicaStore(engine: MemoryEngine())
        try store.setMetadata("m", [0])
        DispatchQueue.concurrentPerform(iterations: 200) { _ in
            try? store.modifyMetadata("m") { bytes throws(StorageError) in [bytes[0] &+ 1] }
        }
        #expect(try store.metadata("m") == [200])
        try store.modifyMetadata("absent") { _ throws(StorageError) in [1] }
        #expect(try store.metadata("absent") == nil, "nothing is made up for a record that is not there")
    }

    @Test func rocksDBWritesABatchAtomicallyInOrder() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let engine = try RocksDBEngine(path: dir)
        try engine.write([.put(key: [1], value: [1]), .put(key: [2], value: [2]), .delete(key: [1]), .put(key: [3], value: [3])], sync: true)
        #expect(try engine.get([1]) == nil)
        #expect(try engine.scan(from: [0], to: nil, limit: 10).map(\.key) == [[2], [3]])
    }
}
