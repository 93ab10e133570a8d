/// How much one key holds: the two things the object limits bound.
public struct ObjectSize: Hashable, Sendable {
    /// Versions stored for the key, tombstones included (one version counts as 1).
    public var siblings: Int
    /// The stored object's encoded size: what a peer frame carries for it.
    public var bytes: Int

    public init(siblings: Int, bytes: Int) {
        self.siblings = siblings
        self.bytes = bytes
    }

    public static let zero = ObjectSize(siblings: 0, bytes: 0)
}

extension VersionedObject {
    public var size: ObjectSize { ObjectSize(siblings: versions.count, bytes: encodedByteCount) }
}

/// Bounds on what one key may hold (Riak's `warn_siblings`/`max_siblings` and
/// `warn_object_size`/`max_object_size`): past the warning a node reports the key, and a
/// write that would take a key past a maximum is refused before anything is stored.
///
/// Why both: blind writes pile up siblings without end, and every sibling is read, merged
/// and shipped with the key; and every object travels in one peer frame, so an object the
/// frame cannot carry could be stored but never read back from a replica. The maxima are
/// checked by the coordinator against its own stored object and the new version, so no
/// write that crosses them is ever acknowledged. Replicas do not refuse by them: a
/// replica merge carries versions already stored elsewhere (a write, a hint, a repair, a
/// handoff), and refusing it would only keep replicas apart. Replicas refuse only what
/// they could not read back or send on (`ceiling`), which lies far above the maxima, so
/// replicas that diverged near a maximum still merge.
public struct ObjectLimits: Hashable, Sendable {
    /// A key that reaches this many versions is reported (log, status, dashboard).
    public var warnSiblings: Int
    /// A write that would leave a key with more versions is refused.
    public var maxSiblings: Int
    /// A key whose object reaches this many bytes is reported.
    public var warnObjectBytes: Int
    /// A write that would leave a key's object larger is refused.
    public var maxObjectBytes: Int

    public init(
        warnSiblings: Int = Self.defaultWarnSiblings, maxSiblings: Int = Self.defaultMaxSiblings,
        warnObjectBytes: Int = Self.defaultWarnObjectBytes, maxObjectBytes: Int = Self.defaultMaxObjectBytes
    ) {
        self.warnSiblings = warnSiblings
        self.maxSiblings = maxSiblings
        self.warnObjectBytes = warnObjectBytes
        self.maxObjectBytes = maxObjectBytes
    }

    public static let defaultWarnSiblings = 25
    public static let defaultMaxSiblings = 100
    public static let defaultWarnObjectBytes = 5 << 20
    /// Well under the frame ceiling: replicas that diverged may each hold up to this and
    /// still merge into an object a frame carries.
    public static let defaultMaxObjectBytes = 12 << 20

    /// The peer protocol's largest frame after the handshake (DynamoWire's
    /// `PeerFrameDecoder.defaultMaxFrameSize` is this value).
    public static let peerFrameBytes = 16 << 20
    /// Room a frame needs besides one object: message tag, request id, the key (up to
    /// 65,535 bytes), a hint's target, the frame's authentication tag.
    public static let frameHeadroom = 128 << 10
    /// No object larger than this is stored by anyone: a peer frame could not carry it.
    public static let ceilingBytes = peerFrameBytes - frameHeadroom
    /// Nor one with more versions than a peer decodes.
    public static let ceilingSiblings = VersionedObject.decodeVersionLimit
    /// The largest `maxSiblings` allowed: a tenth of the ceiling, so replicas that diverged
    /// at the limit still merge into something a peer decodes.
    public static let largestMaxSiblings = ceilingSiblings / 10

    /// What a replica refuses to store, whoever sends it: only what it could not read back
    /// or send on.
    public static let ceiling = ObjectLimits(
        warnSiblings: ceilingSiblings, maxSiblings: ceilingSiblings, warnObjectBytes: ceilingBytes,
        maxObjectBytes: ceilingBytes)

