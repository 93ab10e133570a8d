// swift-tools-version: 6.1
// Micro-benchmarks of the core's hot paths (ordo-one package-benchmark): a package of its
// own so that `make test` and CI never build the benchmark harness. Run `make bench-micro`.
import PackageDescription

let package = Package(
    name: "DynamoBenchmarks",
    dependencies: [
        .package(name: "Dynamo", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        // Only to compare MD5s (issue 16): the node keeps its own (README, "Micro-benchmarks").
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        // Only to compare with DynamoClient's own HTTP client (issue 16; README, "Micro-benchmarks").
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "ClientCompare",
            dependencies: [
                .product(name: "DynamoClient", package: "Dynamo"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/ClientCompare"
        ),
        .systemLibrary(name: "CLibcrypto", path: "Sources/CLibcrypto", providers: [.apt(["libssl-dev"])]),
        .executableTarget(
            name: "CoreBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "DynamoCore", package: "Dynamo"),
                .product(name: "DynamoWire", package: "Dynamo"),
                .product(name: "Crypto", package: "swift-crypto"),
                "CLibcrypto",
            ],
            path: "Benchmarks/CoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
