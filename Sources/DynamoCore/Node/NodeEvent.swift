/// Something a person watching a node would want to know, with its facts as fields.
///
/// The components of `NodeMachine` (and the node's shell, for storage faults) emit these;
/// `text(node:)` is the one place an event becomes a sentence, and `GET /admin/events`
/// carries both, so the console colours and merges events by their fields and never by
/// their wording.
public enum NodeEvent: Hashable, Sendable {
    /// The node started leaving: its ranges and hints go to other nodes.
    case leaving
    /// Injected faults changed: traffic with `dropped` is dropped (none: healed).
    case faults(dropped: [NodeName])
    /// A replica of `key` stored here as a hint for `target`.
    case hintKept(key: [UInt8], target: NodeName)
    /// A hint this node held was taken by `target` and deleted here.
    case hintDelivered(target: NodeName)
    /// Requests to `peer` failed (routed around it) or succeed again.
    case reachability(peer: NodeName, reachable: Bool)
    /// This node's view of `peer`'s status changed.
    case marked(peer: NodeName, status: MemberStatus, why: MarkReason?)
    /// Gossip about `peer` was refused: its row is not signed with the cluster secret.
    case gossipRefused(peer: NodeName)
    /// The cluster remembers a later life of this node: it takes `generation`.
    case outlivedEarlierSelf(generation: UInt64)
    /// Gossip named members this node did not know.
    case learned(members: [NodeName])
    /// A known node restarted and heard from the cluster.
    case rejoined(members: Int)
    /// A read found `peer` behind on `key` and sent it the merged object.
    case readRepair(key: [UInt8], peer: NodeName)
    /// A tombstone every home replica holds was forgotten on `peer`.
    case tombstoneReaped(key: [UInt8], peer: NodeName)
    /// A read returned `count` concurrent versions of `key`.
    case siblingsRead(key: [UInt8], count: Int)
    /// A key near the object limits was seen, or a write to it refused.
    case nearLimit(key: [UInt8], size: ObjectSize, limits: ObjectLimits, refused: Bool)
    /// Keys pulled from `source` while joining could not be stored: they are pulled again.
    case pullFailed(source: NodeName, reason: String)
    /// A new (or refilling) node pulled its ranges' `keys` and is up.
    case joined(keys: Int)
    /// Keys this node is no longer a home node of go to their home nodes.
    case handingOff(keys: Int)
    /// A Merkle exchange with `peer` on `range` found keys differing and repaired some.
    case antiEntropy(peer: NodeName, range: KeyRange, differing: Int, repaired: Int)
    /// The node's store lost data (found at start): it refills from its replicas.
    case storeLost
    /// The store refused operations (`what`: "disk full", ...), or takes them again (nil).
    case storage(degraded: String?)

    /// Why a peer was marked down.
    public enum MarkReason: Hashable, Sendable {
        case partition
        /// The accrual failure detector's suspicion, to one decimal.
        case phi(Double)
        case unanswered
    }

    /// A stable name of the case, for the events API and the console.
    public var kind: String {
        switch self {
        case .leaving: "leaving"
        case .faults: "faults"
        case .hintKept: "hint-kept"
        case .hintDelivered: "hint-delivered"
        case .reachability: "reachability"
        case .marked: "marked"
        case .gossipRefused: "gossip-refused"
        case .outlivedEarlierSelf: "outlived-earlier-self"
        case .learned: "learned"
        case .rejoined: "rejoined"
        case .readRepair: "read-repair"
        case .tombstoneReaped: "tombstone-reaped"
        case .siblingsRead: "siblings-read"
        case .nearLimit: "near-limit"
        case .pullFailed: "pull-failed"
        case .joined: "joined"
        case .handingOff: "handing-off"
        case .antiEntropy: "anti-entropy"
        case .storeLost: "store-lost"
        case .storage: "storage"
        }
    }

    /// The other node the event is about, if any.
    public var peer: NodeName? {
        switch self {
        case .hintKept(_, let node), .hintDelivered(let node), .reachability(let node, _), .marked(let node, _, _),
            .gossipRefused(let node), .readRepair(_, let node), .tombstoneReaped(_, let node),
            .pullFailed(let node, _), .antiEntropy(let node, _, _, _):
            node
        default: nil
        }
    }

    /// The key the event is about, if any.
    public var key: [UInt8]? {
        switch self {
        case .hintKept(let key, _), .readRepair(let key, _), .tombstoneReaped(let key, _), .siblingsRead(let key, _),
            .nearLimit(let key, _, _, _):
            key
        default: nil
        }
    }

    /// The event's count (keys, siblings, members), if any.
    public var count: Int? {
        switch self {
        case .siblingsRead(_, let count), .joined(let count), .handingOff(let count), .rejoined(let count): count
        case .antiEntropy(_, _, _, let repaired): repaired
        case .learned(let members): members.count
        case .faults(let dropped): dropped.count
        default: nil
        }
    }

