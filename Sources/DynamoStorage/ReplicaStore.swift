public import DynamoCore
import NIOConcurrencyHelpers

/// A node's replica store: the versions of every key it holds, and the hinted replicas it
/// keeps for other nodes (sloppy quorum), on one engine.
///
/// Layout: `0x01 | MD5(key) (16 bytes) | key` so a scan walks keys in ring order (what
/// handoff and Merkle trees need); `0x02 | MD5(key) | u16 key length | key | target` for
/// hints, kept apart so they never count as this node's own data; `0x03 | MD5(key) | key`
/// for departure marks (see `counterFloor`); `0x00 | name` holds node metadata. All keys
/// of one user key share the MD5, hence the lock stripe. Updates to one key are read-merge-write under a striped lock, so
/// concurrent writes never lose a version.
public final class ReplicaStore: Sendable {
    public let engine: any StorageEngine
    private let stripes: [NIOLock]
    private let keyCounter: NIOLockedValueBox<Int>
    private let hintCounter: NIOLockedValueBox<[NodeName: Int]>
    /// Mutation sequence and the tree updates not yet taken by the node.
    private let treeUpdates = NIOLockedValueBox<(seq: UInt64, pending: [TreeUpdate])>((0, []))

    public init(engine: any StorageEngine) throws(StorageError) {
        self.engine = engine
        self.stripes = (0..<64).map { _ in NIOLock() }
        self.keyCounter = NIOLockedValueBox(0)
        self.hintCounter = NIOLockedValueBox([:])
        var count = 0
        try Self.forEach(in: engine, prefix: StorageKey.data) { _, _ in count += 1 }
        var hints: [NodeName: Int] = [:]
        try Self.forEach(in: engine, prefix: StorageKey.hint) { key, _ in
            if let parsed = StorageKey.parseHint(key) { hints[parsed.target, default: 0] += 1 }
        }
        keyCounter.withLockedValue { $0 = count }
        hintCounter.withLockedValue { $0 = hints }
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

    /// Records a change of own data (call with the key's stripe lock held, so updates of one
    /// key are numbered in the order they happened).
    private func changed(_ key: [UInt8], to object: VersionedObject?) {
        let hash = object.map { MerkleTree.hash(key: key, object: $0) }
        treeUpdates.withLockedValue { state in
            state.seq += 1
            state.pending.append(TreeUpdate(key: key, hash: hash, seq: state.seq))
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

    /// Keys held in this store (values and tombstones).
    public var keyCount: Int { keyCounter.withLockedValue { $0 } }

    private func stripe(for storageKey: [UInt8]) -> NIOLock {
        // Bytes 1...2 are the start of the key's MD5: uniformly spread.
        stripes[Int(storageKey[1] ^ storageKey[2]) % stripes.count]
    }

    public func object(for key: [UInt8]) throws(StorageError) -> VersionedObject? {
        guard let bytes = try engine.get(StorageKey.data(key)) else { return nil }
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
        let storageKey = StorageKey.data(key)
        let lock = stripe(for: storageKey)
        lock.lock()
        defer { lock.unlock() }
        let stored = try engine.get(storageKey)
        let current = try stored.map { bytes throws(StorageError) in try Self.decode(bytes, key: key) }
        let next = transform(current)
        if next != current {
            let (encoded, size) = Self.encoded(next)
            try Self.check(key, from: Self.size(of: current, bytes: stored), to: size, limits: nil)
            try recordForgottenCounters(of: key, from: current, to: next, sync: sync)
            try engine.put(storageKey, encoded, sync: sync)
            if current == nil { keyCounter.withLockedValue { $0 += 1 } }
            changed(key, to: next)
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
        try update(key, sync: sync) { ($0 ?? VersionedObject()).merged(with: incoming, policy: policy) }
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
        let storageKey = StorageKey.data(key)
        let lock = stripe(for: storageKey)
        lock.lock()
        defer { lock.unlock() }
        let stored = try engine.get(storageKey)
        let current = try stored.map { bytes throws(StorageError) in try Self.decode(bytes, key: key) }
        let floor = max(
            try highestCounter(of: actor, for: key, own: current, hints: try hints(for: key)), counterFloor)
        let (next, version) = try Self.write(
            value, on: current ?? VersionedObject(), context: context, actor: actor, now: now, policy: policy,
            counterFloor: floor)
        let (encoded, size) = Self.encoded(next)
        try Self.check(key, from: Self.size(of: current, bytes: stored), to: size, limits: limits)
        try engine.put(storageKey, encoded, sync: sync)
        if current == nil { keyCounter.withLockedValue { $0 += 1 } }
        changed(key, to: next)
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
        guard let bytes = try engine.get(StorageKey.departure(key)) else { return nil }
        var reader = ByteReader(bytes)
        do {
            return try CausalHistory.decode(from: &reader)
        } catch {
            throw StorageError("departure mark of a key is corrupt: \(error.reason)")
        }
    }

    /// Records that `object` left this node. Call with the key's stripe lock held.
    private func recordDeparture(of key: [UInt8], _ object: VersionedObject) throws(StorageError) {
        try recordDeparture(of: key, counters: object.context.summary)
    }

    /// A merge whose result no longer shows counters the key's history had: a version
    /// pruned by another coordinator (`ClockPolicy.maxEntries`) dropped an actor's entry,
    /// so the versions it superseded took that actor's counters with them. Without a mark
    /// this node, as that actor, would number its next write of the key like an old one
    /// (found by the simulator with clocks pruned to 2 entries). Only pruning does this,
    /// so the extra write is rare. It is written just before the merge, synced alike: the
    /// log is sequential, so the merge never outlives its mark. Call with the key's stripe
    /// lock held.
    private func recordForgottenCounters(
        of key: [UInt8], from current: VersionedObject?, to next: VersionedObject, sync: Bool
    ) throws(StorageError) {
        guard let current, !current.isEmpty else { return }
        let forgotten = current.context.summary.filter { next.maxCounter(of: $0.key) < $0.value }
        if !forgotten.isEmpty { try recordDeparture(of: key, counters: forgotten, sync: sync) }
    }

    private func recordDeparture(of key: [UInt8], counters: [ActorName: UInt64], sync: Bool = true) throws(StorageError)
    {
        var mark = try departureMark(for: key) ?? .empty
        for (actor, counter) in counters where counter > mark.maxCounter(of: actor) {
            mark.insert(Dot(actor: actor, counter: counter), timestamp: 0)
        }
        // Only the maximum matters: keep one point per actor.
        let compact = CausalHistory(dots: mark.summary.map { Dot(actor: $0.key, counter: $0.value) })
        var writer = ByteWriter()
        compact.encode(into: &writer)
        try engine.put(StorageKey.departure(key), writer.bytes, sync: sync)
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
        let storageKey = StorageKey.data(key)
        let lock = stripe(for: storageKey)
        lock.lock()
        defer { lock.unlock() }
        guard let bytes = try engine.get(storageKey), try Self.decode(bytes, key: key) == object else { return false }
        try recordDeparture(of: key, object)
        try engine.delete(storageKey, sync: true)
        keyCounter.withLockedValue { $0 -= 1 }
        changed(key, to: nil)
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
        let lock = stripe(for: StorageKey.data(key))
        lock.lock()
        defer { lock.unlock() }
        try storeHintLocked(target: target, key: key, incoming, policy: policy, sync: sync)
    }

    private func storeHintLocked(
        target: NodeName, key: [UInt8], _ incoming: VersionedObject, policy: ClockPolicy, sync: Bool
    ) throws(StorageError) {
        let storageKey = try StorageKey.hint(for: key, target: target)
        let stored = try engine.get(storageKey)
        let current = try stored.map { bytes throws(StorageError) in try Self.decode(bytes, key: key) }
        let next = (current ?? VersionedObject()).merged(with: incoming, policy: policy)
        guard next != current else { return }
        // A hint travels to its target in one frame.
        let (encoded, size) = Self.encoded(next)
        try Self.check(key, from: Self.size(of: current, bytes: stored), to: size, limits: nil)
        try recordForgottenCounters(of: key, from: current, to: next, sync: sync)
        try engine.put(storageKey, encoded, sync: sync)
        if current == nil { hintCounter.withLockedValue { $0[target, default: 0] += 1 } }
    }

    /// The highest counter `actor` has used for `key` as far as this node can tell: in its
    /// own data (`own`), in each hint it holds for the key (dots it made as a fallback), and
    /// in the departure mark. Each is read on its own: merging them first could let a
    /// version with a pruned clock supersede the one that showed a counter. Call with the
    /// key's stripe lock held.
    private func highestCounter(
        of actor: ActorName, for key: [UInt8], own: VersionedObject?, hints: [VersionedObject]
    ) throws(StorageError) -> UInt64 {
        let fromHints = hints.map { $0.maxCounter(of: actor) }.max() ?? 0
        return max(own?.maxCounter(of: actor) ?? 0, try departureMark(for: key)?.maxCounter(of: actor) ?? 0, fromHints)
    }

    /// Each hint held here for `key`, one per target, decoded.
    private func hints(for key: [UInt8]) throws(StorageError) -> [VersionedObject] {
        let prefix = try StorageKey.hintPrefix(for: key)
        var result: [VersionedObject] = []
        // Targets are UTF-8 names, which never contain the byte 0xff.
        for entry in try engine.scan(from: prefix, to: prefix + [0xff], limit: 1024) {
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
        let storageKey = try StorageKey.hint(for: hint.key, target: hint.target)
        let lock = stripe(for: storageKey)
        lock.lock()
        defer { lock.unlock() }
        guard let bytes = try engine.get(storageKey), try Self.decode(bytes, key: hint.key) == hint.object else {
            return false
        }
        // Mark first: a crash in between must over-remember, never forget.
        try recordDeparture(of: hint.key, hint.object)
        try engine.delete(storageKey, sync: true)
        hintCounter.withLockedValue { counts in
            counts[hint.target, default: 1] -= 1
            if counts[hint.target] == 0 { counts[hint.target] = nil }
        }
        return true
    }

    /// Coordinates a write on a fallback: the new version is built on everything held here
    /// for the key, kept as a hint for `target`, and returned (to be replicated) with the
    /// size of everything held here for the key. The limits are checked on that whole.
    public func coordinateHintedWrite(
        _ key: [UInt8], target: NodeName, value: [UInt8]?, context: CausalHistory?, actor: ActorName, now: UInt64,
        policy: ClockPolicy, counterFloor: UInt64 = 0, limits: ObjectLimits = ObjectLimits()
    ) throws(StorageError) -> (version: Version, size: ObjectSize) {
        let lock = stripe(for: StorageKey.data(key))
        lock.lock()
        defer { lock.unlock() }
        let own = try object(for: key)
        let held = try hints(for: key)
        let base = (own ?? VersionedObject()).merged(
            with: Self.merged(held, policy: policy) ?? VersionedObject(), policy: policy)
        let floor = max(try highestCounter(of: actor, for: key, own: own, hints: held), counterFloor)
        let (next, version) = try Self.write(
            value, on: base, context: context, actor: actor, now: now, policy: policy, counterFloor: floor)
        let size = next.size
        try Self.check(key, from: base.isEmpty ? .zero : base.size, to: size, limits: limits)
        try storeHintLocked(target: target, key: key, VersionedObject(versions: [version]), policy: policy, sync: true)
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
        let result = execute(op, policy: policy)
        return StorageCompletion(result, treeUpdates: takeTreeUpdates())
    }

    /// Executes one storage operation of the node state machine (blocking).
    public func execute(_ op: StorageOp, policy: ClockPolicy) -> StorageResult {
        do {
            switch op {
            case .read(let key):
                let own = try object(for: key)
                guard let hinted = try hintedObject(for: key, policy: policy) else { return .object(own) }
                return .object((own ?? VersionedObject()).merged(with: hinted, policy: policy))
            case .merge(let key, let object, let hintFor?, let sync):
                try storeHint(target: hintFor, key: key, object, policy: policy, sync: sync)
                return .stored
            case .merge(let key, let object, nil, let sync):
                try merge(key, object, policy: policy, sync: sync)
                return .stored
            case .coordinateWrite(
                let key, let value, let context, let actor, let now, let hintFor?, _, let floor, let limits):
                let (version, size) = try coordinateHintedWrite(
                    key, target: hintFor, value: value, context: context, actor: actor, now: now, policy: policy,
                    counterFloor: floor, limits: limits)
                return .version(version, size: size)
            case .coordinateWrite(
                let key, let value, let context, let actor, let now, nil, let sync, let floor, let limits):
                let (version, size) = try coordinateWrite(
                    key, value: value, context: context, actor: actor, now: now, policy: policy, sync: sync,
                    counterFloor: floor, limits: limits)
                return .version(version, size: size)
            case .loadHints(let limit, let targets):
                return .hints(
                    try pendingHints(limit: limit) { targets.contains($0) }, total: hintCounts.values.reduce(0, +))
            case .removeHint(let hint):
                return .removed(try removeHint(hint))
            case .forget(let key, let object):
                return .removed(try forget(key, ifStill: object))
            case .scanOwn(let after, let limit):
                return .entries(try scanOwn(after: after, limit: limit))
            case .rangeHashes(let start, let end):
                let (hashes, seq) = try rangeHashes(start: start, end: end)
                return .keyHashes(hashes, seq: seq)
            case .findTombstones(let before, let limit):
                return .keys(try tombstones(before: before, limit: limit))
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
        try engine.put(StorageKey.meta(name), value, sync: true)
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
