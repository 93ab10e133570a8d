/// What a coordinator asks of one replica over the peer protocol.
public enum ReplicaRequest: Hashable, Sendable {
    /// Read the replica's versions of a key.
    case get(key: [UInt8])
    /// Merge `object` into the replica's versions of the key (a new write, or a repair).
    /// `hintFor` names the home node a fallback stores it for (sloppy quorum).
    case put(key: [UInt8], object: VersionedObject, hintFor: NodeName?)
    /// Forget the key if it still holds exactly `object`: a tombstone every home replica has.
    case reap(key: [UInt8], object: VersionedObject)
}

/// A replica's answer.
public enum ReplicaReply: Hashable, Sendable {
    case object(VersionedObject?)
    case stored
    /// The replica could not serve the request (storage error, overload): counts as no answer.
    case failed(String)
}
