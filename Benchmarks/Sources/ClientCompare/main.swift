// Issue 16: should DynamoClient use AsyncHTTPClient instead of its own small HTTP client?
// The same load as `dynamo bench` (concurrent workers, each a put or get loop on its own
// keys, 100-byte values) through each client in turn, against running nodes:
//
//   swift run -c release ClientCompare 127.0.0.1:PORT1,127.0.0.1:PORT2,... [concurrency] [seconds] [ahc-first]
//
// It prints ops/s and p50/p99/p99.9 for puts then gets, per client.
import AsyncHTTPClient
import DynamoClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

typealias Operation = @Sendable (_ address: String, _ path: String, _ body: [UInt8]?) async throws -> Int

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    print("usage: ClientCompare HOST:PORT[,HOST:PORT...] [concurrency=16] [seconds=10]")
    exit(2)
}
let addresses = arguments[1].split(separator: ",").map(String.init)
let concurrency = arguments.count > 2 ? Int(arguments[2]) ?? 16 : 16
let seconds = arguments.count > 3 ? Double(arguments[3]) ?? 10 : 10
let value = [UInt8](repeating: UInt8(ascii: "x"), count: 100)

/// Runs `operation` from `concurrency` workers for `seconds`; prints ops/s and percentiles.
func phase(_ name: String, _ operation: @escaping @Sendable (Int, Int) async throws -> Bool) async -> Int {
    let deadline = ContinuousClock.now + .seconds(seconds)
    let start = ContinuousClock.now
    let results = await withTaskGroup(of: ([UInt64], Int).self) { group in
        for worker in 0..<concurrency {
            group.addTask {
                var latencies: [UInt64] = []
                var count = 0
                while ContinuousClock.now < deadline {
                    let began = ContinuousClock.now
                    let ok = (try? await operation(worker, count)) ?? false
                    let d = (ContinuousClock.now - began).components
                    latencies.append(UInt64(d.seconds) * 1_000_000 + UInt64(d.attoseconds / 1_000_000_000_000))
                    if ok { count += 1 }
                }
                return (latencies, count)
            }
        }
        var all: [([UInt64], Int)] = []
        for await result in group { all.append(result) }
        return all
    }
    let elapsed = ContinuousClock.now - start
    let took = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let sorted = results.flatMap(\.0).sorted()
    let ok = results.reduce(0) { $0 + $1.1 }
    func ms(_ q: Double) -> String {
        sorted.isEmpty ? "-" : String(format: "%.2f", Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))]) / 1000)
    }
    print(
        "  \(name): \(String(format: "%.0f", Double(ok) / took)) ops/s (\(sorted.count - ok) errors); ms p50 \(ms(0.5)) p99 \(ms(0.99)) p99.9 \(ms(0.999))"
    )
    return ok
}

func run(_ label: String, _ operation: @escaping Operation) async {
    print(label)
    let tag = UUID().uuidString.prefix(6)
    _ = await phase("put") { worker, i in
        let address = addresses[worker % addresses.count]
        return try await operation(address, "/kv/cmp-\(tag)-\(worker)-\(i)", value) == 204
    }
    _ = await phase("get") { worker, i in
        let address = addresses[worker % addresses.count]
        return try await operation(address, "/kv/cmp-\(tag)-\(worker)-\(i % 1000)", nil) == 200
    }
}

// The project's own client (DynamoClient's HTTPClient: keep-alive pool over NIO).
let own = HTTPClient()
let ownRun: Operation = { address, path, body in
    let parts = address.split(separator: ":")
    let result = try await own.request(
        body == nil ? .GET : .PUT, host: String(parts[0]), port: Int(parts[1])!, path: path, headers: [],
        body: body, timeout: .seconds(10))
    return result.status
}

// AsyncHTTPClient, with a pool as large as the load's concurrency.
var configuration = AsyncHTTPClient.HTTPClient.Configuration()
configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = concurrency
let ahc = AsyncHTTPClient.HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
let ahcRun: Operation = { address, path, body in
    var request = HTTPClientRequest(url: "http://\(address)\(path)")
    request.method = body == nil ? .GET : .PUT
    if let body { request.body = .bytes(body) }
    let response = try await ahc.execute(request, timeout: .seconds(10))
    _ = try await response.body.collect(upTo: 1 << 20)
    return Int(response.status.code)
}
// (A fifth argument `ahc-first` swaps the order, to see that it does not decide.)
let ahcLabel = "AsyncHTTPClient, \(concurrency) connections a host"
if arguments.count > 4, arguments[4] == "ahc-first" {
    await run(ahcLabel, ahcRun)
    await run("DynamoClient's own HTTPClient", ownRun)
} else {
    await run("DynamoClient's own HTTPClient", ownRun)
    await run(ahcLabel, ahcRun)
}
try? await ahc.shutdown()
