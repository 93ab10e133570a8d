/// How a member presents itself (gossiped) or is seen (locally, `down`).
public enum MemberStatus: String, Hashable, Sendable, Codable, CaseIterable {
    case up, down, joining, leaving
    /// Gone for good: it handed off everything and exited. Its row stays in the gossip
    /// table as a tombstone, so an older row of it that some node still holds (`leaving`,
    /// say) cannot bring it back; it is in no ring and no view.
    case left
}

/// One row of the gossiped membership table.
public struct Member: Hashable, Sendable {
    public var name: NodeName
    /// "host:port" of the peer protocol.
    public var peerAddress: String
    /// "host:port" of the client HTTP API.
    public var httpAddress: String
    public var tokens: [RingPosition]
    /// The status the member declares for itself.
    public var status: MemberStatus
    /// Bumped by the member itself every gossip round; the larger (generation, heartbeat) wins.
    public var heartbeat: UInt64
    /// The member holds no pending hints and no data it does not own: nothing that could
    /// bring back an old version. Tombstones are reaped only while every member is settled.
    public var settled: Bool
    /// Bumped each time the process starts, so a restarted node's row beats its old one.
    public var generation: UInt64
    /// The member's proof that it holds the cluster secret: an HMAC of its identity made by
    /// the member itself (`ClusterKey.admission(of:)`); empty in a cluster without a secret.
    public var admission: [UInt8]

    public init(
        name: NodeName, peerAddress: String, httpAddress: String, tokens: [RingPosition], status: MemberStatus,
        heartbeat: UInt64 = 0, generation: UInt64 = 1, settled: Bool = false, admission: [UInt8] = []
    ) {
        self.admission = admission
        self.settled = settled
        self.name = name
        self.peerAddress = peerAddress
        self.httpAddress = httpAddress
        self.tokens = tokens
        self.status = status
        self.heartbeat = heartbeat
        self.generation = generation
    }

    /// The largest heartbeat or generation a row may carry: decoders refuse more, so a
    /// forged or damaged row can neither overflow `+ 1` nor win forever.
    public static let maxVersion: UInt64 = 1 << 62

    /// Whether `other` describes the same member identity (what an admission tag covers).
    public func sameIdentity(as other: Member) -> Bool {
        name == other.name && peerAddress == other.peerAddress && httpAddress == other.httpAddress
            && tokens == other.tokens && generation == other.generation && admission == other.admission
    }

    /// Whether this row is newer information about the same member than `other`.
    public func isNewer(than other: Member) -> Bool {
        (generation, heartbeat) > (other.generation, other.heartbeat)
    }
}

/// Gossip-based membership: every round, a node bumps its own heartbeat and exchanges its
/// table with one random peer (by digests, see `GossipDigest`); both keep, per member, the
/// row with the larger version. Seeds are contacted until some other member is known, so separately started
/// nodes do not stay in logical partitions.
public struct Membership: Sendable {
    public enum Action: Hashable, Sendable {
        /// Send the digests of our table to the peer at this address (a digest exchange).
        case gossip(toAddress: String, digests: [MemberDigest])
        /// The ring changed (a member appeared or its tokens changed).
        case ringChanged
        /// A row about this member was ignored: its admission tag is not one that a holder
        /// of the cluster secret made (a forged or corrupted member).
        case refused(NodeName)
        /// A peer remembers a later life of this node than it knew of: it lost its data
        /// dir (and took a generation above that life's).
        case outlivedEarlierSelf
    }

    public private(set) var me: NodeName
    public private(set) var members: [NodeName: Member]
    public let seeds: [String]
    /// Every member's tokens, joining and leaving ones included.
    public private(set) var ring: Ring
    /// The ring requests are routed on: members that declare themselves `up`. A joining
    /// node enters it once it has its data; a leaving node drops out so its ranges move.
    public private(set) var routingRing: Ring
    /// Monotonic ms of the last change to the member list or a declared status.
    public private(set) var lastChange: UInt64 = 0
    /// Monotonic ms at which we last heard a newer row of each member (for heartbeat ages).
    public private(set) var lastHeard: [NodeName: UInt64] = [:]
    /// Which members this node can use right now.
    public private(set) var detector: FailureDetector
    /// With a cluster secret, only rows whose admission tag it verifies are taken in, and our
    /// own row carries a tag; without one (a loopback development cluster) none are checked.
    public let key: ClusterKey?

    public init(
        me: Member, seeds: [String], gossipIntervalMs: UInt64 = 1000, phiThreshold: Double = 8, key: ClusterKey? = nil
    ) {
        var me = me
        if let key { me.admission = key.admission(of: me) }
        self.key = key
        self.me = me.name
        self.members = [me.name: me]
        self.seeds = seeds.filter { $0 != me.peerAddress }
        self.ring = Ring(nodes: [me.name: me.tokens])
        self.routingRing = me.status == .up ? ring : Ring(tokens: [])
        self.detector = FailureDetector(expectedIntervalMs: gossipIntervalMs, threshold: phiThreshold)
    }

    /// The member's status as this node sees it: `down` when its heartbeats stopped
    /// arriving (phi over the threshold) or it failed to answer this node; otherwise what
    /// it declares about itself.
    public func status(of name: NodeName, at now: UInt64) -> MemberStatus? {
        guard let member = members[name] else { return nil }
        if name == me || member.status == .left { return member.status }
        return detector.isAvailable(name, at: now) ? member.status : .down
    }

