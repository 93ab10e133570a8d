public import DynamoCore
import NIOConcurrencyHelpers

/// A node's replica store: the versions of every key it holds, and the hinted replicas it
/// keeps for other nodes (sloppy quorum), on one engine.
///
/// Layout: `0x01 | MD5(key) (16 bytes) | key` so a scan walks keys in ring order (what
/// handoff and Merkle trees need); `0x02 | MD5(key) | u16 key length | key | target` for
/// hints, kept apart so they never count as this node's own data; `0x03 | MD5(key) | key`
/// for departure marks (see `counterFloor`); `0x00 | name` holds node metadata.
///
/// Every change is a read-merge-write inside a `StoreTransaction` under one writer lock, so
/// concurrent writes never lose a version; `perform(batch:)` runs many operations as one
/// transaction, committed with one engine write and one sync (group commit). Reads take
/// no lock: the engine shows each key as before or after a commit.
public final class ReplicaStore: Sendable {
    public let engine: any StorageEngine
    /// Held by the transaction that reads, merges and commits: the engine sees one
    /// transaction's writes at a time, and none is lost between a read and its commit.
    private let writer = NIOLock()
    private let keyCounter: NIOLockedValueBox<Int>
    private let hintCounter: NIOLockedValueBox<[NodeName: Int]>
    /// How many hints are held for each key that has any: a write looks for hints of its
    /// key only when there are some (a scan per write was a good share of its cost).
    private let hintedKeys: NIOLockedValueBox<[[UInt8]: Int]>
    /// Set when a commit failed: the engine may still hold it (a log record written whole
    /// whose sync failed comes back when the store is reopened), so the counts and
    /// `hintedKeys` may be short until `recountIfUncertain()`; meanwhile every write looks
    /// for hints of its key (a hint missed there could let a dot be used twice).
    private let countsUncertain = NIOLockedValueBox(false)
    /// Commits so far: batches written, of them synced, and the operations they carried.
    private let commits = NIOLockedValueBox<CommitCounts>(CommitCounts())
    /// Mutation sequence and the tree updates not yet taken by the node.
    private let treeUpdates = NIOLockedValueBox<(seq: UInt64, pending: [TreeUpdate])>((0, []))

    public init(engine: any StorageEngine) throws(StorageError) {
        self.engine = engine
        self.keyCounter = NIOLockedValueBox(0)
        self.hintCounter = NIOLockedValueBox([:])
        self.hintedKeys = NIOLockedValueBox([:])
        try count()
    }

    /// Counts keys and hints from what the engine holds.
    private func count() throws(StorageError) {
        var count = 0
        try Self.forEach(in: engine, prefix: StorageKey.data) { _, _ in count += 1 }
        var hints: [NodeName: Int] = [:]
        var hinted: [[UInt8]: Int] = [:]
        try Self.forEach(in: engine, prefix: StorageKey.hint) { key, _ in
            guard let parsed = StorageKey.parseHint(key) else { return }
            hints[parsed.target, default: 0] += 1
            hinted[parsed.key, default: 0] += 1
        }
        keyCounter.withLockedValue { $0 = count }
        hintCounter.withLockedValue { $0 = hints }
        hintedKeys.withLockedValue { $0 = hinted }
    }

    /// After a failed commit, once the store takes writes again (reopened): counts keys
    /// and hints anew from what the engine holds, which may include the failed batch.
    public func recountIfUncertain() throws(StorageError) {
        guard countsUncertain.withLockedValue({ $0 }) else { return }
        writer.lock()
        defer { writer.unlock() }
        try count()
        countsUncertain.withLockedValue { $0 = false }
    }

    /// Visits every entry whose storage key starts with `prefix`, in order, in batches.
    static func forEach(
        in engine: any StorageEngine, prefix: UInt8, _ body: ([UInt8], [UInt8]) throws -> Void
    ) throws(StorageError) {
        var start: [UInt8] = [prefix]
        while true {
            let batch = try engine.scan(from: start, to: [prefix + 1], limit: 1024)
            do {
                for entry in batch { try body(entry.key, entry.value) }
            } catch {
                throw StorageError("\(error)")
            }
            guard let last = batch.last, batch.count == 1024 else { break }
            start = last.key + [0]
        }
    }

