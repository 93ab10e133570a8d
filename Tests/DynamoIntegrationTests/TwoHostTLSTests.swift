import DynamoClient
import DynamoCore
import DynamoLauncher
import Foundation
import Testing

/// The README's set-up for a cluster across machines, on two loopback addresses: each node
/// listens on its own address, advertises it, proves the cluster secret and speaks TLS on
/// both ports with certificates from `scripts/make-cluster-certs.sh`.
@Suite(.serialized) struct TwoHostTLSTests {
    struct Host {
        var name: String
        var address: String
        var peerPort: Int
        var httpPort: Int
        var peer: String { "\(address):\(peerPort)" }
        var http: String { "\(address):\(httpPort)" }
    }

    static func run(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        try waitForExit(process)
        guard process.terminationStatus == 0 else { throw LauncherError("\(executable) failed") }
    }

    static var repository: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    @Test(.timeLimit(.minutes(3))) func twoNodesOnTwoAddressesWithTLSAndASecretFormACluster() async throws {
        guard let binary = LocalCluster.siblingBinary() else { throw LauncherError("dynamo-node not built") }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("dynamo-tls-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let ports = try LocalCluster.freePorts(4)
        let hosts = [
            Host(name: "n1", address: "127.0.0.1", peerPort: ports[0], httpPort: ports[1]),
            Host(name: "n2", address: "127.0.0.2", peerPort: ports[2], httpPort: ports[3]),
        ]
        try Self.run(
            "/bin/bash",
            ["\(Self.repository)/scripts/make-cluster-certs.sh", "\(root)/certs"] + hosts.map { "\($0.name)=\($0.address)" })
        let secret = "a secret shared by this cluster only"
        try Data(secret.utf8).write(to: URL(fileURLWithPath: "\(root)/secret"))

        var processes: [Process] = []
        defer {
            for process in processes where process.isRunning { process.terminate() }
            for process in processes { try? waitForExit(process, timeout: .seconds(20)) }
        }
        for host in hosts {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = [
                "--name", host.name, "--listen", host.address, "--advertise", host.address,
                "--peer-port", "\(host.peerPort)", "--http-port", "\(host.httpPort)", "--data-dir", "\(root)/\(host.name)",
                "--cluster-secret-file", "\(root)/secret", "--tls-cert", "\(root)/certs/\(host.name).pem",
                "--tls-key", "\(root)/certs/\(host.name).key", "--tls-ca", "\(root)/certs/ca.pem",
                "--n", "2", "--r", "2", "--w", "2", "--gossip-interval-ms", "100",
            ] + (host.name == "n1" ? [] : ["--seeds", hosts[0].peer])
            var environment = ProcessInfo.processInfo.environment
            environment["DYNAMO_EXIT_WITH_PARENT"] = "1"
            environment["DYNAMO_CLUSTER_SECRET"] = nil
            process.environment = environment
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
            processes.append(process)
        }

        let https = try HTTPClient(trusting: "\(root)/certs/ca.pem")
        let clients = hosts.map { DynamoClient(address: $0.http, http: https, bearer: secret) }
        try await waitFor("both nodes to see each other up over TLS", timeout: .seconds(20)) {
            for client in clients {
                guard let status = try? await client.status(timeout: .seconds(2)),
                    Set(status.members.filter { $0.status == "up" }.map(\.name)) == ["n1", "n2"]
                else { return false }
            }
            return true
        }
        let status = try await clients[1].status()
        #expect(status.members.first { $0.name == "n2" }?.peerAddress == hosts[1].peer)

        // W=2 and R=2: the write and the read need both nodes, so the peers really talk.
        let put = try await clients[0].put("cart:ann".bytes, value: "book".bytes)
        #expect(put.succeeded, "\(put.error ?? "")")
        #expect(try await clients[1].get("cart:ann".bytes).values == ["book".bytes])
        #expect(try await clients[1].raw(.POST, "/admin/faults", body: #"{"drop":[]}"#.bytes).status == 200)

        // Plain HTTP to the HTTPS port gets no answer; a plain TCP peer gets no handshake.
        let plain = DynamoClient(address: hosts[0].http, http: HTTPClient(), bearer: nil)
        #expect((try? await plain.status(timeout: .seconds(2))) == nil)
        let stranger = try PeerSocket(port: hosts[0].peerPort, host: hosts[0].address)
        #expect(stranger.handshake(as: "n9", key: nil) == nil)
    }
}
