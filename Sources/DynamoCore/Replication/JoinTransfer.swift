/// Join transfer, the new node's side: a node with a fresh identity (new, or refilling
/// after losing its data) waits until its view of the cluster has settled, then pulls the
/// keys of the ranges it will own from every member that is up, batch by batch. Once every
/// source answered in full and every pulled key is stored, it is `up` and enters the
/// routing ring. (Writes made meanwhile reach it through the old owners' handoff.)
///
/// Pure: `NodeMachine` carries out its steps and feeds the answers back.
public struct JoinTransfer: Sendable {
    /// Where a source's transfer stands.
    public enum Cursor: Hashable, Sendable {
        /// Nothing pulled yet.
        case start
        /// Keys up to this one were received.
        case after([UInt8])

        var key: [UInt8]? {
            if case .after(let key) = self { key } else { nil }
        }
    }

    /// One member the node pulls from.
    public struct Source: Hashable, Sendable {
        public var cursor: Cursor = .start
        public var inFlight = false
        /// Monotonic ms before which it is not asked again (after a failed pull).
        public var notBefore: UInt64 = 0
    }

    public enum Phase: Hashable, Sendable {
        /// Waiting for the cluster's view to settle (`alone since`: a node with no seeds
        /// waits up to 10 gossip intervals for a member that knows it).
        case waiting(aloneSince: UInt64?)
        /// Pulling from the sources not yet finished. `storing`: pulled keys not yet
        /// stored; `failed`: sources some of whose keys could not be stored (pulled again).
        case pulling(sources: [NodeName: Source], storing: Int, failed: Set<NodeName>)
        case done
    }

    public enum Step: Hashable, Sendable {
        /// Ask `from` for its next batch after `after` (answer: `received`).
        case pull(from: NodeName, after: [UInt8]?)
        /// Store a pulled key (answer: `stored`).
        case store(KeyedObject, from: NodeName)
        /// Every range is here: the node is up.
        case joined(keys: Int)
        case event(NodeEvent)
    }

    /// What the node knows of the cluster, for one decision.
    public struct View {
        public var now: UInt64
        /// Members other than this node that are up.
        public var upSources: [NodeName]
        public var memberCount: Int
        /// Monotonic ms of the last change of the membership.
        public var lastChange: UInt64
        public var isUp: (NodeName) -> Bool

        public init(
            now: UInt64, upSources: [NodeName], memberCount: Int, lastChange: UInt64,
            isUp: @escaping (NodeName) -> Bool
        ) {
            self.now = now
            self.upSources = upSources
            self.memberCount = memberCount
            self.lastChange = lastChange
            self.isUp = isUp
        }
    }

    public private(set) var phase: Phase = .waiting(aloneSince: nil)
    /// Copies received while joining (a key comes from each of its replicas).
    public private(set) var copiesPulled = 0
    /// The distinct keys received (what the node holds afterwards); emptied once joined.
    private var keysPulled: Set<[UInt8]> = []
    private let gossipIntervalMs: UInt64
    private let awaitPeers: Bool

    public init(gossipIntervalMs: UInt64, awaitPeers: Bool) {
        self.gossipIntervalMs = gossipIntervalMs
        self.awaitPeers = awaitPeers
    }

    /// Moves the join on: starts pulling once the view settled, asks sources that are due,
    /// and completes when nothing is left.
    public mutating func advance(_ view: View) -> [Step] {
        switch phase {
        case .done:
            return []
        case .waiting(let aloneSince):
            let t = view.now
            if awaitPeers, view.memberCount == 1 {
                let since = aloneSince ?? t
                phase = .waiting(aloneSince: since)
                if t < since + 10 * gossipIntervalMs { return [] }
            }
            guard t >= view.lastChange + 3 * gossipIntervalMs else { return [] }
            let sources = Dictionary(uniqueKeysWithValues: view.upSources.map { ($0, Source()) })
            phase = .pulling(sources: sources, storing: 0, failed: [])
            return advance(view)
        case .pulling(var sources, let storing, var failed):
            var steps: [Step] = []
            for (name, source) in sources.sorted(by: { $0.key < $1.key })
            where !source.inFlight && view.now >= source.notBefore {
                sources[name]!.inFlight = true
                steps.append(.pull(from: name, after: source.cursor.key))
            }
            if sources.isEmpty, storing == 0, !failed.isEmpty {
                // Some keys could not be stored (a full disk): pull those sources again.
                for name in failed.sorted() where view.isUp(name) {
                    sources[name] = Source(notBefore: view.now + 5 * gossipIntervalMs)
                }
                failed = []
                phase = .pulling(sources: sources, storing: storing, failed: failed)
                return steps
            }
            phase = .pulling(sources: sources, storing: storing, failed: failed)
            if sources.isEmpty, storing == 0 {
                phase = .done
                // The keys it took, not the copies: each key came from up to N replicas.
                steps += [.joined(keys: keysPulled.count), .event(.joined(keys: keysPulled.count))]
                keysPulled = []
            }
            return steps
        }
    }