    /// Records a change of own data in the transaction (numbered when it commits, in the
    /// order the changes happened).
    private func changed(_ key: [UInt8], to object: VersionedObject?, in tx: StoreTransaction) {
        tx.treeChanges.append((key, object.map { MerkleTree.hash(key: key, object: $0) }))
    }

    // MARK: Transactions

    /// Runs `body` as one transaction and commits it.
    private func transaction<T>(_ body: (StoreTransaction) throws(StorageError) -> T) throws(StorageError) -> T {
        writer.lock()
        defer { writer.unlock() }
        let tx = StoreTransaction(engine: engine)
        let result = try body(tx)
        try commit(tx)
        return result
    }

    /// Writes a transaction to the engine (one atomic batch, one sync if any change asked
    /// for it), then applies its effects. Call with `writer` held. Tree updates are numbered
    /// after the engine has the data: a Merkle scan stamped with an earlier sequence then
    /// gets the update again, which is harmless, and never misses one.
    private func commit(_ tx: StoreTransaction, operations: Int = 1) throws(StorageError) {
        guard !tx.changes.isEmpty else { return }
        do {
            try engine.write(tx.changes, sync: tx.sync)
        } catch {
            countsUncertain.withLockedValue { $0 = true }
            throw error
        }
        commits.withLockedValue { counts in
            counts.batches += 1
            if tx.sync { counts.syncs += 1 }
            counts.operations += UInt64(operations)
        }
        if tx.keyDelta != 0 { keyCounter.withLockedValue { $0 += tx.keyDelta } }
        if !tx.hintDelta.isEmpty {
            hintCounter.withLockedValue { counts in
                for (target, delta) in tx.hintDelta {
                    let count = counts[target, default: 0] + delta
                    counts[target] = count > 0 ? count : nil
                }
            }
            hintedKeys.withLockedValue { counts in
                for (key, delta) in tx.hintKeyDelta {
                    let count = counts[key, default: 0] + delta
                    counts[key] = count > 0 ? count : nil
                }
            }
        }
        if !tx.treeChanges.isEmpty {
            treeUpdates.withLockedValue { state in
                for (key, hash) in tx.treeChanges {
                    state.seq += 1
                    state.pending.append(TreeUpdate(key: key, hash: hash, seq: state.seq))
                }
            }
        }
    }

    /// Takes the tree updates recorded since the last call.
    public func takeTreeUpdates() -> [TreeUpdate] {
        treeUpdates.withLockedValue { state in
            defer { state.pending = [] }
            return state.pending
        }
    }

    /// The tree hashes of own keys in the ring range (start, end], wrapping past the top.
    public func rangeHashes(start: RingPosition, end: RingPosition) throws(StorageError) -> (
        [KeyHash], seq: UInt64
    ) {
        let seq = treeUpdates.withLockedValue { $0.seq }
        // Storage keys sort by position: scan [start, end + 1) (or wrap), filter exactly below.
        let spans = StorageKey.dataSpans(start: start, end: end)
        var result: [KeyHash] = []
        for (from, to) in spans {
            var cursor = from
            while true {
                let batch = try engine.scan(from: cursor, to: to, limit: 1024)
                for entry in batch {
                    let position = StorageKey.position(entry.key)
                    guard start < end ? (position > start && position <= end) : (position > start || position <= end)
                    else { continue }
                    let key = StorageKey.dataKey(entry.key)
                    result.append(
                        KeyHash(
                            key: key, hash: MerkleTree.hash(key: key, object: try Self.decode(entry.value, key: key))))
                }
                guard let last = batch.last, batch.count == 1024 else { break }
                cursor = last.key + [0]
            }
        }
        return (result, seq)
    }

    /// Write batches committed since the store opened (group commit's figures).
    public var commitCounts: CommitCounts { commits.withLockedValue { $0 } }

    /// Keys held in this store (values and tombstones).
    public var keyCount: Int { keyCounter.withLockedValue { $0 } }

    public func object(for key: [UInt8]) throws(StorageError) -> VersionedObject? {
        guard let bytes = try engine.get(StorageKey.data(key)) else { return nil }
        return try Self.decode(bytes, key: key)
    }

