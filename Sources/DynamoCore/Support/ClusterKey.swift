import COpenSSL

/// The cluster secret, as the key nodes prove membership with (HMAC-SHA256).
///
/// Peers prove they hold it in the handshake, bound to both nodes' names and fresh nonces
/// (`handshakeProof`), and every member row carries an admission tag made with it
/// (`admission(of:)`), so gossip cannot introduce a member that no holder of the secret
/// created. Pure computation: the simulator uses it as the runtime does.
public struct ClusterKey: Sendable, Hashable {
    private let secret: [UInt8]

    /// What seals contexts in a cluster without a secret (a development cluster on
    /// loopback): it still binds each context to its key, though anyone could forge one.
    public static let development = try! ClusterKey(text: "dynamo development cluster without a secret")

    /// Secrets shorter than this are refused: an HMAC key is only as strong as its secret.
    public static let minimumSecretBytes = 16

    /// Longer ones are refused (a secret file that is really something else, say).
    public static let maximumSecretBytes = 4096

    public init(secret: [UInt8]) throws(ClusterKeyError) {
        guard secret.count >= Self.minimumSecretBytes else { throw .tooShort(secret.count) }
        guard secret.count <= Self.maximumSecretBytes else { throw .tooLong(secret.count) }
        self.secret = secret
    }

    /// Reads a secret from text (a file's contents or an environment variable): surrounding
    /// whitespace, such as a trailing newline, is not part of it.
    public init(text: String) throws(ClusterKeyError) {
        try self.init(secret: Array(text.trimmingWhitespace().utf8))
    }

    /// A MAC of `parts` under `label`; each part is length-prefixed, so no two different
    /// lists of parts read the same.
    public func mac(_ label: String, _ parts: [[UInt8]]) -> [UInt8] {
        HMACSHA256.mac(key: secret, Self.message(label, parts))
    }

    /// Whether `tag` is the MAC of `parts`, compared in constant time.
    public func verify(_ tag: [UInt8], _ label: String, _ parts: [[UInt8]]) -> Bool {
        Self.tagsMatch(mac(label, parts), tag)
    }

    /// Whether two tags are equal, in time that does not depend on where they differ (so a
    /// forger learns nothing from how fast a guess is refused).
    static func tagsMatch(_ expected: [UInt8], _ given: some Collection<UInt8>) -> Bool {
        expected.count == given.count && zip(expected, given).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// Whether a bearer token presented over HTTP is the secret (constant time).
    public func matches(bearer token: String) -> Bool {
        verify(mac("dynamo bearer", [Array(token.utf8)]), "dynamo bearer", [secret])
    }

    private static func message(_ label: String, _ parts: [[UInt8]]) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(string: label)
        for part in parts { writer.write(bytes: part) }
        return writer.bytes
    }

    /// What one side of a peer handshake proves: it holds the secret, it is `me`, talking
    /// to `peer`, in the exchange named by both nonces. `role` differs per direction, so a
    /// proof cannot be reflected back.
    public func handshakeProof(role: HandshakeRole, me: NodeName, peer: NodeName, myNonce: [UInt8], peerNonce: [UInt8])
        -> [UInt8]
    {
        let (label, parts) = Self.handshake(
            role: role, prover: me, verifier: peer, proverNonce: myNonce, verifierNonce: peerNonce)
        return mac(label, parts)
    }

    /// Checks `peer`'s proof, which it made as `handshakeProof` with the roles swapped.
    public func verifyHandshake(
        _ proof: [UInt8], role: HandshakeRole, from peer: NodeName, to me: NodeName, peerNonce: [UInt8],
        myNonce: [UInt8]
    ) -> Bool {
        let (label, parts) = Self.handshake(
            role: role, prover: peer, verifier: me, proverNonce: peerNonce, verifierNonce: myNonce)
        return verify(proof, label, parts)
    }

    /// What a handshake proof covers, from the prover's side.
    private static func handshake(
        role: HandshakeRole, prover: NodeName, verifier: NodeName, proverNonce: [UInt8], verifierNonce: [UInt8]
    ) -> (label: String, parts: [[UInt8]]) {
        let parts = [Array(prover.utf8), Array(verifier.utf8), proverNonce, verifierNonce]
        return ("dynamo peer handshake v3 \(role.rawValue)", parts)
    }

