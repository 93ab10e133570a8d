public import DynamoCore

/// Everything nodes say to each other over the peer port.
///
/// A connection starts with `hello` from each side (magic bytes, protocol version, node
/// name); after that, requests carry an id that their response echoes, so one persistent
/// connection carries many requests at once.
public enum PeerMessage: Hashable, Sendable {
    case hello(Hello)
    case request(id: UInt64, PeerRequest)
    case response(id: UInt64, PeerResponse)
}

public struct Hello: Hashable, Sendable {
    public static let magic: [UInt8] = Array("DYNM".utf8)
    /// 2: a coordinated write's result lists the replicas asked.
    public static let currentVersion: UInt16 = 2

    public var name: NodeName
    public var protocolVersion: UInt16

    public init(name: NodeName, protocolVersion: UInt16 = Hello.currentVersion) {
        self.name = name
        self.protocolVersion = protocolVersion
    }
}