    private func object(for key: [UInt8], in tx: StoreTransaction) throws(StorageError) -> VersionedObject? {
        guard let bytes = try tx.get(StorageKey.data(key)) else { return nil }
        return try Self.decode(bytes, key: key)
    }

    /// Atomically replaces the stored object with `transform(current)`; returns the new object.
    ///
    /// Refuses (a `StorageError` with a `refusal`) a change that would grow the object past
    /// what a peer can decode or a frame can carry (`ObjectLimits.ceiling`): stored, it could
    /// never be read back from this replica. The configured limits are the coordinator's
    /// (see `coordinateWrite`).
    public func update(
        _ key: [UInt8], sync: Bool, _ transform: (VersionedObject?) -> VersionedObject
    ) throws(StorageError) -> VersionedObject {
        try transaction { tx throws(StorageError) in try update(key, sync: sync, in: tx, transform) }
    }

    private func update(
        _ key: [UInt8], sync: Bool, in tx: StoreTransaction, _ transform: (VersionedObject?) -> VersionedObject
    ) throws(StorageError) -> VersionedObject {
        let storageKey = StorageKey.data(key)
        let stored = try tx.get(storageKey)
        let current = try stored.map { bytes throws(StorageError) in try Self.decode(bytes, key: key) }
        let next = transform(current)
        if next != current {
            let (encoded, size) = Self.encoded(next)
            try Self.check(key, from: Self.size(of: current, bytes: stored), to: size, limits: nil)
            try recordForgottenCounters(of: key, from: current, to: next, sync: sync, in: tx)
            tx.put(storageKey, encoded, sync: sync)
            if current == nil { tx.keyDelta += 1 }
            changed(key, to: next, in: tx)
        }
        return next
    }

    /// The size of an object as stored (`bytes` its encoding, nil with the object when absent).
    private static func size(of object: VersionedObject?, bytes: [UInt8]?) -> ObjectSize {
        ObjectSize(siblings: object?.versions.count ?? 0, bytes: bytes?.count ?? 0)
    }

    /// An object's encoding and its size, from one encoding.
    private static func encoded(_ object: VersionedObject) -> ([UInt8], ObjectSize) {
        let bytes = object.encoded()
        return (bytes, size(of: object, bytes: bytes))
    }

    /// Merges versions another replica sent (a write, a repair, a handoff).
    @discardableResult
    public func merge(_ key: [UInt8], _ incoming: VersionedObject, policy: ClockPolicy, sync: Bool) throws(StorageError)
        -> VersionedObject
    {
        try transaction { tx throws(StorageError) in try merge(key, incoming, policy: policy, sync: sync, in: tx) }
    }

    @discardableResult
    private func merge(
        _ key: [UInt8], _ incoming: VersionedObject, policy: ClockPolicy, sync: Bool, in tx: StoreTransaction
    ) throws(StorageError) -> VersionedObject {
        try update(key, sync: sync, in: tx) { ($0 ?? VersionedObject()).merged(with: incoming, policy: policy) }
    }

    /// Coordinates a write here: generates the new version from what is stored and the
    /// client's context, stores it, and returns it (to be replicated) with the key's new size.
    ///
    /// A write that would take the key past `limits` is refused before anything is stored
    /// (a `StorageError` with a `refusal`), so it is never acknowledged.
    public func coordinateWrite(
        _ key: [UInt8], value: [UInt8]?, context: CausalHistory?, actor: ActorName, now: UInt64, policy: ClockPolicy,
        sync: Bool, counterFloor: UInt64 = 0, limits: ObjectLimits = ObjectLimits()
    ) throws(StorageError) -> (version: Version, size: ObjectSize) {
        try transaction { tx throws(StorageError) in
            try coordinateWrite(
                key, value: value, context: context, actor: actor, now: now, policy: policy, sync: sync,
                counterFloor: counterFloor, limits: limits, in: tx)
        }
    }

