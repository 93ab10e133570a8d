public import DynamoCore

/// What the clients did and were told, kept apart from the system under test, so the
/// simulator checks the cluster against it rather than against the cluster's own records.
///
/// Every put writes a value no other write uses, so a version found anywhere names the
/// write it came from by its value. A delete has no value: its tombstone is named by the
/// dot its acknowledgement returned, or, before that, by the dot the coordinator's store
/// gave a tombstone built on exactly the context the client sent (deletes sent with one
/// context saw the same versions, so which of them it was does not matter). A client that
/// writes after a read passes the read's context; the model records which versions (write
/// and dot) that read showed it.
///
/// The rules, checked by value:
/// - An acknowledged put stays somewhere in the cluster unless a later write whose client
///   had seen it (directly, or through writes that saw it) was acknowledged, or is itself
///   present. That later write replaced it on purpose.
/// - A version that the client of an acknowledged write had seen (the versions its context
///   covered, and transitively what those writes' clients had seen) never comes back.
/// - A version with the dot of an acknowledged write holds that write's value (or is a
///   tombstone for a delete), and no version holds a value no client wrote.
///
/// A write that failed may still have been applied (at least once, sometimes twice), so
/// failed writes count as present when they are found, and as a reason for a loss only
/// through what their clients had seen while they are found (or, for a delete a
/// coordinator stored, once its tombstone was reaped).
public struct ClientModel: Sendable {
    public struct Write: Sendable {
        public var key: [UInt8]
        /// nil: a delete.
        public var value: [UInt8]?
        /// What the client's read showed before this write: each version's dot, and the
        /// write it came from where the model can tell.
        /// The versions the client's read showed: each one's dot and value (nil: a
        /// tombstone). Which write each came from is looked up when checked, since a
        /// tombstone's write may be learnt only later (from its acknowledgement).
        public var saw: [Dot: [UInt8]?]
        public var sawDots: Set<Dot> { Set(saw.keys) }
        /// The context the client sent (nil: a blind write).
        public var context: CausalHistory?
        public var acked = false
        /// The dot the acknowledgement named.
        public var dot: Dot?
    }

    public private(set) var writes: [Write] = []
    private var byValue: [[UInt8]: Int] = [:]
    /// Per key (dots are numbered per key), acknowledged writes and deletes by their dot.
    private var deleteByDot: [[UInt8]: [Dot: Int]] = [:]
    private var ackedByDot: [[UInt8]: [Dot: Int]] = [:]
    private var idsByKey: [[UInt8]: [Int]] = [:]
    /// The dot each delete's tombstone is known or guessed by.
    private var dotOfDelete: [Int: Dot] = [:]
    /// Writes a coordinator stored (whether or not they were acknowledged).
    private var applied: Set<Int> = []

    public init() {}

    /// A client sends a write: returns its id and the unique value to send (nil for a delete).
    public mutating func attempt(key: [UInt8], deleting: Bool, after read: VersionedObject?) -> (
        id: Int, value: [UInt8]?
    ) {
        let id = writes.count
        let value: [UInt8]? = deleting ? nil : Array("w\(id)".utf8)
        var saw: [Dot: [UInt8]?] = [:]
        for version in read?.versions ?? [] { saw[version.dot] = version.value }
        let context = read.flatMap { $0.isEmpty ? nil : $0.context }
        writes.append(Write(key: key, value: value, saw: saw, context: context))
        if let value { byValue[value] = id }
        idsByKey[key, default: []].append(id)
        return (id, value)
    }

    public mutating func acknowledged(_ id: Int, dot: Dot?) {
        writes[id].acked = true
        writes[id].dot = dot
        guard let dot else { return }
        ackedByDot[writes[id].key, default: [:]][dot] = id
        if writes[id].value == nil { name(dot, of: writes[id].key, as: id) }
    }

    /// A coordinator stored a new version of `key` (`value` nil: a tombstone built on
    /// `context`, which is one of the deletes sent with that context). The write was
    /// applied, acknowledged or not: what its client had seen may be replaced by it even
    /// after its own version is gone (a reaped tombstone).
    public mutating func stored(key: [UInt8], value: [UInt8]?, context: CausalHistory?, dot: Dot) {
        let id: Int?
        if let value {
            id = byValue[value]
        } else if let known = deleteByDot[key]?[dot] {
            id = known
        } else {
            // The earliest such delete not yet named by a dot; if every one is (a delete
            // applied twice), any of them: they saw the same versions.
            let candidates = (idsByKey[key] ?? []).filter { writes[$0].value == nil && writes[$0].context == context }
            id = candidates.first { dotOfDelete[$0] == nil } ?? candidates.last
            if let id { name(dot, of: key, as: id) }
        }
        if let id, writes[id].key == key { applied.insert(id) }
    }