    /// A source answered a pull: `entries` and where the next batch starts (nil: done);
    /// nil for both when the pull failed (asked again later, or dropped if `source` is no
    /// longer up).
    public mutating func received(
        from name: NodeName, _ batch: (entries: [KeyedObject], next: [UInt8]?)?, sourceIsUp: Bool, now: UInt64
    ) -> [Step] {
        guard case .pulling(var sources, var storing, let failed) = phase, var source = sources[name] else {
            return []
        }
        source.inFlight = false
        guard let batch else {
            // Try again a little later (or give up on a member that left meanwhile).
            if sourceIsUp {
                source.notBefore = now + gossipIntervalMs
                sources[name] = source
            } else {
                sources[name] = nil
            }
            phase = .pulling(sources: sources, storing: storing, failed: failed)
            return []
        }
        copiesPulled += batch.entries.count
        for entry in batch.entries { keysPulled.insert(entry.key) }
        storing += batch.entries.count
        if let next = batch.next {
            source.cursor = .after(next)
            sources[name] = source
        } else {
            sources[name] = nil
        }
        phase = .pulling(sources: sources, storing: storing, failed: failed)
        return batch.entries.map { .store($0, from: name) }
    }

    /// The store answered for a pulled key (`failure` set: it could not store it).
    public mutating func stored(from name: NodeName, failure: String?) -> [Step] {
        guard case .pulling(let sources, let storing, var failed) = phase else { return [] }
        var steps: [Step] = []
        if let failure, failed.insert(name).inserted {
            steps.append(.event(.pullFailed(source: name, reason: failure)))
        }
        phase = .pulling(sources: sources, storing: max(0, storing - 1), failed: failed)
        return steps
    }

    /// Rough bound on the values in one transfer batch (frames are limited to 16 MiB).
    static let transferBytes = 4 << 20

    /// The source's side: of a batch of its own keys (`entries`, scanned `scanLimit` at a
    /// time), those `requester` will be a home node of, and where the next batch starts.
    public static func transfer(
        _ entries: [KeyedObject], scanLimit: Int, for requester: Member, on ring: Ring, n: Int
    ) -> (entries: [KeyedObject], next: [UInt8]?) {
        var tokens = ring.tokens.filter { $0.owner != requester.name }
        tokens += requester.tokens.map { Token(position: $0, owner: requester.name) }
        let future = Ring(tokens: tokens)
        var selected: [KeyedObject] = []
        var bytes = 0
        for (index, entry) in entries.enumerated() {
            guard future.preferenceList(forKey: entry.key).home(n).contains(requester.name) else { continue }
            // A key an earlier build left past what a peer decodes cannot travel (the whole
            // batch would be refused, and the join would stall on it): it stays here until a
            // client resolves it (see `VersionedObject.storedVersionLimit`).
            guard entry.object.versions.count <= VersionedObject.decodeVersionLimit else { continue }
            let size = entry.key.count + entry.object.encodedByteCount
            // An object up to the frame ceiling goes alone: the batch ends before it.
            if !selected.isEmpty, bytes + size > transferBytes {
                return (selected, entries[index - 1].key)
            }
            selected.append(entry)
            bytes += size
            if bytes > transferBytes {
                let more = index + 1 < entries.count || entries.count == scanLimit
                return (selected, more ? entry.key : nil)
            }
        }
        return (selected, entries.count == scanLimit ? entries.last?.key : nil)
    }
}