    private func coordinateWrite(
        _ key: [UInt8], value: [UInt8]?, context: CausalHistory?, actor: ActorName, now: UInt64, policy: ClockPolicy,
        sync: Bool, counterFloor: UInt64, limits: ObjectLimits, in tx: StoreTransaction
    ) throws(StorageError) -> (version: Version, size: ObjectSize) {
        let storageKey = StorageKey.data(key)
        let stored = try tx.get(storageKey)
        let current = try stored.map { bytes throws(StorageError) in try Self.decode(bytes, key: key) }
        let floor = max(
            try highestCounter(of: actor, for: key, own: current, hints: try hints(for: key, in: tx), in: tx),
            counterFloor)
        let (next, version) = try Self.write(
            value, on: current ?? VersionedObject(), context: context, actor: actor, now: now, policy: policy,
            counterFloor: floor)
        let (encoded, size) = Self.encoded(next)
        try Self.check(key, from: Self.size(of: current, bytes: stored), to: size, limits: limits)
        tx.put(storageKey, encoded, sync: sync)
        if current == nil { tx.keyDelta += 1 }
        changed(key, to: next, in: tx)
        return (version, size)
    }

    /// Refuses a change that would cross `limits` (a coordinated write) or, whatever the
    /// limits (nil for what replicas take), the ceiling of what a peer can decode.
    private static func check(_ key: [UInt8], from current: ObjectSize, to next: ObjectSize, limits: ObjectLimits?)
        throws(StorageError)
    {
        if let refusal = limits?.refusal(forKey: key, current: current, next: next)
            ?? ObjectLimits.ceilingRefusal(forKey: key, current: current, next: next)
        {
            throw StorageError(refusal: refusal)
        }
    }

    // MARK: Departure marks

    /// The highest counter per actor among versions of `key` that left this node (hints
    /// delivered, data handed off, tombstones reaped).
    ///
    /// A node numbers its dots per key, counting on from the history it holds; if some of
    /// its versions left, that history no longer shows them, and counting on could reuse a
    /// dot that still lives elsewhere (a client's context covering the old one would then
    /// silently supersede the new one). New dots start above this mark.
    public func departureMark(for key: [UInt8]) throws(StorageError) -> CausalHistory? {
        try Self.departureMark(try engine.get(StorageKey.departure(key)))
    }

    private func departureMark(for key: [UInt8], in tx: StoreTransaction) throws(StorageError) -> CausalHistory? {
        try Self.departureMark(try tx.get(StorageKey.departure(key)))
    }

    private static func departureMark(_ bytes: [UInt8]?) throws(StorageError) -> CausalHistory? {
        guard let bytes else { return nil }
        var reader = ByteReader(bytes)
        do {
            return try CausalHistory.decode(from: &reader)
        } catch {
            throw StorageError("departure mark of a key is corrupt: \(error.reason)")
        }
    }

    /// Records that `object` left this node.
    private func recordDeparture(of key: [UInt8], _ object: VersionedObject, in tx: StoreTransaction)
        throws(StorageError)
    {
        try recordDeparture(of: key, counters: object.context.summary, in: tx)
    }

    /// A merge whose result no longer shows counters the key's history had: a version
    /// pruned by another coordinator (`ClockPolicy.maxEntries`) dropped an actor's entry,
    /// so the versions it superseded took that actor's counters with them. Without a mark
    /// this node, as that actor, would number its next write of the key like an old one
    /// (found by the simulator with clocks pruned to 2 entries). Only pruning does this,
    /// so the extra write is rare. It is written in the merge's transaction, before it: the
    /// batch is atomic, so the merge never outlives its mark.
    private func recordForgottenCounters(
        of key: [UInt8], from current: VersionedObject?, to next: VersionedObject, sync: Bool, in tx: StoreTransaction
    ) throws(StorageError) {
        guard let current, !current.isEmpty else { return }
        let forgotten = current.context.summary.filter { next.maxCounter(of: $0.key) < $0.value }
        if !forgotten.isEmpty { try recordDeparture(of: key, counters: forgotten, sync: sync, in: tx) }
    }

    private func recordDeparture(
        of key: [UInt8], counters: [ActorName: UInt64], sync: Bool = true, in tx: StoreTransaction
    ) throws(StorageError) {
        var mark = try departureMark(for: key, in: tx) ?? .empty
        for (actor, counter) in counters where counter > mark.maxCounter(of: actor) {
            mark.insert(Dot(actor: actor, counter: counter), timestamp: 0)
        }
        // Only the maximum matters: keep one point per actor.
        let compact = CausalHistory(dots: mark.summary.map { Dot(actor: $0.key, counter: $0.value) })
        var writer = ByteWriter()
        compact.encode(into: &writer)
        tx.put(StorageKey.departure(key), writer.bytes, sync: sync)
    }