    /// The keys that authenticate every frame of one peer connection after its handshake,
    /// derived from the secret, both names and both nonces (so they are new per connection
    /// and differ per direction). Without them, a party that relays a handshake between
    /// two nodes could add frames of its own once it is done.
    public func session(role: HandshakeRole, me: NodeName, peer: NodeName, myNonce: [UInt8], peerNonce: [UInt8])
        -> FrameAuthenticator
    {
        let (dialer, listener) = role == .dialer ? (me, peer) : (peer, me)
        let (dialerNonce, listenerNonce) = role == .dialer ? (myNonce, peerNonce) : (peerNonce, myNonce)
        let parts = [Array(dialer.utf8), Array(listener.utf8), dialerNonce, listenerNonce]
        let toListener = mac("dynamo peer session v1 to listener", parts)
        let toDialer = mac("dynamo peer session v1 to dialer", parts)
        return role == .dialer
            ? FrameAuthenticator(sending: toListener, receiving: toDialer)
            : FrameAuthenticator(sending: toDialer, receiving: toListener)
    }

    /// The admission tag of a member row: its identity (name, addresses, tokens and
    /// generation), not what changes every round (heartbeat, status).
    public func admission(of member: Member) -> [UInt8] {
        mac("dynamo member v1", Self.identity(of: member))
    }

    public func admits(_ member: Member) -> Bool {
        verify(member.admission, "dynamo member v1", Self.identity(of: member))
    }

    private static func identity(of member: Member) -> [[UInt8]] {
        var generation = ByteWriter()
        generation.write(varint: member.generation)
        return [
            Array(member.name.utf8), Array(member.peerAddress.utf8), Array(member.httpAddress.utf8),
            member.tokens.flatMap(\.bytes), generation.bytes,
        ]
    }
}

/// Which side of a peer connection a proof comes from.
public enum HandshakeRole: String, Sendable {
    /// The node that opened the connection.
    case dialer
    /// The node that accepted it.
    case listener
}

/// Why a cluster secret cannot be used.
public enum ClusterKeyError: Error, Hashable, Sendable, CustomStringConvertible {
    case tooShort(Int)
    case tooLong(Int)

    public var description: String {
        switch self {
        case .tooShort(let count):
            "the cluster secret is \(count) bytes; it needs at least \(ClusterKey.minimumSecretBytes)"
        case .tooLong(let count):
            "the cluster secret is \(count) bytes; at most \(ClusterKey.maximumSecretBytes) are taken"
        }
    }
}

/// Tags and checks the frames of one peer connection: an HMAC-SHA256 (truncated to
/// `tagBytes`) of a per-direction sequence number and the payload, so a frame that was
/// changed, injected, replayed, dropped or reordered fails the check of the next one.
public struct FrameAuthenticator: Sendable {
    public static let tagBytes = 16
    private let sendKey: [UInt8]
    private let receiveKey: [UInt8]
    private var sent: UInt64 = 0
    private var received: UInt64 = 0

    init(sending: [UInt8], receiving: [UInt8]) {
        sendKey = sending
        receiveKey = receiving
    }

    private static func tag(_ payload: [UInt8], sequence: UInt64, key: [UInt8]) -> [UInt8] {
        let message = withUnsafeBytes(of: sequence.bigEndian, Array.init) + payload
        return Array(HMACSHA256.mac(key: key, message).prefix(tagBytes))
    }

    /// The tag of the next frame this side sends.
    public mutating func tag(sending payload: [UInt8]) -> [UInt8] {
        defer { sent &+= 1 }
        return Self.tag(payload, sequence: sent, key: sendKey)
    }

    /// Whether `tag` is right for the next frame from the peer (compared in constant time).
    public mutating func verify(received payload: [UInt8], tag: [UInt8]) -> Bool {
        let expected = Self.tag(payload, sequence: received, key: receiveKey)
        received &+= 1
        return ClusterKey.tagsMatch(expected, tag)
    }
}

/// HMAC-SHA256 (RFC 2104) from the system's libcrypto.
enum HMACSHA256 {
    static let byteCount = 32

    static func mac(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: byteCount)
        var length: UInt32 = 0
        // An empty array has no address; libcrypto wants one even for zero bytes.
        let keyBytes = key.isEmpty ? [0] : key
        let messageBytes = message.isEmpty ? [0] : message
        let done = keyBytes.withUnsafeBufferPointer { keyBuffer in
            messageBytes.withUnsafeBufferPointer { messageBuffer in
                out.withUnsafeMutableBufferPointer { outBuffer in
                    HMAC(
                        EVP_sha256(), keyBuffer.baseAddress, Int32(key.count), messageBuffer.baseAddress, message.count,
                        outBuffer.baseAddress, &length)
                }
            }
        }
        // Without a working HMAC nothing can be authenticated: never go on with a zero tag.
        guard done != nil, length == UInt32(byteCount) else { fatalError("libcrypto's HMAC-SHA256 failed") }
        return out
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        var start = scalars.startIndex
        var end = scalars.endIndex
        while start < end, scalars[start].properties.isWhitespace { start = scalars.index(after: start) }
        while end > start, scalars[scalars.index(before: end)].properties.isWhitespace {
            end = scalars.index(before: end)
        }
        return String(scalars[start..<end])
    }
}