    /// The nodes the event names (traffic dropped with, members learned of).
    public var peers: [NodeName]? {
        switch self {
        case .faults(let dropped): dropped
        case .learned(let members): members
        default: nil
        }
    }

    /// A word or phrase of detail: why a peer was marked down, why storage degraded or a
    /// pull failed.
    public var detail: String? {
        switch self {
        case .marked(_, _, .partition?): "partition"
        case .marked(_, _, .phi(let phi)?): "phi \(phi)"
        case .marked(_, _, .unanswered?): "unanswered"
        case .storage(let degraded): degraded
        case .pullFailed(_, let reason): reason
        default: nil
        }
    }

    /// The member status the event reports (`marked`), or the reachability as up/down.
    public var status: MemberStatus? {
        switch self {
        case .marked(_, let status, _): status
        case .reachability(_, let reachable): reachable ? .up : .down
        default: nil
        }
    }

    /// The event as a sentence about `node`.
    public func text(node: NodeName) -> String {
        switch self {
        case .leaving:
            return "\(node) is leaving: handing its ranges and hints to other nodes"
        case .faults(let dropped):
            return dropped.isEmpty
                ? "\(node) heals: talking to everyone"
                : "\(node) drops all traffic with \(dropped.joined(separator: ","))"
        case .hintKept(let key, let target):
            return "\(node) keeps a hint of \(KeyText.short(key)) for \(target)"
        case .hintDelivered(let target):
            return "\(node) delivered a hint to \(target)"
        case .reachability(let peer, let reachable):
            return reachable ? "\(node) reaches \(peer) again" : "\(node) cannot reach \(peer); routing around it"
        case .marked(let peer, let status, let why):
            let detail =
                switch why {
                case .partition: " (cut off by a partition)"
                case .phi(let phi): " (phi \(phi))"
                case .unanswered: " (its requests went unanswered)"
                case nil: ""
                }
            return "\(node) marks \(peer) \(status.rawValue)\(detail)"
        case .gossipRefused(let peer):
            return "\(node) refuses gossip about \(peer): its row is not signed with the cluster secret"
        case .outlivedEarlierSelf(let generation):
            return
                "\(node) finds the cluster remembers a later life of it (its data dir is new, or older than that life): it takes generation \(generation) and numbers new versions from its clock"
        case .learned(let members):
            return "\(node) learns of \(members.joined(separator: ", "))"
        case .rejoined(let members):
            return "\(node) rejoined the cluster (\(members) members known)"
        case .readRepair(let key, let peer):
            // The coordinator's own copy can be the stale one.
            return peer == node
                ? "\(node) read-repairs its own copy of \(KeyText.short(key))"
                : "\(node) read-repairs \(KeyText.short(key)) on \(peer)"
        case .tombstoneReaped(_, let peer):
            return "\(node) reaps a tombstone every replica has, on \(peer)"
        case .siblingsRead(let key, let count):
            return "\(node) reads \(count) siblings of \(KeyText.short(key))"
        case .nearLimit(let key, let size, let limits, let refused):
            let what = refused ? "refuses a write to" : "sees"
            return
                "\(node) \(what) \(KeyText.short(key)) with \(size.siblings) siblings, \(size.bytes) bytes (limits \(limits.maxSiblings) siblings, \(limits.maxObjectBytes) bytes)"
        case .pullFailed(let source, let reason):
            return "\(node) could not store keys pulled from \(source) (\(reason)): it pulls them again"
        case .joined(let keys):
            return "\(node) joined the cluster and took \(keys) key(s) for its ranges; now up"
        case .handingOff(let keys):
            return "\(node) hands \(keys) key(s) to their home nodes"
        case .antiEntropy(let peer, let range, let differing, let repaired):
            return "\(node) anti-entropy with \(peer) on \(range): \(differing) key(s) differ, \(repaired) repaired"
        case .storeLost:
            return "\(node) found its store had lost data: it refills its ranges from its replicas"
        case .storage(let degraded):
            return degraded.map { "\(node) storage degraded (\($0))" } ?? "\(node) storage recovered"
        }
    }
}

/// Keys as people read them in events, logs and error messages.
public enum KeyText {
    /// Printable UTF-8 up to 24 characters, else a hex prefix.
    public static func short(_ key: [UInt8]) -> String {
        if let text = String(validating: key, as: UTF8.self),
            // (C1 controls too: U+009B starts a terminal escape.)
            text.unicodeScalars.allSatisfy({ $0.value >= 0x21 && $0.value != 0x7f && !(0x80...0x9f).contains($0.value) })
        {
            return text.count <= 24 ? text : text.prefix(23) + "…"
        }
        return "0x" + RingPosition.hex(key.prefix(8)) + (key.count > 8 ? "…" : "")
    }
}
