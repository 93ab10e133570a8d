import ArgumentParser
import DynamoClient
import DynamoLauncher
import Foundation
import Histogram

/// `dynamo bench`: throughput and latency percentiles of puts and gets under concurrent load.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure put and get throughput and p50/p99/p99.9 latency.",
        discussion: "Starts its own local cluster (stopped at the end) unless --attach names running nodes.")

    @Option(help: "Nodes to start when not attaching.") var nodes = 3
    @Option(help: "Comma-separated HTTP addresses of running nodes to load instead.") var attach: String?
    @Option(help: "Concurrent clients.") var concurrency = 16
    @Option(help: "Seconds per phase.") var duration = 10.0
    @Option(name: .customLong("value-size"), help: "Value size in bytes.") var valueSize = 100

    func run() async throws {
        var cluster: LocalCluster?
        var addresses = attach?.split(separator: ",").map(String.init) ?? []
        if addresses.isEmpty {
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("dynamo-bench-\(getpid())").path
            let local = try localCluster(root: root, options: LocalCluster.Options())
            cluster = local
            print("starting \(nodes) nodes (\(local.binary))...")
            try await local.start(count: nodes)
            addresses = local.names.map { local.spec($0)!.httpAddress }
        }
        defer { cluster?.destroy() }
        let http = HTTPClient()
        let clients = addresses.map { DynamoClient(address: $0, http: http) }
        let value = [UInt8](repeating: UInt8(ascii: "x"), count: valueSize)
        print(
            "\(concurrency) clients, \(valueSize)-byte values, \(duration) s per phase, nodes \(addresses.joined(separator: " "))"
        )

        let written = try await phase("put", clients: clients) { client, worker, i in
            try await client.put(Array("bench-\(worker)-\(i)".utf8), value: value).succeeded
        }
        _ = try await phase("get", clients: clients) { client, worker, i in
            let index = i % max(written[worker], 1)
            return try await client.get(Array("bench-\(worker)-\(index)".utf8)).status == 200
        }
    }

    /// Runs `operation` from every client for `duration`; returns operations completed per worker.
    private func phase(
        _ name: String, clients: [DynamoClient],
        operation: @escaping @Sendable (DynamoClient, Int, Int) async throws -> Bool
    ) async throws -> [Int] {
        let deadline = ContinuousClock.now + .seconds(duration)
        let start = ContinuousClock.now
        let results = try await withThrowingTaskGroup(of: (Int, Histogram<UInt64>, Int, Int).self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var histogram = Histogram<UInt64>(
                        highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                    var count = 0
                    var errors = 0
                    let client = clients[worker % clients.count]
                    while ContinuousClock.now < deadline {
                        let began = ContinuousClock.now
                        let ok = (try? await operation(client, worker, count)) ?? false
                        let micros = (ContinuousClock.now - began).components
                        _ = histogram.record(
                            UInt64(micros.seconds) * 1_000_000 + UInt64(micros.attoseconds / 1_000_000_000_000))
                        if ok { count += 1 } else { errors += 1 }
                    }
                    return (worker, histogram, count, errors)
                }
            }
            var all: [(Int, Histogram<UInt64>, Int, Int)] = []
            for try await result in group { all.append(result) }
            return all.sorted { $0.0 < $1.0 }
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        for result in results { merged.add(result.1) }
        let total = results.reduce(0) { $0 + $1.2 }
        let errors = results.reduce(0) { $0 + $1.3 }
        func ms(_ p: Double) -> String { String(format: "%.2f", Double(merged.valueAtPercentile(p)) / 1000) }
        print(
            "\(name): \(total) ok, \(errors) errors in \(String(format: "%.1f", seconds)) s = \(String(format: "%.0f", Double(total) / seconds)) ops/s; latency ms p50 \(ms(50)) p99 \(ms(99)) p99.9 \(ms(99.9)) max \(String(format: "%.2f", Double(merged.max) / 1000))"
        )
        return results.map(\.2)
    }
}