    /// Names a tombstone's dot as delete `id`'s. An acknowledgement is authoritative: if
    /// its dot had been guessed for another delete with the same context, that one takes
    /// the dot guessed for `id`.
    private mutating func name(_ dot: Dot, of key: [UInt8], as id: Int) {
        if let other = deleteByDot[key]?[dot], other != id {
            if let mine = dotOfDelete[id] {
                deleteByDot[key]?[mine] = other
                dotOfDelete[other] = mine
            } else {
                dotOfDelete[other] = nil
            }
        }
        deleteByDot[key, default: [:]][dot] = id
        dotOfDelete[id] = dot
    }

    /// The write a version came from: by its value, or for a tombstone by the dot an
    /// acknowledged delete returned.
    public func identify(_ version: Version, of key: [UInt8]) -> Int? {
        if let value = version.value { return byValue[value] }
        return deleteByDot[key]?[version.dot]
    }

    /// Writes reachable from `roots` through what their clients had seen (not the roots
    /// themselves unless reached).
    private func seenFrom(_ roots: some Sequence<Int>) -> (writes: Set<Int>, dots: Set<Dot>) {
        var reached: Set<Int> = []
        var dots: Set<Dot> = []
        var frontier = Array(roots)
        while let next = frontier.popLast() {
            dots.formUnion(writes[next].sawDots)
            for (dot, value) in writes[next].saw {
                let source: Int? = if let value { byValue[value] } else { deleteByDot[writes[next].key]?[dot] }
                if let source, reached.insert(source).inserted { frontier.append(source) }
            }
        }
        return (reached, dots)
    }

    /// What is wrong with `key` given the versions found: `present` is every version held
    /// anywhere (raw copies, own data and hints), `visible` what a client would be shown
    /// (the merge of everything, or a read's answer). Deletes whose tombstones were reaped
    /// are passed in `reapedDeletes` (a tombstone has no value to find it by once gone).
    public func problems(
        key: [UInt8], present: [Version], visible: [Version], reapedDeletes: Set<Dot> = [],
        checkLoss: Bool = true, checkResurrection: Bool = true
    ) -> [String] {
        var problems: [String] = []
        var found: Set<Int> = []
        for version in present {
            if let value = version.value, byValue[value] == nil {
                problems.append("a version \(version.dot) holds \(String(decoding: value, as: UTF8.self)), which no client wrote")
            }
            if let id = identify(version, of: key) {
                found.insert(id)
                if writes[id].key != key { problems.append("\(version.dot) of write \(id) is under the wrong key") }
            }
            if let id = ackedByDot[key]?[version.dot], writes[id].value != version.value
            {
                problems.append(
                    "version \(version.dot) holds \(version.value.map { String(decoding: $0, as: UTF8.self) } ?? "a tombstone"), but the write acknowledged with that dot was \(writes[id].value.map { String(decoding: $0, as: UTF8.self) } ?? "a delete")"
                )
            }
        }
        let mine = idsByKey[key] ?? []
        // A write justifies replacing what its client saw if it was acknowledged, or is
        // found, or (a delete a coordinator stored) its tombstone was reaped: a stored write
        // whose own version is gone again (a damaged log) excuses nothing.
        let justified = mine.filter { id in
            writes[id].acked || found.contains(id)
                || (applied.contains(id) && writes[id].value == nil
                    && dotOfDelete[id].map(reapedDeletes.contains) == true)
        }
        let replaced = seenFrom(justified).writes
        for id in mine where checkLoss && writes[id].acked && !found.contains(id) && !replaced.contains(id) {
            if writes[id].value == nil, let dot = writes[id].dot, reapedDeletes.contains(dot) { continue }
            let what = writes[id].value.map { "put of \(String(decoding: $0, as: UTF8.self))" } ?? "delete \(writes[id].dot?.description ?? "?")"
            problems.append("acknowledged \(what) is lost (no later write replaced it)")
        }
        if checkResurrection {
            let covered = seenFrom(mine.filter { writes[$0].acked }).dots
            for version in visible where covered.contains(version.dot) {
                problems.append(
                    "version \(version.dot) (\(version.value.map { String(decoding: $0, as: UTF8.self) } ?? "tombstone")) came back after an acknowledged write replaced it"
                )
            }
        }
        return problems
    }
}