    /// This node's own keys in ring order, starting after `after` (or at the beginning).
    public func scanOwn(after: [UInt8]?, limit: Int) throws(StorageError) -> [KeyedObject] {
        let start = after.map { StorageKey.data($0) + [0] } ?? [StorageKey.data]
        return try engine.scan(from: start, to: [StorageKey.data + 1], limit: limit).map { entry throws(StorageError) in
            let key = StorageKey.dataKey(entry.key)
            return KeyedObject(key: key, object: try Self.decode(entry.value, key: key))
        }
    }

    /// Deletes the key if it still holds exactly `object` (a reaped tombstone, or data
    /// handed off to its home nodes); false if it changed meanwhile.
    public func forget(_ key: [UInt8], ifStill object: VersionedObject) throws(StorageError) -> Bool {
        try transaction { tx throws(StorageError) in try forget(key, ifStill: object, in: tx) }
    }

    private func forget(_ key: [UInt8], ifStill object: VersionedObject, in tx: StoreTransaction) throws(StorageError)
        -> Bool
    {
        let storageKey = StorageKey.data(key)
        guard let bytes = try tx.get(storageKey), try Self.decode(bytes, key: key) == object else { return false }
        try recordDeparture(of: key, object, in: tx)
        tx.delete(storageKey, sync: true)
        tx.keyDelta -= 1
        changed(key, to: nil, in: tx)
        return true
    }

    /// Keys whose every version is a tombstone written before `before`, in ring order.
    public func tombstones(before: UInt64, limit: Int) throws(StorageError) -> [[UInt8]] {
        var found: [[UInt8]] = []
        do {
            try Self.forEach(in: engine, prefix: StorageKey.data) { storageKey, bytes in
                guard found.count < limit else { return }
                let key = StorageKey.dataKey(storageKey)
                let object = try Self.decode(bytes, key: key)
                if object.isDeleted, object.versions.allSatisfy({ $0.timestamp < before }) { found.append(key) }
            }
        } catch {
            throw StorageError("\(error)")
        }
        return found
    }

    // MARK: Hinted replicas

    /// Hinted replicas held here, per intended node.
    public var hintCounts: [NodeName: Int] { hintCounter.withLockedValue { $0 } }

    /// Keeps versions of `key` on behalf of `target`, which could not take them.
    public func storeHint(target: NodeName, key: [UInt8], _ incoming: VersionedObject, policy: ClockPolicy, sync: Bool)
        throws(StorageError)
    {
        try transaction { tx throws(StorageError) in
            try storeHint(target: target, key: key, incoming, policy: policy, sync: sync, in: tx)
        }
    }

    private func storeHint(
        target: NodeName, key: [UInt8], _ incoming: VersionedObject, policy: ClockPolicy, sync: Bool,
        in tx: StoreTransaction
    ) throws(StorageError) {
        let storageKey = try StorageKey.hint(for: key, target: target)
        let stored = try tx.get(storageKey)
        let current = try stored.map { bytes throws(StorageError) in try Self.decode(bytes, key: key) }
        let next = (current ?? VersionedObject()).merged(with: incoming, policy: policy)
        guard next != current else { return }
        // A hint travels to its target in one frame.
        let (encoded, size) = Self.encoded(next)
        try Self.check(key, from: Self.size(of: current, bytes: stored), to: size, limits: nil)
        try recordForgottenCounters(of: key, from: current, to: next, sync: sync, in: tx)
        tx.put(storageKey, encoded, sync: sync)
        if current == nil { tx.countHint(of: key, for: target, 1) }
    }

    /// The highest counter `actor` has used for `key` as far as this node can tell: in its
    /// own data (`own`), in each hint it holds for the key (dots it made as a fallback), and
    /// in the departure mark. Each is read on its own: merging them first could let a
    /// version with a pruned clock supersede the one that showed a counter.
    private func highestCounter(
        of actor: ActorName, for key: [UInt8], own: VersionedObject?, hints: [VersionedObject], in tx: StoreTransaction
    ) throws(StorageError) -> UInt64 {
        let fromHints = hints.map { $0.maxCounter(of: actor) }.max() ?? 0
        return max(
            own?.maxCounter(of: actor) ?? 0, try departureMark(for: key, in: tx)?.maxCounter(of: actor) ?? 0, fromHints)
    }

