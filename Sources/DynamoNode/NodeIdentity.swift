import DynamoCore
import DynamoStorage

/// The node's persisted identity: its name, tokens and how many times it has started.
///
/// Stored in the data dir beside the data, so restarting with the same name and data dir
/// resumes the same node on the same tokens.
struct NodeIdentity: Equatable {
    var name: NodeName
    var tokens: [RingPosition]
    var generation: UInt64
    /// The node still has to pull the data of its ranges: the data dir had no identity (a
    /// new node, or a lost disk), or a join was interrupted.
    var isFresh = false
    /// Dots this node makes count from above this (`NodeMachine.dotFloor`): set once it
    /// knows it lost data, and kept for good.
    var dotFloor: UInt64 = 0

    static let metadataKey = "identity"

    /// Reads the stored identity, changes it and stores it again (nothing without one), in
    /// one store transaction: two changes made at once (a new generation and a completed
    /// join, say) never lose each other's.
    private static func modify(in store: ReplicaStore, _ change: (inout NodeIdentity) -> Void) throws {
        try store.modifyMetadata(metadataKey) { bytes throws(StorageError) in
            var identity: NodeIdentity
            do {
                identity = try decode(bytes)
            } catch {
                throw StorageError("the stored identity is unreadable: \(error)")
            }
            change(&identity)
            return identity.encoded()
        }
    }

    /// Records that the node's join is complete, and the dot floor it reached.
    static func markJoined(in store: ReplicaStore, dotFloor: UInt64) throws {
        try modify(in: store) { identity in
            identity.isFresh = false
            identity.dotFloor = max(identity.dotFloor, dotFloor)
        }
    }

    /// Records that the node left the cluster: it holds nothing any more, so started again
    /// on this data dir it joins as a new node does (pulls its ranges before it serves
    /// reads), numbering its dots above `nowMs`. (Started as a known node, it went up at
    /// once and answered reads of its ranges with "not found"; found by an attack review.)
    static func markLeft(in store: ReplicaStore, nowMs: UInt64) throws {
        try modify(in: store) { identity in
            identity.isFresh = true
            identity.dotFloor = max(identity.dotFloor, nowMs)
        }
    }

    /// Records a generation and dot floor the node took while running (see
    /// `NodeMachine.Action.identityChanged`).
    static func update(in store: ReplicaStore, generation: UInt64, dotFloor: UInt64) throws {
        try modify(in: store) { identity in
            identity.generation = max(identity.generation, generation)
            identity.dotFloor = max(identity.dotFloor, dotFloor)
        }
    }

    /// Loads the identity from the store, or creates it on first start; bumps the generation.
    /// `refill`: the store lost data, so the node pulls its ranges again as a new one does,
    /// and numbers its new dots from `nowMs` on.
    static func loadOrCreate(
        in store: ReplicaStore, name: NodeName, tokenCount: Int, refill: Bool = false, nowMs: UInt64 = 0
    ) throws -> NodeIdentity {
        var identity: NodeIdentity
        if let bytes = try store.metadata(metadataKey) {
            identity = try decode(bytes)
            guard identity.name == name else {
                throw NodeStartError(
                    "data dir belongs to node '\(identity.name)', not '\(name)' (use a different --data-dir)")
            }
            guard identity.generation < Member.maxVersion else {
                throw NodeStartError("the identity in the data dir is damaged (generation \(identity.generation))")
            }
            identity.generation += 1
            identity.isFresh = identity.isFresh || refill
        } else {
            identity = NodeIdentity(
                name: name, tokens: Token.defaultPositions(for: name, count: tokenCount), generation: 1, isFresh: true)
        }
        if refill { identity.dotFloor = max(identity.dotFloor, nowMs) }
        try store.setMetadata(metadataKey, identity.encoded())
        return identity
    }

    func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.write(1)  // format version
        w.write(string: name)
        w.write(varint: generation)
        w.write(varint: UInt64(tokens.count))
        for token in tokens { w.write(raw: token.bytes) }
        w.write(bool: isFresh)
        w.write(varint: dotFloor)
        return w.bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> NodeIdentity {
        var r = ByteReader(bytes)
        guard try r.readByte() == 1 else { throw NodeStartError("unknown identity format in data dir") }
        let name = try r.readString(max: 255)
        let generation = try r.readVarint()
        let count = try r.readInt(max: 4096)
        var tokens: [RingPosition] = []
        for _ in 0..<count { tokens.append(RingPosition(bytes: try r.readRaw(16))) }
        let joining = r.isAtEnd ? false : try r.readBool()
        let dotFloor = r.isAtEnd ? 0 : try r.readVarint()
        guard dotFloor < Dot.maxCounter else { throw NodeStartError("the identity in the data dir is damaged (dot floor \(dotFloor))") }
        return NodeIdentity(name: name, tokens: tokens, generation: generation, isFresh: joining, dotFloor: dotFloor)
    }
}

/// Why a node could not start: printed as one line, exit code 1.
public struct NodeStartError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
