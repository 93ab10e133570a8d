public import DynamoCore

/// Everything nodes say to each other over the peer port.
///
/// A connection starts with a handshake (`PeerHandshake`): `hello` from each side (magic
/// bytes, protocol version, node name, a fresh nonce; the listener's also proves that it
/// holds the cluster secret), then the dialer's `proof`. After that, requests carry an id
/// that their response echoes, so one persistent connection carries many requests at once.
public enum PeerMessage: Hashable, Sendable {
    case hello(Hello)
    /// The dialer's proof that it holds the cluster secret (empty without one).
    case proof([UInt8])
    case request(id: UInt64, PeerRequest)
    case response(id: UInt64, PeerResponse)
}

public struct Hello: Hashable, Sendable {
    public static let magic: [UInt8] = Array("DYNM".utf8)
    /// 2: a coordinated write's result lists the replicas asked.
    /// 3: nonces and proofs of the cluster secret in the handshake; signed member rows.
    /// 4: digest gossip (SYN, ACK, ACK2; see `GossipDigest`) instead of whole tables.
    public static let currentVersion: UInt16 = 5
    public static let nonceBytes = 16

    public var name: NodeName
    public var protocolVersion: UInt16
    public var nonce: [UInt8]
    /// The listener's proof of the cluster secret (empty from the dialer, or without one).
    public var proof: [UInt8]

    public init(name: NodeName, protocolVersion: UInt16 = Hello.currentVersion, nonce: [UInt8] = [], proof: [UInt8] = []) {
        self.name = name
        self.protocolVersion = protocolVersion
        self.nonce = nonce
        self.proof = proof
    }
}
