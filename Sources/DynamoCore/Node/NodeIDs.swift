/// The numbers that tie an answer to what it answers, one type per kind, so the compiler
/// catches a storage token passed where a peer request id belongs.
///
/// The machine numbers what it starts (peer requests, storage operations, coordination
/// runs) from one counter; the shell numbers what comes from outside (client requests, the
/// peer requests it serves).
///
/// A literal makes any kind (tests write `handle: 1`); a value of one kind never passes
/// for another.
public struct NodeID<Kind>: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public let value: UInt64

    public init(_ value: UInt64) { self.value = value }
    public init(integerLiteral value: UInt64) { self.value = value }

    public static func < (a: Self, b: Self) -> Bool { a.value < b.value }
    public var description: String { "\(value)" }
}

public enum ClientRequestKind {}
public enum PeerHandleKind {}
public enum PeerRequestKind {}
public enum StorageTokenKind {}
public enum RunKind {}

/// A request from a client of this node's HTTP API (numbered by the shell).
public typealias ClientRequestID = NodeID<ClientRequestKind>
/// A request a peer sent this node, as the shell knows its connection.
public typealias PeerHandle = NodeID<PeerHandleKind>
/// A request this node sent a peer; its answer comes back with it.
public typealias PeerRequestID = NodeID<PeerRequestKind>
/// A storage operation the machine asked for; its result comes back with it.
public typealias StorageToken = NodeID<StorageTokenKind>
/// One get or put this node coordinates.
public typealias RunID = NodeID<RunKind>