    /// Whether requests may be sent to `name` now.
    public func isAvailable(_ name: NodeName, at now: UInt64) -> Bool {
        name == me || ((members[name].map { $0.status != .left } ?? false) && detector.isAvailable(name, at: now))
    }

    /// Members that have not left (the ones every view shows).
    public var current: [Member] { members.values.filter { $0.status != .left } }

    /// Left members' rows kept at most (the ones heard of last): enough for any churn a
    /// gossip round spreads, and a bound on the table.
    public static let leftRowLimit = 64

    /// A request to `name` got no answer (timeout, refused connection, failure).
    public mutating func requestFailed(to name: NodeName, at now: UInt64) {
        guard name != me else { return }
        detector.requestFailed(to: name, at: now)
    }

    /// `name` answered this node.
    public mutating func requestSucceeded(to name: NodeName) { detector.requestSucceeded(to: name) }

    /// The member listening on a peer address, if known.
    public func member(atAddress address: String) -> Member? {
        // (A new member may listen where a departed one did.)
        members.values.first { $0.peerAddress == address && $0.status != .left }
            ?? members.values.first { $0.peerAddress == address }
    }

    public var local: Member { members[me]! }

    /// Whether we have exchanged gossip with anyone (or need not: no seeds).
    public var hasJoined: Bool { seeds.isEmpty || members.count > 1 }

    /// A gossip round: bump our heartbeat, exchange with a random known peer, and also with
    /// a seed we do not know as a member yet. Without the second exchange, two nodes that
    /// found each other first would stop asking seeds and could gossip as an island forever.
    public mutating func tick<G: RandomNumberGenerator>(now: UInt64, rng: inout G) -> [Action] {
        bumpHeartbeat()
        lastHeard[me] = now
        let known = current.filter { $0.name != me }.map(\.peerAddress).sorted()
        var targets: [String] = []
        if let peer = known.randomElement(using: &rng) { targets.append(peer) }
        let unknownSeeds = seeds.filter { !known.contains($0) }
        if let seed = unknownSeeds.randomElement(using: &rng) { targets.append(seed) }
        let digests = GossipDigest.digests(of: table)
        return targets.map { .gossip(toAddress: $0, digests: digests) }
    }

    /// The table to send, sorted for determinism.
    public var table: [Member] { members.values.sorted { $0.name < $1.name } }

    /// Merges a peer's table into ours; returns `.ringChanged` if ring membership moved.
    public mutating func receive(_ incoming: [Member], now: UInt64) -> [Action] {
        let before = (ring, routingRing)
        let statuses = members.mapValues(\.status)
        var actions: [Action] = []
        for row in incoming where row.name != me {
            let known = members[row.name]
            if let known, !row.isNewer(than: known) { continue }
            // Verify a row's tag when its identity is news (a heartbeat changes no tag).
            if let key, !(known?.sameIdentity(as: row) ?? false), !key.admits(row) {
                actions.append(.refused(row.name))
                continue
            }
            members[row.name] = row
            lastHeard[row.name] = now
            if row.status == .left { detector.remove(row.name) } else { detector.heartbeat(from: row.name, at: now) }
        }
        forgetOldestLeftRows()
        // A peer remembers a newer row of ours than we have (we lost our disk): start a
        // generation above it so our own rows win again.
        // (Decoders cap generations at `Member.maxVersion`, so `+ 1` cannot overflow.)
        if let echo = incoming.first(where: { $0.name == me }), echo.isNewer(than: members[me]!),
            echo.generation < Member.maxVersion
        {
            members[me]!.generation = echo.generation + 1
            members[me]!.heartbeat = 0
            if let key { members[me]!.admission = key.admission(of: members[me]!) }
            actions.append(.outlivedEarlierSelf)
        }
        rebuildRings()
        if members.mapValues(\.status) != statuses { lastChange = now }
        if (ring, routingRing) != before { actions.append(.ringChanged) }
        return actions
    }

    private mutating func forgetOldestLeftRows() {
        let left = members.values.filter { $0.status == .left && $0.name != me }
        guard left.count > Self.leftRowLimit else { return }
        let oldest = left.sorted { (lastHeard[$0.name] ?? 0, $0.name) < (lastHeard[$1.name] ?? 0, $1.name) }
        for member in oldest.prefix(left.count - Self.leftRowLimit) {
            members[member.name] = nil
            lastHeard[member.name] = nil
        }
    }

    private mutating func rebuildRings() {
        ring = Ring(nodes: Dictionary(uniqueKeysWithValues: current.map { ($0.name, $0.tokens) }))
        routingRing = Ring(
            nodes: Dictionary(
                uniqueKeysWithValues: members.values.filter { $0.status == .up }.map { ($0.name, $0.tokens) }))
    }

    /// Changes our own declared status (joining -> up, up -> leaving).
    /// Publishes whether this node holds anything that could bring back an old version.
    public mutating func setLocalSettled(_ settled: Bool) {
        guard members[me]!.settled != settled else { return }
        members[me]!.settled = settled
        bumpHeartbeat()
    }

    public mutating func setLocalStatus(_ status: MemberStatus, now: UInt64 = 0) {
        members[me]!.status = status
        bumpHeartbeat()
        lastChange = now
        rebuildRings()
    }

    public func member(_ name: NodeName) -> Member? { members[name] }

    /// Our own heartbeat counts up from 0 each generation; it saturates rather than trap.
    private mutating func bumpHeartbeat() {
        members[me]!.heartbeat = min(members[me]!.heartbeat + 1, Member.maxVersion)
    }
}