    /// Each hint held here for `key`, one per target, decoded (as `tx` sees them, else as
    /// the engine holds them).
    private func hints(for key: [UInt8], in tx: StoreTransaction? = nil) throws(StorageError) -> [VersionedObject] {
        let mayHold =
            (tx?.changesHints(of: key) ?? false) || hintedKeys.withLockedValue { $0[key] != nil }
            || countsUncertain.withLockedValue { $0 }
        guard mayHold else { return [] }
        let prefix = try StorageKey.hintPrefix(for: key)
        var result: [VersionedObject] = []
        // Targets are UTF-8 names, which never contain the byte 0xff.
        let end = prefix + [0xff]
        let entries =
            if let tx { try tx.scan(from: prefix, to: end, limit: 1024) } else {
                try engine.scan(from: prefix, to: end, limit: 1024)
            }
        for entry in entries {
            guard let parsed = StorageKey.parseHint(entry.key), parsed.key == key else { continue }
            result.append(try Self.decode(entry.value, key: key))
        }
        return result
    }

    /// The versions of `key` held here as hints for any node, merged (nil when none).
    public func hintedObject(for key: [UInt8], policy: ClockPolicy) throws(StorageError) -> VersionedObject? {
        Self.merged(try hints(for: key), policy: policy)
    }

    private static func merged(_ objects: [VersionedObject], policy: ClockPolicy) -> VersionedObject? {
        objects.reduce(nil) { merged, object in (merged ?? VersionedObject()).merged(with: object, policy: policy) }
    }

    /// Up to `limit` hints for targets `include` accepts, in storage order.
    public func pendingHints(limit: Int, include: (NodeName) -> Bool) throws(StorageError) -> [Hint] {
        var result: [Hint] = []
        var start: [UInt8] = [StorageKey.hint]
        while result.count < limit {
            let batch = try engine.scan(from: start, to: [StorageKey.hint + 1], limit: 256)
            for entry in batch {
                guard let parsed = StorageKey.parseHint(entry.key), include(parsed.target) else { continue }
                result.append(
                    Hint(target: parsed.target, key: parsed.key, object: try Self.decode(entry.value, key: parsed.key)))
                if result.count == limit { break }
            }
            guard let last = batch.last, batch.count == 256 else { break }
            start = last.key + [0]
        }
        return result
    }

    /// Deletes a delivered hint, unless it changed since it was read (then it waits for the
    /// next round, so versions that arrived meanwhile are delivered too).
    @discardableResult
    public func removeHint(_ hint: Hint) throws(StorageError) -> Bool {
        try transaction { tx throws(StorageError) in try removeHint(hint, in: tx) }
    }

    private func removeHint(_ hint: Hint, in tx: StoreTransaction) throws(StorageError) -> Bool {
        let storageKey = try StorageKey.hint(for: hint.key, target: hint.target)
        guard let bytes = try tx.get(storageKey), try Self.decode(bytes, key: hint.key) == hint.object else {
            return false
        }
        // The mark goes in the same atomic batch: a crash never leaves the hint forgotten
        // without its mark.
        try recordDeparture(of: hint.key, hint.object, in: tx)
        tx.delete(storageKey, sync: true)
        tx.countHint(of: hint.key, for: hint.target, -1)
        return true
    }

    /// Coordinates a write on a fallback: the new version is built on everything held here
    /// for the key, kept as a hint for `target`, and returned (to be replicated) with the
    /// size of everything held here for the key. The limits are checked on that whole.
    public func coordinateHintedWrite(
        _ key: [UInt8], target: NodeName, value: [UInt8]?, context: CausalHistory?, actor: ActorName, now: UInt64,
        policy: ClockPolicy, counterFloor: UInt64 = 0, limits: ObjectLimits = ObjectLimits()
    ) throws(StorageError) -> (version: Version, size: ObjectSize) {
        try transaction { tx throws(StorageError) in
            try coordinateHintedWrite(
                key, target: target, value: value, context: context, actor: actor, now: now, policy: policy,
                counterFloor: counterFloor, limits: limits, in: tx)
        }
    }

