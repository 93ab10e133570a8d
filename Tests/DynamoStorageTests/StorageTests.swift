import DynamoCore
import Foundation
import Testing

@testable import DynamoStorage

func temporaryDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("dynamo-test-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct StorageEngineTests {
    static func engines() throws -> [(String, any StorageEngine, String?)] {
        let dir = temporaryDirectory()
        return [("memory", MemoryEngine(), nil), ("rocksdb", try RocksDBEngine(path: dir), dir)]
    }

    @Test func getPutDeleteAndOrderedScanOnEveryEngine() throws {
        for (name, engine, dir) in try Self.engines() {
            defer { dir.map { try? FileManager.default.removeItem(atPath: $0) } }
            for b in [UInt8](arrayLiteral: 5, 1, 9, 3, 7) { try engine.put([1, b], [b], sync: false) }
            try engine.put([2, 0], [0], sync: true)
            #expect(try engine.get([1, 9]) == [9], "\(name)")
            #expect(try engine.get([1, 4]) == nil, "\(name)")
            try engine.delete([1, 9], sync: false)
            #expect(try engine.get([1, 9]) == nil, "\(name)")
            let scanned = try engine.scan(from: [1, 2], to: [2], limit: 10).map(\.key)
            #expect(scanned == [[1, 3], [1, 5], [1, 7]], "\(name)")
            #expect(try engine.scan(from: [1], to: nil, limit: 2).map(\.key) == [[1, 1], [1, 3]], "\(name)")
        }
    }

    @Test func rocksDBKeepsDataAcrossReopenAndRefusesASecondOpener() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let engine = try RocksDBEngine(path: dir)
            try engine.put(Array("k".utf8), Array("v".utf8), sync: true)
            #expect(throws: StorageError.self) { try RocksDBEngine(path: dir) }
        }
        let reopened = try RocksDBEngine(path: dir)
        #expect(try reopened.get(Array("k".utf8)) == Array("v".utf8))
    }

    @Test func anUnwritableDataDirIsAClearError() {
        #expect(throws: StorageError.self) { try RocksDBEngine(path: "/proc/definitely/not/here") }
    }
}

@Suite struct ReplicaStoreTests {
    let policy = ClockPolicy()

    @Test func keysAreLaidOutInRingOrderAndCounted() throws {
        let store = try ReplicaStore(engine: MemoryEngine())
        let keys = (0..<50).map { Array("key-\($0)".utf8) }
        for key in keys {
            _ = try store.coordinateWrite(
                key, value: [1], context: nil, actor: "n1", now: 1, policy: policy, sync: false)
        }
        #expect(store.keyCount == 50)
        let scanned = try store.engine.scan(
            from: [ReplicaStore.dataPrefix], to: [ReplicaStore.dataPrefix + 1], limit: 100)
        let positions = scanned.map { Array($0.key[1..<17]) }
        #expect(positions == positions.sorted { $0.lexicographicallyPrecedes($1) })
        #expect(Set(scanned.map { Array($0.key[17...]) }) == Set(keys))
        // Rewrites do not count twice; a reopened store counts from disk.
        _ = try store.coordinateWrite(
            keys[0], value: [2], context: nil, actor: "n1", now: 2, policy: policy, sync: false)
        #expect(try ReplicaStore(engine: store.engine).keyCount == 50)
    }

    @Test func concurrentWritesToOneKeyAreAllKept() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try ReplicaStore(engine: try RocksDBEngine(path: dir))
        let key = Array("hot".utf8)
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    for i in 0..<25 {
                        let incoming = try! VersionedObject().writing(
                            Array("\(writer)-\(i)".utf8), context: nil, actor: "w\(writer)-\(i)", now: 1,
                            policy: ClockPolicy()
                        ).object
                        try! store.merge(key, incoming, policy: ClockPolicy(), sync: false)
                    }
                }
            }
        }
        #expect(try store.object(for: key)?.versions.count == 200)
    }

    /// A fallback's dot left with a delivered hint; its next write of the key must not reuse it
    /// (the simulator found this: the old version's context then superseded the new one).
    @Test func dotsNeverRepeatAfterTheirVersionsLeftTheNode() throws {
        let store = try ReplicaStore(engine: MemoryEngine())
        let key = Array("k".utf8)
        let first = try store.coordinateHintedWrite(
            key, target: "n4", value: [1], context: nil, actor: "n5", now: 1, policy: policy
        ).version
        let hint = try #require(try store.pendingHints(limit: 10) { _ in true }.first)
        #expect(try store.removeHint(hint))
        let second = try store.coordinateHintedWrite(
            key, target: "n4", value: [2], context: nil, actor: "n5", now: 2, policy: policy
        ).version
        #expect(second.dot.counter > first.dot.counter)
        // The same for own data handed off (or a tombstone reaped), then written again.
        let own = try store.coordinateWrite(
            key, value: [3], context: nil, actor: "n5", now: 3, policy: policy, sync: false
        ).version
        #expect(try store.forget(key, ifStill: try #require(try store.object(for: key))))
        let again = try store.coordinateWrite(
            key, value: [4], context: nil, actor: "n5", now: 4, policy: policy, sync: false
        ).version
        #expect(again.dot.counter > own.dot.counter)
        #expect(store.keyCount == 1)
    }

    @Test func corruptStoredBytesAreAStorageErrorNotACrash() throws {
        let engine = MemoryEngine()
        let store = try ReplicaStore(engine: engine)
        try engine.put(ReplicaStore.storageKey(for: [1]), [0xff, 0xff], sync: false)
        #expect(throws: StorageError.self) { try store.object(for: [1]) }
    }
}
