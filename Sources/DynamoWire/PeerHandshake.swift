public import DynamoCore

/// One side of the peer handshake, as a state machine without I/O.
///
/// The dialer sends `hello` with a fresh nonce. The listener answers with its own `hello`,
/// nonce, and a proof (an HMAC under the cluster secret of both names and both nonces).
/// The dialer checks it and sends its own `proof`; the listener checks that, and only then
/// does anything the dialer sends reach the node. Proofs are bound to the names, so a
/// peer cannot claim another node's name, and to fresh nonces, so one cannot be replayed.
///
/// Without a cluster secret (a development cluster on loopback), proofs are empty and
/// names are taken on trust. A side with a secret refuses a side without one, and the
/// other way round, with a reason that says so.
public struct PeerHandshake: Sendable {
    public enum Step: Sendable {
        /// Send this to the peer.
        case send(PeerMessage)
        /// The peer proved who it is: from now on its messages are the node's business.
        /// With a secret, `session` authenticates every later frame both ways.
        case established(NodeName, session: FrameAuthenticator?)
        /// Close the connection; `reason` is for the log.
        case fail(reason: String)
    }

    private enum State: Sendable {
        case awaitingHello
        /// Listener: our hello is out, waiting for the dialer's proof.
        case awaitingProof(peer: NodeName, peerNonce: [UInt8])
        case established(NodeName)
        case failed
    }

    public let role: HandshakeRole
    public let me: NodeName
    private let key: ClusterKey?
    private let nonce: [UInt8]
    /// The dialer's expectation: the member known at the address it dialed (nil: a seed
    /// not known yet, anyone who proves the secret).
    private let expectedPeer: NodeName?
    private var state: State = .awaitingHello

    /// - Parameters:
    ///   - nonce: `Hello.nonceBytes` fresh random bytes (injected, so tests replay).
    ///   - expectedPeer: for a dialer, the node that should answer at that address. Another
    ///     node that answers there (say a relay passing on its handshake) is refused.
    public init(role: HandshakeRole, me: NodeName, key: ClusterKey?, nonce: [UInt8], expectedPeer: NodeName? = nil) {
        self.role = role
        self.me = me
        self.key = key
        self.nonce = nonce
        self.expectedPeer = expectedPeer
    }

    private func session(with peer: NodeName, peerNonce: [UInt8]) -> FrameAuthenticator? {
        key?.session(role: role, me: me, peer: peer, myNonce: nonce, peerNonce: peerNonce)
    }

    /// The authenticated peer, once established.
    public var peer: NodeName? {
        if case .established(let name) = state { return name }
        return nil
    }

    /// The dialer's opening message.
    public func opening() -> PeerMessage {
        .hello(Hello(name: me, nonce: nonce))
    }

    /// A message arrived before the handshake finished.
    public mutating func receive(_ message: PeerMessage) -> [Step] {
        switch (role, state, message) {
        case (.listener, .awaitingHello, .hello(let hello)):
            if let problem = problem(with: hello) { return fail(problem) }
            let proof =
                key?.handshakeProof(role: .listener, me: me, peer: hello.name, myNonce: nonce, peerNonce: hello.nonce)
                ?? []
            state = .awaitingProof(peer: hello.name, peerNonce: hello.nonce)
            return [.send(.hello(Hello(name: me, nonce: nonce, proof: proof)))]
        case (.listener, .awaitingProof(let peer, let peerNonce), .proof(let proof)):
            guard let key else {
                guard proof.isEmpty else { return fail("'\(peer)' has a cluster secret and this node has none") }
                state = .established(peer)
                return [.established(peer, session: nil)]
            }
            guard
                key.verifyHandshake(
                    proof, role: .dialer, from: peer, to: me, peerNonce: peerNonce, myNonce: nonce)
            else {
                return fail("'\(peer)' did not prove the cluster secret for its name (wrong secret or forged name)")
            }
            state = .established(peer)
            return [.established(peer, session: session(with: peer, peerNonce: peerNonce))]
        case (.dialer, .awaitingHello, .hello(let hello)):
            if let problem = problem(with: hello) { return fail(problem) }
            if let expectedPeer, hello.name != expectedPeer {
                return fail("the node at this address is '\(hello.name)', not '\(expectedPeer)'")
            }
            guard let key else {
                guard hello.proof.isEmpty else {
                    return fail("'\(hello.name)' requires the cluster secret and this node has none")
                }
                state = .established(hello.name)
                return [.send(.proof([])), .established(hello.name, session: nil)]
            }
            guard
                key.verifyHandshake(
                    hello.proof, role: .listener, from: hello.name, to: me, peerNonce: hello.nonce, myNonce: nonce)
            else {
                return fail(
                    hello.proof.isEmpty
                        ? "'\(hello.name)' has no cluster secret"
                        : "'\(hello.name)' did not prove the cluster secret (wrong secret or forged name)")
            }
            state = .established(hello.name)
            let proof = key.handshakeProof(
                role: .dialer, me: me, peer: hello.name, myNonce: nonce, peerNonce: hello.nonce)
            return [.send(.proof(proof)), .established(hello.name, session: session(with: hello.name, peerNonce: hello.nonce))]
        case (.listener, .awaitingProof, .hello), (_, .established, .hello), (_, .established, .proof):
            return fail("a second handshake on one connection")
        case (_, .failed, _):
            return []
        default:
            return fail("the peer did not start with the handshake")
        }
    }

    private func problem(with hello: Hello) -> String? {
        guard hello.protocolVersion == Hello.currentVersion else {
            return "'\(hello.name)' speaks peer protocol \(hello.protocolVersion), this node \(Hello.currentVersion)"
        }
        guard !hello.name.isEmpty, hello.name != me else { return "the peer claims the name '\(hello.name)'" }
        guard hello.nonce.count == Hello.nonceBytes else { return "the peer's nonce is malformed" }
        return nil
    }

    private mutating func fail(_ reason: String) -> [Step] {
        state = .failed
        return [.fail(reason: reason)]
    }
}
