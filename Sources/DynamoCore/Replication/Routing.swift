/// Where a key's requests go, judged on one view of the ring and of who is reachable: the
/// first N healthy nodes of the key's preference list (home nodes first, then fallbacks
/// that keep a hint), the nodes a read also asks while ranges move, and who takes a write
/// or a hint that its first choice cannot.
///
/// A value the node builds for the moment it decides; pure, with no state of its own.
public struct Routing {
    public var me: NodeName
    public var n: Int
    /// Without it a fallback's copy could never reach its home node, so the quorum is
    /// strict: healthy home nodes only.
    public var sloppyQuorum: Bool
    /// The ring of up members, on which writes are routed.
    public let routingRing: Ring
    /// The ring counting joining and leaving members too.
    public var ring: Ring
    public var isReachable: (NodeName) -> Bool
    /// The last key's preference list on the routing ring: one decision asks for it
    /// several times (replicas, the coordinator's own, fallbacks), each an MD5 and a walk.
    private let lastPreference = PreferenceMemo()

    public init(
        me: NodeName, n: Int, sloppyQuorum: Bool, routingRing: Ring, ring: Ring,
        isReachable: @escaping (NodeName) -> Bool
    ) {
        self.me = me
        self.n = n
        self.sloppyQuorum = sloppyQuorum
        self.routingRing = routingRing
        self.ring = ring
        self.isReachable = isReachable
    }

    /// The key's preference list on the routing ring.
    private func preference(forKey key: [UInt8]) -> PreferenceList {
        if let last = lastPreference.entry, last.key == key { return last.list }
        let list = routingRing.preferenceList(forKey: key)
        lastPreference.entry = (key, list)
        return list
    }

    /// The first N healthy nodes of the key's preference list on the routing ring, each
    /// fallback with the home node it stands in for.
    public func replicas(forKey key: [UInt8]) -> [HintedReplica] {
        let sloppy = preference(forKey: key).sloppyReplicas(n: n, isHealthy: isReachable)
        return sloppyQuorum ? sloppy : sloppy.filter { $0.hintFor == nil }
    }

    /// Reads also ask the key's home nodes counting joining and leaving members, so while
    /// ranges move, the data is found on its old and its new owners alike.
    public func readReplicas(forKey key: [UInt8]) -> [HintedReplica] {
        var replicas = replicas(forKey: key)
        for node in ring.preferenceList(forKey: key).home(n)
        where isReachable(node) && !replicas.contains(where: { $0.node == node }) {
            replicas.append(HintedReplica(node: node, hintFor: nil))
        }
        return replicas
    }

    /// Whether a client's write is coordinated here (this node is among the key's first N
    /// healthy nodes, or nobody is) or forwarded to those nodes, in order.
    public func coordinatesHere(_ replicas: [HintedReplica]) -> Bool {
        replicas.isEmpty || replicas.contains { $0.node == me }
    }

    /// The replicas of a write this node coordinates. When it is neither home nor fallback
    /// in its own view (it was forwarded the write), it holds the version as a hint for the
    /// first home node the write cannot reach directly.
    public func coordinatorReplicas(forKey key: [UInt8]) -> [HintedReplica] {
        var replicas = replicas(forKey: key)
        if !replicas.contains(where: { $0.node == me }) {
            let home = preference(forKey: key).home(n)
            let standIn =
                home.contains(me) ? nil : home.first { h in !replicas.contains { $0.node == h } } ?? home.first
            replicas.insert(HintedReplica(node: me, hintFor: standIn), at: 0)
        }
        return replicas
    }

    /// The key's extended preference list, in order, without this node, the `excluded`
    /// ones and those it cannot reach: where a write or hint can go instead.
    public func reachablePreference(forKey key: [UInt8], excluding excluded: Set<NodeName>) -> [NodeName] {
        preference(forKey: key).nodes.filter { node in
            node != me && !excluded.contains(node) && isReachable(node)
        }
    }

    /// Who takes a hint its target cannot: a reachable node of the key's preference list
    /// (not this one, not the target), home nodes first, and among those first one that made
    /// none of its versions. A version's coordinator already holds it: handing the hint there
    /// would leave one copy of a write that was acknowledged with two. (Found by the
    /// simulator: such a copy was then lost with a log tail.)
    public func standIn(for hint: Hint) -> NodeName? {
        let candidates = reachablePreference(forKey: hint.key, excluding: [hint.target])
        let home = Set(preference(forKey: hint.key).home(n))
        let makers = Set(hint.object.versions.map(\.dot.actor))
        return candidates.first { home.contains($0) && !makers.contains($0) } ?? candidates.first
    }

    /// Who coordinates a write this node could not store (a full disk): the write's other
    /// replicas, then (sloppy quorum) the rest of the preference list, since with several
    /// disks full a healthy fallback can still take it.
    public func others(of replicas: [HintedReplica], forKey key: [UInt8]) -> [NodeName] {
        var others = replicas.map(\.node).filter { $0 != me }
        if sloppyQuorum { others += reachablePreference(forKey: key, excluding: Set(others)) }
        return others
    }
}

/// One remembered preference list (a `Routing` value lives for one decision).
private final class PreferenceMemo {
    var entry: (key: [UInt8], list: PreferenceList)?
}
