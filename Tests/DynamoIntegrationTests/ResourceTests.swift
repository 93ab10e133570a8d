import DynamoClient
import DynamoCore
import DynamoLauncher
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// What one client can make a node hold (issue 9): memory, connections, time.
@Suite(.serialized) struct ResourceTests {
    /// Short timeouts and a small connection cap, so the bounds show within a test.
    static func tight(_ options: inout LocalCluster.Options) {
        options.n = 1
        options.r = 1
        options.w = 1
        options.extraArguments = [
            "--idle-timeout-ms", "1500", "--request-read-timeout-ms", "1000", "--max-connections", "20",
        ]
    }

    static func residentMB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }

    /// A raw HTTP connection (the client library would read its responses).
    static func connection(_ cluster: LocalCluster, receiveBuffer: Int32? = nil) throws -> PeerSocket {
        try PeerSocket(port: cluster.spec("n1")!.httpPort, timeoutMs: 4000, receiveBuffer: receiveBuffer)
    }

    @Test(.timeLimit(.minutes(3))) func aClientThatNeverReadsCannotGrowTheNode() async throws {
        try await withCluster(nodes: 1, configure: Self.tight) { cluster in
            let value = [UInt8](repeating: 0x61, count: 1 << 20)
            #expect(try await cluster.client("n1").put("big".bytes, value: value).succeeded)
            let pid = try #require(cluster.processID("n1"))
            let before = Self.residentMB(pid)
            // 400 pipelined GETs of a 1 MiB value (400 MiB of answers), none of them read.
            let greedy = try Self.connection(cluster, receiveBuffer: 4096)
            let requests = String(repeating: "GET /kv/big HTTP/1.1\r\nHost: n1\r\n\r\n", count: 400)
            greedy.send(raw: requests.bytes)
            var peak = before
            let deadline = ContinuousClock.now + .seconds(3)
            while ContinuousClock.now < deadline {
                peak = max(peak, Self.residentMB(pid))
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(peak - before < 64, "grew from \(before) MB to \(peak) MB")
            // Meanwhile everyone else is served, and the stalled client is dropped in time.
            #expect(try await cluster.client("n1").get("big".bytes).status == 200)
            try await waitFor("the stalled client to be closed", timeout: .seconds(10)) { greedy.isClosedByPeer() }
        }
    }

    @Test(.timeLimit(.minutes(3))) func slowAndIncompleteRequestsAreCutOff() async throws {
        try await withCluster(nodes: 1, configure: Self.tight) { cluster in
            // Slowloris: a header byte every 300 ms never completes a request.
            let slow = try Self.connection(cluster)
            let started = ContinuousClock.now
            var closed = false
            for byte in "GET /kv/x HTTP/1.1\r\nX-Slow: ".bytes + [UInt8](repeating: 0x61, count: 60) {
                if !slow.send(raw: [byte]) {
                    closed = true
                    break
                }
                try await Task.sleep(for: .milliseconds(300))
                if ContinuousClock.now - started > .seconds(6) { break }
            }
            #expect(closed || slow.isClosedByPeer())
            #expect(ContinuousClock.now - started < .seconds(6))
            // A Content-Length larger than the body: 408, then closed.
            let short = try Self.connection(cluster)
            short.send(raw: "PUT /kv/x HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc".bytes)
            let answer = String(decoding: short.readAll(), as: UTF8.self)
            #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer)")
            try await SecurityTests.expectServing(cluster)
        }
    }

    @Test(.timeLimit(.minutes(3))) func connectionsOverTheCapGetAClearRefusal() async throws {
        try await withCluster(nodes: 1, configure: Self.tight) { cluster in
            do {
                let held = try (0..<20).map { _ in try Self.connection(cluster) }
                try await Task.sleep(for: .milliseconds(200))
                let extra = try Self.connection(cluster)
                let answer = String(decoding: extra.readAll(), as: UTF8.self)
                #expect(answer.hasPrefix("HTTP/1.1 503"), "\(answer)")
                #expect(answer.contains("too many connections"))
                withExtendedLifetime(held) {}
            }
            // Once they are gone, the node serves again.
            try await waitFor("a connection to be served again", timeout: .seconds(5)) {
                (try? await cluster.client("n1").status()) != nil
            }
        }
    }

    @Test(.timeLimit(.minutes(3))) func headAndPipelinesAreAnsweredInOrder() async throws {
        try await withCluster(nodes: 1, configure: Self.tight) { cluster in
            #expect(try await cluster.client("n1").put("h".bytes, value: "hello".bytes).succeeded)
            let head = try Self.connection(cluster)
            head.send(raw: "HEAD /kv/h HTTP/1.1\r\nConnection: close\r\n\r\n".bytes)
            let answer = String(decoding: head.readAll(), as: UTF8.self)
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
            #expect(answer.lowercased().contains("content-length: 5"))
            #expect(!answer.contains("hello"))
            // A write, then garbage, in one segment: the write is answered, then 400.
            let pipe = try Self.connection(cluster)
            pipe.send(raw: "PUT /kv/p HTTP/1.1\r\nContent-Length: 1\r\n\r\nxGARBAGE GARBAGE\r\n\r\n".bytes)
            let replies = String(decoding: pipe.readAll(), as: UTF8.self)
            let statuses = replies.components(separatedBy: "\r\n").filter { $0.hasPrefix("HTTP/1.1") }
            #expect(statuses.map { String($0.prefix(12)) } == ["HTTP/1.1 204", "HTTP/1.1 400"], "\(replies)")
            #expect(try await cluster.client("n1").get("p".bytes).values == ["x".bytes])
            // Requests pipelined behind a write are each answered, in order.
            let many = try Self.connection(cluster)
            many.send(
                raw: ("PUT /kv/q HTTP/1.1\r\nContent-Length: 1\r\n\r\ny" + "GET /kv/q HTTP/1.1\r\n\r\n"
                    + "GET /admin/status?= HTTP/1.1\r\n\r\n" + "GET /kv/q?a&= HTTP/1.1\r\nConnection: close\r\n\r\n").bytes)
            let answers = String(decoding: many.readAll(), as: UTF8.self)
            // (A status line may follow the previous body directly.)
            let codes = answers.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
            #expect(codes == ["204", "200", "200", "200"], "\(answers)")
            // Found by the second attack review: thousands of requests pipelined behind a
            // pending one recursed, one answer inside another's write, until the stack ran out.
            let burst = try Self.connection(cluster, receiveBuffer: 1 << 20)
            let requests = "GET /kv/q HTTP/1.1\r\n\r\n" + String(repeating: "GET / HTTP/1.1\r\n\r\n", count: 3000)
            burst.send(raw: (requests + "GET /kv/q HTTP/1.1\r\nConnection: close\r\n\r\n").bytes)
            let burstAnswers = String(decoding: burst.readAll(), as: UTF8.self)
            #expect(burstAnswers.components(separatedBy: "HTTP/1.1 ").count - 1 == 3002)
            try await SecurityTests.expectServing(cluster)
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes.
func waitFor(_ what: String, timeout: Duration, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    Issue.record("timed out waiting for \(what)")
}

/// A node started under a low open-file limit keeps its connection caps below it: a flood
/// gets clear refusals, the node does not spin, and serves again once the flood is gone.
@Suite(.serialized) struct FileLimitTests {
    static func cpuSeconds(_ pid: Int32) -> Double {
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        // Fields after the command name (in parentheses): utime and stime are 14 and 15.
        let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    @Test(.timeLimit(.minutes(3))) func aFloodAtTheFileLimitIsRefusedWithoutSpinning() async throws {
        guard let binary = LocalCluster.siblingBinary() else { throw LauncherError("dynamo-node not built") }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("dynamo-fd-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let ports = try LocalCluster.freePorts(2)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
        process.arguments = [
            "--nofile=340:340", binary, "--name", "n1", "--peer-port", "\(ports[0])", "--http-port", "\(ports[1])",
            "--data-dir", root, "--n", "1", "--r", "1", "--w", "1",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["DYNAMO_EXIT_WITH_PARENT"] = "1"
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            process.terminate()
            try? waitForExit(process, timeout: .seconds(20))
        }
        let client = DynamoClient(address: "127.0.0.1:\(ports[1])", http: HTTPClient(), bearer: nil)
        try await waitFor("the node to start", timeout: .seconds(20)) { (try? await client.status()) != nil }
        do {
            // 400 connections against a limit of 340 files: the cap (63 here) refuses the rest.
            let flood = try (0..<400).map { _ in try PeerSocket(port: ports[1], timeoutMs: 1000) }
            let refused = flood.suffix(50).filter { String(decoding: $0.readAll(), as: UTF8.self).hasPrefix("HTTP/1.1 503") }
            #expect(refused.count == 50)
            let before = Self.cpuSeconds(process.processIdentifier)
            try await Task.sleep(for: .seconds(2))
            let spent = Self.cpuSeconds(process.processIdentifier) - before
            #expect(spent < 0.5, "the node used \(spent) s of CPU in 2 s while the flood held its connections")
            withExtendedLifetime(flood) {}
        }
        try await waitFor("the node to serve again", timeout: .seconds(10)) {
            (try? await client.put("k".bytes, value: "v".bytes).succeeded) == true
        }
    }
}
