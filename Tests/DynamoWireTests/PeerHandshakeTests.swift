import DynamoCore
import Testing

@testable import DynamoWire

/// The handshake machines of both sides, run against each other with no network.
@Suite struct PeerHandshakeTests {
    static let secret = try! ClusterKey(text: "correct horse battery staple")
    static let other = try! ClusterKey(text: "some other cluster's secret")

    /// Runs a dialer and a listener to the end; returns whom each side established with.
    static func run(dialer: inout PeerHandshake, listener: inout PeerHandshake) -> (NodeName?, NodeName?) {
        var toListener = [dialer.opening()]
        var toDialer: [PeerMessage] = []
        var rounds = 0
        while (!toListener.isEmpty || !toDialer.isEmpty) && rounds < 10 {
            rounds += 1
            for message in toListener {
                for case .send(let reply) in listener.receive(message) { toDialer.append(reply) }
            }
            toListener = []
            for message in toDialer {
                for case .send(let reply) in dialer.receive(message) { toListener.append(reply) }
            }
            toDialer = []
        }
        return (dialer.peer, listener.peer)
    }

    static func nonce(_ byte: UInt8) -> [UInt8] { [UInt8](repeating: byte, count: Hello.nonceBytes) }

    @Test(arguments: [true, false])
    func bothSidesWithTheSameSecretOrNeitherEstablish(withSecret: Bool) {
        let key = withSecret ? Self.secret : nil
        var dialer = PeerHandshake(role: .dialer, me: "n1", key: key, nonce: Self.nonce(1))
        var listener = PeerHandshake(role: .listener, me: "n2", key: key, nonce: Self.nonce(2))
        let (dialed, accepted) = Self.run(dialer: &dialer, listener: &listener)
        #expect(dialed == "n2")
        #expect(accepted == "n1")
    }

    @Test(arguments: [(true, false), (false, true), (true, true)])
    func aMissingOrDifferentSecretOnEitherSideFails(dialerHasSecret: Bool, listenerHasSecret: Bool) {
        let listenerKey = listenerHasSecret ? Self.secret : nil
        let dialerKey = dialerHasSecret ? (listenerHasSecret ? Self.other : Self.secret) : nil
        var dialer = PeerHandshake(role: .dialer, me: "n1", key: dialerKey, nonce: Self.nonce(1))
        var listener = PeerHandshake(role: .listener, me: "n2", key: listenerKey, nonce: Self.nonce(2))
        let (dialed, accepted) = Self.run(dialer: &dialer, listener: &listener)
        #expect(accepted == nil)
        #expect(dialed == nil || !listenerHasSecret)
    }

    @Test func aDialerRefusesAnotherNodeAnsweringAtTheAddressItDialed() {
        // A relay at n3's address passes on n2's answer: n2 proves itself, but is not n3.
        var dialer = PeerHandshake(role: .dialer, me: "n1", key: Self.secret, nonce: Self.nonce(1), expectedPeer: "n3")
        var listener = PeerHandshake(role: .listener, me: "n2", key: Self.secret, nonce: Self.nonce(2))
        let (dialed, accepted) = Self.run(dialer: &dialer, listener: &listener)
        #expect(dialed == nil)
        #expect(accepted == nil)
    }

    @Test func bothSidesDeriveTheSameSessionAndItRefusesChangedOrReplayedFrames() {
        var dialer = PeerHandshake(role: .dialer, me: "n1", key: Self.secret, nonce: Self.nonce(1))
        var listener = PeerHandshake(role: .listener, me: "n2", key: Self.secret, nonce: Self.nonce(2))
        var dialerSession: FrameAuthenticator?
        var listenerSession: FrameAuthenticator?
        guard case .send(let hello)? = listener.receive(dialer.opening()).first else { return }
        for step in dialer.receive(hello) {
            if case .established(_, let session) = step { dialerSession = session }
            if case .send(let proof) = step {
                for case .established(_, let session) in listener.receive(proof) { listenerSession = session }
            }
        }
        guard var sender = dialerSession, var receiver = listenerSession else {
            Issue.record("no session")
            return
        }
        let first = sender.tag(sending: [1, 2, 3])
        let second = sender.tag(sending: [4])
        let firstPasses = receiver.verify(received: [1, 2, 3], tag: first)
        let changedPasses = receiver.verify(received: [4, 4], tag: second)
        #expect(firstPasses)
        #expect(!changedPasses, "a changed frame")
        var replay = listenerSession!
        let once = replay.verify(received: [1, 2, 3], tag: first)
        let twice = replay.verify(received: [1, 2, 3], tag: first)
        #expect(once && !twice, "the same frame twice")
        // Each direction has its own key: a frame cannot be reflected back to its sender.
        var back = dialerSession!
        let reflected = back.verify(received: [1, 2, 3], tag: first)
        #expect(!reflected)
    }