    private func coordinateHintedWrite(
        _ key: [UInt8], target: NodeName, value: [UInt8]?, context: CausalHistory?, actor: ActorName, now: UInt64,
        policy: ClockPolicy, counterFloor: UInt64, limits: ObjectLimits, in tx: StoreTransaction
    ) throws(StorageError) -> (version: Version, size: ObjectSize) {
        let own = try object(for: key, in: tx)
        let held = try hints(for: key, in: tx)
        let base = (own ?? VersionedObject()).merged(
            with: Self.merged(held, policy: policy) ?? VersionedObject(), policy: policy)
        let floor = max(try highestCounter(of: actor, for: key, own: own, hints: held, in: tx), counterFloor)
        let (next, version) = try Self.write(
            value, on: base, context: context, actor: actor, now: now, policy: policy, counterFloor: floor)
        let size = next.size
        try Self.check(key, from: base.isEmpty ? .zero : base.size, to: size, limits: limits)
        try storeHint(
            target: target, key: key, VersionedObject(versions: [version]), policy: policy, sync: true, in: tx)
        return (version, size)
    }

    /// `VersionedObject.writing`, its refusal as a storage error (the write is not stored).
    private static func write(
        _ value: [UInt8]?, on base: VersionedObject, context: CausalHistory?, actor: ActorName, now: UInt64,
        policy: ClockPolicy, counterFloor: UInt64
    ) throws(StorageError) -> (object: VersionedObject, version: Version) {
        do {
            return try base.writing(
                value, context: context, actor: actor, now: now, policy: policy, counterFloor: counterFloor)
        } catch {
            throw StorageError(error.description)
        }
    }

    /// Executes one storage operation of the node state machine (blocking), with the tree
    /// updates pending after it: what a shell hands back to the node.
    public func perform(_ op: StorageOp, policy: ClockPolicy) -> StorageCompletion {
        perform(batch: [op], policy: policy)[0]
    }

    /// Executes storage operations of the node state machine (blocking), with every change
    /// they make in one transaction: one engine write and one sync for the lot (group
    /// commit), so a node under load pays one fsync for many writes. Each operation sees
    /// the changes of those before it; one that fails or is refused leaves nothing behind;
    /// if the commit fails, every operation that changed something fails with it. Nothing
    /// is answered before the commit, so no write is acknowledged before it is durable.
    /// Reads in the batch see the engine as it was before the batch. The tree updates
    /// pending after the commit go with the first completion.
    public func perform(batch ops: [StorageOp], policy: ClockPolicy) -> [StorageCompletion] {
        var completions = execute(batch: ops, policy: policy).map { StorageCompletion($0) }
        if !completions.isEmpty { completions[0].treeUpdates = takeTreeUpdates() }
        return completions
    }

    /// `perform(batch:)` without taking the tree updates.
    private func execute(batch ops: [StorageOp], policy: ClockPolicy) -> [StorageResult] {
        var results: [StorageResult] = []
        results.reserveCapacity(ops.count)
        if ops.contains(where: \.changesData) {
            writer.lock()
            defer { writer.unlock() }
            let tx = StoreTransaction(engine: engine)
            var changed: [Int] = []
            for op in ops {
                guard op.changesData else {
                    results.append(execute(op, policy: policy, in: nil))
                    continue
                }
                let child = StoreTransaction(engine: engine, parent: tx)
                let result = execute(op, policy: policy, in: child)
                switch result {
                case .failed, .refused: break
                default:
                    // (An operation that changed nothing stands, whatever the commit does.)
                    if !child.changes.isEmpty {
                        tx.absorb(child)
                        changed.append(results.count)
                    }
                }
                results.append(result)
            }
            do {
                try commit(tx, operations: changed.count)
            } catch {
                for index in changed { results[index] = .failed(error.message) }
            }
        } else {
            for op in ops { results.append(execute(op, policy: policy, in: nil)) }
        }
        return results
    }

    /// Executes one storage operation of the node state machine (blocking).
    public func execute(_ op: StorageOp, policy: ClockPolicy) -> StorageResult {
        execute(batch: [op], policy: policy)[0]
    }