    /// Limits from flags: a warning left unset is the default, lowered to the maximum.
    public static func configured(
        maxSiblings: Int = defaultMaxSiblings, warnSiblings: Int? = nil,
        maxObjectBytes: Int = defaultMaxObjectBytes, warnObjectBytes: Int? = nil
    ) -> ObjectLimits {
        ObjectLimits(
            warnSiblings: warnSiblings ?? min(defaultWarnSiblings, maxSiblings), maxSiblings: maxSiblings,
            warnObjectBytes: warnObjectBytes ?? min(defaultWarnObjectBytes, maxObjectBytes),
            maxObjectBytes: maxObjectBytes)
    }

    /// Why these limits cannot be used (named by their `dynamo-node` flags), nil when they can.
    /// `maxValueBytes`: one value of that size, with its clock, must fit in an object.
    public func problem(maxValueBytes: Int) -> String? {
        if !(1...Self.largestMaxSiblings).contains(maxSiblings) {
            return "--max-siblings must be between 1 and \(Self.largestMaxSiblings)"
        }
        if !(1...maxSiblings).contains(warnSiblings) {
            return "--warn-siblings must be between 1 and --max-siblings (\(maxSiblings))"
        }
        if !(1...Self.ceilingBytes).contains(maxObjectBytes) {
            return
                "--max-object-bytes must be between 1 and \(Self.ceilingBytes) (a peer frame carries \(Self.peerFrameBytes) bytes with its key and headers)"
        }
        if maxObjectBytes < maxValueBytes + Self.valueOverhead {
            return
                "--max-object-bytes (\(maxObjectBytes)) must be at least --max-value-bytes (\(maxValueBytes)) plus \(Self.valueOverhead) for the value's clock"
        }
        if !(1...maxObjectBytes).contains(warnObjectBytes) {
            return "--warn-object-bytes must be between 1 and --max-object-bytes (\(maxObjectBytes))"
        }
        return nil
    }

    /// Room for one version's dot, clock and timestamp beside its value.
    public static let valueOverhead = 4096

    /// Whether a key of this size is to be reported.
    public func isNear(_ size: ObjectSize) -> Bool {
        size.siblings >= warnSiblings || size.bytes >= warnObjectBytes
    }

    /// Why a change of `key` from `current` to `next` is refused, nil when it may be stored.
    ///
    /// A change may not take a key past a maximum, nor further past one it is over already
    /// (an object stored before the limits, or merged from replicas that diverged). One that
    /// does not grow it always passes: so a key over a limit can always be resolved, by a
    /// write with the context of a read.
    public func refusal(forKey key: [UInt8], current: ObjectSize, next: ObjectSize, isCeiling: Bool = false)
        -> ObjectLimitRefusal?
    {
        if next.siblings > maxSiblings, next.siblings > current.siblings {
            return ObjectLimitRefusal(
                key: key, bound: isCeiling ? .siblingCeiling : .maxSiblings, limit: maxSiblings, current: current,
                attempted: next)
        }
        if next.bytes > maxObjectBytes, next.bytes > current.bytes {
            return ObjectLimitRefusal(
                key: key, bound: isCeiling ? .byteCeiling : .maxObjectBytes, limit: maxObjectBytes, current: current,
                attempted: next)
        }
        return nil
    }

    /// What a replica refuses to merge (see `ceiling`).
    public static func ceilingRefusal(forKey key: [UInt8], current: ObjectSize, next: ObjectSize)
        -> ObjectLimitRefusal?
    {
        ceiling.refusal(forKey: key, current: current, next: next, isCeiling: true)
    }
}