    @Test func aProofMadeForAnotherNameIsRefused() {
        var listener = PeerHandshake(role: .listener, me: "n2", key: Self.secret, nonce: Self.nonce(2))
        let steps = listener.receive(.hello(Hello(name: "n3", nonce: Self.nonce(1))))
        guard case .send(.hello(let hello))? = steps.first else {
            Issue.record("no hello back")
            return
        }
        // A holder of the secret proves "mallory" but claimed "n3".
        let proof = Self.secret.handshakeProof(
            role: .dialer, me: "mallory", peer: "n2", myNonce: Self.nonce(1), peerNonce: hello.nonce)
        guard case .fail(let reason)? = listener.receive(.proof(proof)).first else {
            Issue.record("forged name accepted")
            return
        }
        #expect(reason.contains("forged name"))
        #expect(listener.peer == nil)
    }

    @Test func aListenersProofCannotBeReflectedBackAsTheDialers() {
        var listener = PeerHandshake(role: .listener, me: "n2", key: Self.secret, nonce: Self.nonce(2))
        guard case .send(.hello(let hello))? = listener.receive(.hello(Hello(name: "n1", nonce: Self.nonce(1)))).first
        else { return }
        guard case .fail(let reason)? = listener.receive(.proof(hello.proof)).first else {
            Issue.record("a reflected proof was accepted")
            return
        }
        #expect(reason.contains("did not prove"))
    }

    @Test func oldVersionsOwnNameBadNoncesAndRequestsFirstAreRefused() {
        let bad: [PeerMessage] = [
            .hello(Hello(name: "n1", protocolVersion: 2, nonce: Self.nonce(1))),
            .hello(Hello(name: "n2", nonce: Self.nonce(1))),
            .hello(Hello(name: "n1", nonce: [1, 2, 3])),
            .hello(Hello(name: "", nonce: Self.nonce(1))),
            .request(id: 1, .replica(.get(key: [1]))),
            .proof([]),
        ]
        for message in bad {
            var listener = PeerHandshake(role: .listener, me: "n2", key: nil, nonce: Self.nonce(2))
            guard case .fail? = listener.receive(message).first else {
                Issue.record("accepted \(message)")
                continue
            }
        }
    }
}

@Suite struct MemberAdmissionTests {
    static func member(_ name: NodeName, generation: UInt64 = 1) -> Member {
        Member(
            name: name, peerAddress: "127.0.0.1:1", httpAddress: "127.0.0.1:2",
            tokens: Token.defaultPositions(for: name, count: 2), status: .up, generation: generation)
    }

    @Test func onlySignedRowsJoinAndARestartedMemberResigns() {
        let key = PeerHandshakeTests.secret
        var a = Membership(me: Self.member("a"), seeds: [], key: key)
        let b = Membership(me: Self.member("b"), seeds: [], key: key)
        #expect(key.admits(b.local))
        // Unsigned, wrongly signed and re-addressed rows are refused.
        var forged = Self.member("evil")
        forged.admission = PeerHandshakeTests.other.admission(of: forged)
        var moved = b.local
        moved.peerAddress = "10.9.9.9:1"
        moved.heartbeat += 1
        let actions = a.receive([Self.member("c"), forged, b.local, moved], now: 1)
        #expect(actions.contains(.refused("c")) && actions.contains(.refused("evil")))
        #expect(Set(a.members.keys) == ["a", "b"])
        #expect(a.member("b")?.peerAddress == "127.0.0.1:1")
        // A node that lost its disk takes a generation above its echo and signs it again.
        var fresh = Membership(me: Self.member("b"), seeds: [], key: key)
        var echo = b.local
        echo.generation = 7
        echo.admission = key.admission(of: echo)
        _ = fresh.receive([echo], now: 1)
        #expect(fresh.local.generation == 8)
        #expect(key.admits(fresh.local))
    }
}