    /// Executes one operation; one that `changesData` needs a transaction.
    private func execute(_ op: StorageOp, policy: ClockPolicy, in tx: StoreTransaction?) -> StorageResult {
        do {
            switch (op, tx) {
            case (.read(let key), _):
                let own = try object(for: key)
                guard let hinted = try hintedObject(for: key, policy: policy) else { return .object(own) }
                return .object((own ?? VersionedObject()).merged(with: hinted, policy: policy))
            case (.merge(let key, let object, let hintFor?, let sync), let tx?):
                try storeHint(target: hintFor, key: key, object, policy: policy, sync: sync, in: tx)
                return .stored
            case (.merge(let key, let object, nil, let sync), let tx?):
                try merge(key, object, policy: policy, sync: sync, in: tx)
                return .stored
            case (
                .coordinateWrite(
                    let key, let value, let context, let actor, let now, let hintFor?, _, let floor, let limits),
                let tx?
            ):
                let (version, size) = try coordinateHintedWrite(
                    key, target: hintFor, value: value, context: context, actor: actor, now: now, policy: policy,
                    counterFloor: floor, limits: limits, in: tx)
                return .version(version, size: size)
            case (
                .coordinateWrite(
                    let key, let value, let context, let actor, let now, nil, let sync, let floor, let limits),
                let tx?
            ):
                let (version, size) = try coordinateWrite(
                    key, value: value, context: context, actor: actor, now: now, policy: policy, sync: sync,
                    counterFloor: floor, limits: limits, in: tx)
                return .version(version, size: size)
            case (.loadHints(let limit, let targets), _):
                return .hints(
                    try pendingHints(limit: limit) { targets.contains($0) }, total: hintCounts.values.reduce(0, +))
            case (.removeHint(let hint), let tx?):
                return .removed(try removeHint(hint, in: tx))
            case (.forget(let key, let object), let tx?):
                return .removed(try forget(key, ifStill: object, in: tx))
            case (.scanOwn(let after, let limit), _):
                return .entries(try scanOwn(after: after, limit: limit))
            case (.rangeHashes(let start, let end), _):
                let (hashes, seq) = try rangeHashes(start: start, end: end)
                return .keyHashes(hashes, seq: seq)
            case (.findTombstones(let before, let limit), _):
                return .keys(try tombstones(before: before, limit: limit))
            case (.merge, nil), (.coordinateWrite, nil), (.removeHint, nil), (.forget, nil):
                return .failed("internal error: a change outside a transaction")
            }
        } catch {
            if let refusal = error.refusal { return .refused(refusal) }
            return .failed(error.message)
        }
    }

    /// Node metadata (identity, tokens), stored beside the data.
    public func metadata(_ name: String) throws(StorageError) -> [UInt8]? {
        try engine.get(StorageKey.meta(name))
    }

    public func setMetadata(_ name: String, _ value: [UInt8]) throws(StorageError) {
        try transaction { tx throws(StorageError) in tx.put(StorageKey.meta(name), value, sync: true) }
    }

    /// Replaces metadata `name` with `change(current)` (nothing when absent or when `change`
    /// returns nil), atomically with every other change of the store: two updates of one
    /// record never lose each other's.
    public func modifyMetadata(_ name: String, _ change: ([UInt8]) throws(StorageError) -> [UInt8]?)
        throws(StorageError)
    {
        try transaction { tx throws(StorageError) in
            guard let current = try tx.get(StorageKey.meta(name)), let next = try change(current) else { return }
            tx.put(StorageKey.meta(name), next, sync: true)
        }
    }

    private static func decode(_ bytes: [UInt8], key: [UInt8]) throws(StorageError) -> VersionedObject {
        do {
            // The store is trusted with more versions than a peer (see `storedVersionLimit`).
            return try VersionedObject(decoding: bytes, maxVersions: VersionedObject.storedVersionLimit)
        } catch {
            throw StorageError("stored object for a key of \(key.count) bytes is corrupt: \(error.reason)")
        }
    }
}

/// Group commit's figures: write batches committed, how many were synced, and the
/// operations they carried (operations / batches is the batching achieved).
public struct CommitCounts: Hashable, Sendable {
    public var batches: UInt64 = 0
    public var syncs: UInt64 = 0
    public var operations: UInt64 = 0
}