/// A write refused because the key would hold too much: what the client is told (HTTP
/// 409 with this description), so it names the key, the size and how to resolve it.
public struct ObjectLimitRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    /// Which bound the write would cross.
    public enum Bound: UInt8, Hashable, Sendable, CaseIterable {
        /// `--max-siblings`.
        case maxSiblings = 1
        /// `--max-object-bytes`.
        case maxObjectBytes = 2
        /// More versions than a peer decodes (replicas refuse this from anyone).
        case siblingCeiling = 3
        /// Larger than a peer frame carries (replicas refuse this from anyone).
        case byteCeiling = 4

        /// The flag that sets it (nil for the fixed ceilings).
        public var flag: String? {
            switch self {
            case .maxSiblings: "--max-siblings"
            case .maxObjectBytes: "--max-object-bytes"
            case .siblingCeiling, .byteCeiling: nil
            }
        }

        public var countsSiblings: Bool { self == .maxSiblings || self == .siblingCeiling }
    }

    public var key: [UInt8]
    public var bound: Bound
    public var limit: Int
    /// The key's object before the write, and what the write would have made it.
    public var current: ObjectSize
    public var attempted: ObjectSize

    public init(key: [UInt8], bound: Bound, limit: Int, current: ObjectSize, attempted: ObjectSize) {
        self.key = key
        self.bound = bound
        self.limit = limit
        self.current = current
        self.attempted = attempted
    }

    public var description: String {
        let name = "key \"\(KeyText.short(key))\""
        let over: String
        if bound.countsSiblings {
            over =
                "\(name) has \(current.siblings) siblings and this write would make \(attempted.siblings), over the limit of \(limit)"
        } else {
            over =
                "\(name) holds \(current.bytes) bytes in \(current.siblings) siblings and this write would make \(attempted.bytes), over the limit of \(limit) bytes"
        }
        let which = bound.flag.map { " (\($0))" } ?? " (what a peer can \(bound.countsSiblings ? "decode" : "carry"))"
        let resolve =
            bound.countsSiblings || current.siblings > 1
            ? "read the key and write back one value with its X-Dynamo-Context to resolve its siblings"
            : "write a smaller value"
        return over + which + "; write refused, nothing stored: " + resolve
    }
}

/// A key a node saw near or over its limits, for the status, the log and the dashboard.
public struct ObjectReport: Hashable, Sendable {
    public var key: [UInt8]
    public var size: ObjectSize
    /// True when the last write to it was refused (reads since do not change that).
    public var refused: Bool
    /// Monotonic ms when it was seen.
    public var atMs: UInt64

    public init(key: [UInt8], size: ObjectSize, refused: Bool, atMs: UInt64) {
        self.key = key
        self.size = size
        self.refused = refused
        self.atMs = atMs
    }
}

/// The few keys most recently seen near or over the limits, newest first, one entry per key.
public struct HotKeys: Hashable, Sendable {
    public private(set) var reports: [ObjectReport] = []
    /// Writes refused by the limits since the node started.
    public private(set) var refusedWrites = 0
    public let capacity: Int

    public init(capacity: Int = 10) { self.capacity = capacity }

    /// How the node came to see a key's size.
    public enum Sighting: Hashable, Sendable {
        case read, written, refused
    }

    /// Records a sighting: the key's report, and whether the key was not listed before
    /// (worth telling once).
    @discardableResult
    public mutating func note(_ key: [UInt8], _ size: ObjectSize, _ sighting: Sighting, atMs: UInt64) -> (
        report: ObjectReport, isNew: Bool
    ) {
        if sighting == .refused { refusedWrites += 1 }
        let index = reports.firstIndex { $0.key == key }
        let wasRefused = index.map { reports[$0].refused } ?? false
        let report = ObjectReport(
            key: key, size: size, refused: sighting == .refused || (sighting == .read && wasRefused), atMs: atMs)
        if let index { reports.remove(at: index) }
        reports.insert(report, at: 0)
        if reports.count > capacity { reports.removeLast(reports.count - capacity) }
        return (report, index == nil)
    }

    /// A key seen again below the warnings leaves the list.
    public mutating func cleared(_ key: [UInt8]) {
        reports.removeAll { $0.key == key }
    }
}
