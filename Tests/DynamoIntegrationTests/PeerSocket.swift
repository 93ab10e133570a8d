import DynamoCore
import DynamoLauncher
import DynamoWire
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A raw, blocking connection to a node's peer port, speaking the frame format by hand: what
/// an attacker (or a buggy peer) would write, byte for byte. Also used raw on the HTTP port.
final class PeerSocket {
    private let fd: Int32
    private var buffer: [UInt8] = []
    /// After a handshake with a secret, frames are tagged both ways (as a node does).
    private var session: FrameAuthenticator?

    init(port: Int, host: String = "127.0.0.1", timeoutMs: Int = 2000, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LauncherError("socket failed") }
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr(host)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            throw LauncherError("connect to \(host):\(port) failed")
        }
        var timeout = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Wraps an accepted connection.
    init(accepted fd: Int32, timeoutMs: Int = 2000) {
        self.fd = fd
        var timeout = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Listens on `port` and returns the first connection made to it within `timeoutMs`.
    static func acceptOne(port: Int, timeoutMs: Int32) throws -> PeerSocket? {
        let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard server >= 0 else { throw LauncherError("socket failed") }
        defer { close(server) }
        var one: Int32 = 1
        setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(server, 8) == 0 else { throw LauncherError("cannot listen on \(port)") }
        var poller = pollfd(fd: server, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, timeoutMs) == 1 else { return nil }
        let fd = accept(server, nil, nil)
        return fd >= 0 ? PeerSocket(accepted: fd) : nil
    }

    deinit { close(fd) }

    /// Sends raw bytes; false once the node closed the connection.
    @discardableResult
    func send(raw bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// Sends one frame holding `payload`.
    @discardableResult
    func send(payload: [UInt8]) -> Bool {
        send(raw: withUnsafeBytes(of: UInt32(payload.count).bigEndian, Array.init) + payload)
    }

    @discardableResult
    func send(_ message: PeerMessage) -> Bool {
        let payload = PeerCodec.encode(message)
        guard let tag = session?.tag(sending: payload) else { return send(payload: payload) }
        return send(payload: payload + tag)
    }

    /// The next message, or nil when the node closed the connection (or said nothing in time).
    func receive() -> PeerMessage? {
        while true {
            if buffer.count >= 4 {
                let length = Int(buffer[0]) << 24 | Int(buffer[1]) << 16 | Int(buffer[2]) << 8 | Int(buffer[3])
                if buffer.count >= 4 + length {
                    var payload = Array(buffer[4..<(4 + length)])
                    buffer.removeFirst(4 + length)
                    if session != nil {
                        let tag = Array(payload.suffix(FrameAuthenticator.tagBytes))
                        payload.removeLast(FrameAuthenticator.tagBytes)
                        guard session!.verify(received: payload, tag: tag) else { return nil }
                    }
                    return try? PeerCodec.decode(payload)
                }
            }
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let n = recv(fd, &chunk, chunk.count, 0)
            guard n > 0 else { return nil }
            buffer += chunk[0..<n]
        }
    }

    /// One HTTP answer (its head and the body its Content-Length gives), or what came
    /// before the connection closed or went quiet ("" for nothing): for requests sent raw
    /// on the HTTP port at a chosen moment.
    func receiveHTTPAnswer() -> String {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let end = buffer.firstRange(of: Array("\r\n\r\n".utf8)) {
                let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self).lowercased()
                let length =
                    head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                if buffer.count - end.upperBound >= length {
                    let answer = String(decoding: buffer[..<(end.upperBound + length)], as: UTF8.self)
                    buffer.removeFirst(end.upperBound + length)
                    return answer
                }
            }
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 {
                defer { buffer = [] }
                return String(decoding: buffer, as: UTF8.self)
            }
            buffer += chunk[0..<n]
        }
    }

    /// Everything the node sends until it closes the connection (or goes quiet).
    func readAll() -> [UInt8] {
        var received = buffer
        buffer = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { return received }
            received += chunk[0..<n]
        }
    }

    /// Whether the node closed the connection (reads end without data).
    func isClosedByPeer() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n == 0 { return true }
            if n < 0 { return false }  // timed out: still open
        }
    }

    /// Runs the dialer's side of the handshake as `name`. `proofName` is the name the proof
    /// is made for (a forger claims one name and can only prove another); `key` nil sends
    /// no proof. Returns whether the node answered a request afterwards.
    func handshake(as name: NodeName, key: ClusterKey?, proofName: NodeName? = nil) -> PeerMessage? {
        let nonce = [UInt8](repeating: 9, count: Hello.nonceBytes)
        send(.hello(Hello(name: name, nonce: nonce)))
        guard case .hello(let hello)? = receive() else { return nil }
        let proof =
            key?.handshakeProof(
                role: .dialer, me: proofName ?? name, peer: hello.name, myNonce: nonce, peerNonce: hello.nonce) ?? []
        send(.proof(proof))
        session = key?.session(
            role: .dialer, me: proofName ?? name, peer: hello.name, myNonce: nonce, peerNonce: hello.nonce)
        return .hello(hello)
    }
}
