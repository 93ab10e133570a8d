/// Digest gossip, after Cassandra's three-message exchange: a round sends only each row's
/// version (SYN: name, generation, heartbeat); the peer answers with the rows it holds newer
/// and the versions it wants (ACK); the first node sends those rows (ACK2).
///
/// A row's identity (addresses, tokens, generation, admission tag) changes only when the
/// member restarts. Each digest carries a fingerprint of the identity its sender holds, so a
/// peer that holds the same identity gets only the member's changing state (heartbeat,
/// status, settled), and the whole row, with its 64 tokens, goes only to a peer that holds
/// another identity or none. (Not the generation alone: a node that lost its data dir
/// starts again at generation 1, perhaps on new ports or with other tokens, while the
/// cluster may remember an earlier generation 1 of it.) At 500 nodes a round is some 10 KB a
/// node instead of two 527 KB tables (README, "As the cluster grows").

/// What a node holds of a member: its version, and which identity (0: none).
public struct MemberDigest: Hashable, Sendable {
    public var name: NodeName
    public var generation: UInt64
    public var heartbeat: UInt64
    /// `Member.fingerprint` of the row held (0: the sender holds no row of the member).
    public var identity: UInt64

    public init(name: NodeName, generation: UInt64, heartbeat: UInt64, identity: UInt64) {
        self.name = name
        self.generation = generation
        self.heartbeat = heartbeat
        self.identity = identity
    }

    /// The digest of a node that does not know the member at all.
    static func unknown(_ name: NodeName) -> MemberDigest {
        MemberDigest(name: name, generation: 0, heartbeat: 0, identity: 0)
    }
}

/// The part of a member's row that changes while its identity stays.
public struct MemberState: Hashable, Sendable {
    public var name: NodeName
    public var generation: UInt64
    public var heartbeat: UInt64
    public var status: MemberStatus
    public var settled: Bool
    /// The identity this state belongs to (`Member.fingerprint`).
    public var identity: UInt64

    public init(
        name: NodeName, generation: UInt64, heartbeat: UInt64, status: MemberStatus, settled: Bool, identity: UInt64
    ) {
        self.name = name
        self.generation = generation
        self.heartbeat = heartbeat
        self.status = status
        self.settled = settled
        self.identity = identity
    }

    init(_ member: Member, identity: UInt64) {
        self.init(
            name: member.name, generation: member.generation, heartbeat: member.heartbeat, status: member.status,
            settled: member.settled, identity: identity)
    }
}

/// A row in a digest exchange: whole for a peer that lacks the member's generation, its
/// state only for one that holds it.
public enum GossipRow: Hashable, Sendable {
    case full(Member)
    case state(MemberState)

    public var name: NodeName {
        switch self {
        case .full(let member): member.name
        case .state(let state): state.name
        }
    }
}

extension Member {
    /// A 64-bit FNV-1a hash of the identity (`sameIdentity`'s fields), never 0: what a
    /// digest says of the row its sender holds.
    public var fingerprint: UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: some Sequence<UInt8>) {
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
        func mix(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { mix($0) } }
        for text in [name, peerAddress, httpAddress] {
            mix(UInt64(text.utf8.count))
            mix(text.utf8)
        }
        mix(UInt64(tokens.count))
        for token in tokens { mix(token.bytes) }
        mix(generation)
        mix(UInt64(admission.count))
        mix(admission)
        return hash == 0 ? 1 : hash
    }

    var digest: MemberDigest {
        MemberDigest(name: name, generation: generation, heartbeat: heartbeat, identity: fingerprint)
    }

    func isNewer(than digest: MemberDigest) -> Bool {
        (generation, heartbeat) > (digest.generation, digest.heartbeat)
    }

    /// This row as sent to a node whose version of it is `digest`: its state only if that
    /// node holds this very identity.
    func row(for digest: MemberDigest) -> GossipRow {
        let identity = fingerprint
        return digest.identity == identity ? .state(MemberState(self, identity: identity)) : .full(self)
    }
}

public enum GossipDigest {
    /// The SYN of a round: the version of every row of `table`.
    public static func digests(of table: [Member]) -> [MemberDigest] { table.map(\.digest) }

    /// The ACK to a SYN: the rows of `table` newer than the sender's (or unknown to it),
    /// and the versions of the rows the sender holds newer (or this node lacks).
    public static func answer(to digests: [MemberDigest], from table: [Member]) -> (
        rows: [GossipRow], wanted: [MemberDigest]
    ) {
        // (A hostile SYN may name a member twice: the highest version counts.)
        var theirs: [NodeName: MemberDigest] = [:]
        for digest in digests {
            if let known = theirs[digest.name], (known.generation, known.heartbeat) >= (digest.generation, digest.heartbeat) {
                continue
            }
            theirs[digest.name] = digest
        }
        var rows: [GossipRow] = []
        var wanted: [MemberDigest] = []
        var mine: Set<NodeName> = []
        for member in table {
            mine.insert(member.name)
            let their = theirs[member.name] ?? .unknown(member.name)
            if member.isNewer(than: their) {
                rows.append(member.row(for: their))
            } else if (their.generation, their.heartbeat) > (member.generation, member.heartbeat) {
                wanted.append(member.digest)
            }
        }
        for digest in theirs.values.sorted(by: { $0.name < $1.name }) where !mine.contains(digest.name) {
            wanted.append(.unknown(digest.name))
        }
        return (rows, wanted)
    }

    /// The ACK2: the rows of `table` the peer asked for, where they are newer than its own.
    public static func rows(_ wanted: [MemberDigest], from table: [Member]) -> [GossipRow] {
        let byName = Dictionary(table.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var sent: Set<NodeName> = []
        return wanted.compactMap { digest in
            guard let member = byName[digest.name], member.isNewer(than: digest), sent.insert(digest.name).inserted
            else { return nil }
            return member.row(for: digest)
        }
    }
}

extension Membership {
    /// Whole rows for `rows`: a state row takes the identity of the row this node holds,
    /// if it is the same identity; one of an identity this node does not hold tells it
    /// nothing (the sender's view was out of date, or the row is forged) and is left out:
    /// the next exchange sends that row whole.
    public func resolve(_ rows: [GossipRow]) -> [Member] {
        rows.compactMap { row in
            switch row {
            case .full(let member): return member
            case .state(let state):
                guard var member = members[state.name], member.generation == state.generation,
                    member.fingerprint == state.identity
                else { return nil }
                member.heartbeat = state.heartbeat
                member.status = state.status
                member.settled = state.settled
                return member
            }
        }
    }
}
