/// What a node asks of its local store, as data: the node state machine returns these
/// and the shell executes them (on a thread pool over RocksDB in the product, inline over
/// memory in the simulator) and feeds back a `StorageResult`.
public enum StorageOp: Hashable, Sendable {
    /// The key's versions held here: own data merged with hints held for others.
    case read(key: [UInt8])
    /// Merge versions into the key's own data (`hintFor` nil) or into a hint for another node.
    case merge(key: [UInt8], object: VersionedObject, hintFor: NodeName?, sync: Bool)
    /// Build and store a new version coordinated here (kept as a hint when `hintFor` is set),
    /// unless the key would then cross `limits` (the result is then `.refused`); its dot's
    /// counter is above `counterFloor` (see `NodeMachine.dotFloor`).
    case coordinateWrite(
        key: [UInt8], value: [UInt8]?, context: CausalHistory?, actor: ActorName, now: UInt64, hintFor: NodeName?,
        sync: Bool, counterFloor: UInt64 = 0, limits: ObjectLimits)
    /// Up to `limit` hints held for any of `targets`.
    case loadHints(limit: Int, targets: Set<NodeName>)
    /// Delete a delivered hint unless it changed since it was loaded.
    case removeHint(Hint)
    /// Forget a key whose stored object is still exactly `object` (a reaped tombstone, or
    /// data handed off to the key's home nodes).
    case forget(key: [UInt8], ifStill: VersionedObject)
    /// Up to `limit` of this node's own keys in ring order, after `after` (from the start if nil).
    case scanOwn(after: [UInt8]?, limit: Int)
    /// The tree hashes of this node's own keys with ring positions in (start, end], for
    /// building a Merkle tree; stamped with the mutation sequence at which the scan began.
    case rangeHashes(start: RingPosition, end: RingPosition)
    /// Keys of this node's own data that hold only tombstones written before `before` (wall ms).
    case findTombstones(before: UInt64, limit: Int)
}

extension StorageOp {
    /// Whether the operation may change the store (it then runs in a write batch).
    public var changesData: Bool {
        switch self {
        case .merge, .coordinateWrite, .removeHint, .forget: true
        case .read, .loadHints, .scanOwn, .rangeHashes, .findTombstones: false
        }
    }

    /// The value bytes the operation writes (what bounds a write batch).
    public var valueBytes: Int {
        switch self {
        case .merge(_, let object, _, _), .forget(_, let object): object.valueBytes
        case .coordinateWrite(_, let value, _, _, _, _, _, _, _): value?.count ?? 0
        case .removeHint(let hint): hint.object.valueBytes
        case .read, .loadHints, .scanOwn, .rangeHashes, .findTombstones: 0
        }
    }
}

public enum StorageResult: Hashable, Sendable {
    case object(VersionedObject?)
    case stored
    /// The version a coordinated write created, and the key's size with it.
    case version(Version, size: ObjectSize)
    /// Nothing stored: the key would have held too much (a coordinated write crossing the
    /// limits, or a merge past what a peer could read back).
    case refused(ObjectLimitRefusal)
    /// Hints loaded, and how many are held in all (for every target).
    case hints([Hint], total: Int)
    case removed(Bool)
    case keys([[UInt8]])
    case entries([KeyedObject])
    case keyHashes([KeyHash], seq: UInt64)
    case failed(String)
}

/// What a storage operation answered, and the tree updates of the own data changed up to
/// then (by it or by an operation running beside it), which the node applies first.
public struct StorageCompletion: Hashable, Sendable {
    public var result: StorageResult
    public var treeUpdates: [TreeUpdate]

    public init(_ result: StorageResult, treeUpdates: [TreeUpdate] = []) {
        self.result = result
        self.treeUpdates = treeUpdates
    }
}

/// A hinted replica: versions a fallback keeps for the home node that could not take them.
public struct Hint: Hashable, Sendable {
    public var target: NodeName
    public var key: [UInt8]
    public var object: VersionedObject

    public init(target: NodeName, key: [UInt8], object: VersionedObject) {
        self.target = target
        self.key = key
        self.object = object
    }
}

/// A key with its stored versions.
public struct KeyedObject: Hashable, Sendable {
    public var key: [UInt8]
    public var object: VersionedObject

    public init(key: [UInt8], object: VersionedObject) {
        self.key = key
        self.object = object
    }
}

/// A change to a key of this node's own data, for its Merkle trees: the key's new tree
/// hash (nil: gone), stamped with the store's mutation sequence so they apply in any order.
public struct TreeUpdate: Hashable, Sendable {
    public var key: [UInt8]
    public var hash: UInt64?
    public var seq: UInt64

    public init(key: [UInt8], hash: UInt64?, seq: UInt64) {
        self.key = key
        self.hash = hash
        self.seq = seq
    }
}
