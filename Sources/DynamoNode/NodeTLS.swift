import DynamoAPI
import DynamoCore
import NIOCore
import NIOSSL

/// TLS for both ports (`--tls-cert`, `--tls-key`, `--tls-ca`).
///
/// The peer port is mutual TLS: a node presents its certificate and accepts only peers
/// whose certificates the cluster's CA signed, dialing checks the listener's certificate
/// against the peer address (its IP or name must be in the certificate). The HTTP port
/// serves HTTPS with the same certificate; clients are not asked for one (they prove
/// nothing there; admin changes need the cluster secret as a bearer token). The cluster
/// secret handshake still runs inside TLS: TLS hides and protects the bytes, the secret
/// says who belongs.
public struct NodeTLS: Sendable {
    public var certificateFile: String
    public var privateKeyFile: String
    public var caFile: String

    public init(certificateFile: String, privateKeyFile: String, caFile: String) {
        self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile
        self.caFile = caFile
    }

    /// The three contexts a node needs, loaded once at start (a bad file stops the node
    /// with the reason).
    struct Contexts: Sendable {
        let peerServer: NIOSSLContext
        let peerClient: NIOSSLContext
        let http: NIOSSLContext
    }

    func contexts() throws -> Contexts {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { NIOSSLCertificateSource.certificate($0) }
            let key = NIOSSLPrivateKeySource.privateKey(try NIOSSLPrivateKey(file: privateKeyFile, format: .pem))
            let roots = NIOSSLTrustRoots.file(caFile)
            var peerServer = TLSConfiguration.makeServerConfigurationWithMTLS(
                certificateChain: chain, privateKey: key, trustRoots: roots)
            peerServer.minimumTLSVersion = .tlsv12
            var peerClient = TLSConfiguration.makeClientConfiguration()
            peerClient.certificateChain = chain
            peerClient.privateKey = key
            peerClient.trustRoots = roots
            peerClient.certificateVerification = .fullVerification
            peerClient.minimumTLSVersion = .tlsv12
            var http = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
            http.minimumTLSVersion = .tlsv12
            return Contexts(
                peerServer: try NIOSSLContext(configuration: peerServer),
                peerClient: try NIOSSLContext(configuration: peerClient),
                http: try NIOSSLContext(configuration: http))
        } catch {
            throw NodeStartError(
                "cannot use the TLS files (--tls-cert \(certificateFile), --tls-key \(privateKeyFile), --tls-ca \(caFile)): \(error)"
            )
        }
    }

    /// The name to check a dialed peer's certificate against: nil for an IP address (the
    /// connected address is checked against the certificate's IP entries instead).
    static func serverHostname(_ host: String) -> String? {
        HostAddress.isIPLiteral(host) ? nil : host
    }
}
