// swift-tools-version: 6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// The pure core and the simulator run thousands of simulated seconds in the test suite;
/// optimising them even in debug builds makes that 5-10x faster (tests stay debuggable).
let optimizedSettings: [SwiftSetting] = swiftSettings + [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "Dynamo",
    products: [
        .executable(name: "dynamo-node", targets: ["dynamo-node"]),
        .executable(name: "dynamo", targets: ["dynamo"]),
        .library(name: "DynamoClient", targets: ["DynamoClient"]),
        // The pure core and the wire codec, for the micro-benchmarks package (Benchmarks/).
        .library(name: "DynamoCore", targets: ["DynamoCore"]),
        .library(name: "DynamoWire", targets: ["DynamoWire"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    ],
    targets: [
        // C libraries from the OS package manager.
        .systemLibrary(
            name: "CRocksDB",
            path: "Sources/CRocksDB",
            providers: [.apt(["librocksdb-dev"])]
        ),
        .systemLibrary(name: "CNcurses", path: "Sources/CNcurses", providers: [.apt(["libncursesw5-dev"])]),
        .systemLibrary(name: "CReadline", path: "Sources/CReadline", providers: [.apt(["libreadline-dev"])]),
        // HMAC-SHA256 for the cluster secret. The system's libcrypto, not swift-crypto: that
        // would compile its own BoringSSL (some 360 C files) for one function, in every
        // build and again in the fuzz driver's.
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", providers: [.apt(["libssl-dev"])]),

        // The HTTP API's documents, percent-encoding and base64: what a client needs to talk
        // to a node, and nothing of the engine.
        .target(name: "DynamoAPI", swiftSettings: optimizedSettings),
        // The pure core: ring, clocks, objects and protocol state machines. No I/O, no HTTP.
        .target(
            name: "DynamoCore", dependencies: ["COpenSSL", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: optimizedSettings),
        // The peer wire protocol: frames, handshake, message codec.
        .target(
            name: "DynamoWire",
            dependencies: ["DynamoCore", .product(name: "NIOCore", package: "swift-nio")],
            // Optimised in debug too: tests run debug nodes, whose loops encode and decode
            // every frame (an unoptimised codec moving an 11 MiB object stalled a loop for
            // seconds, and W=3 writes sharing it timed out).
            swiftSettings: optimizedSettings
        ),
        // Storage engines behind one protocol: RocksDB (durable) and in-memory (tests).
        .target(
            name: "DynamoStorage",
            dependencies: ["DynamoCore", "CRocksDB", .product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
            swiftSettings: optimizedSettings
        ),
        // The node runtime: SwiftNIO shells that execute the core's actions.
        .target(
            name: "DynamoNode",
            dependencies: [
                "DynamoAPI", "DynamoCore", "DynamoWire", "DynamoStorage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // A small HTTP client for the node API (used by the CLI, the console, tests and the benchmark).
        .target(
            name: "DynamoClient",
            dependencies: [
                "DynamoAPI",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Starts and stops real node processes on loopback (CLI, benchmark, integration tests).
        .target(
            name: "DynamoLauncher",
            dependencies: ["DynamoAPI", "DynamoClient", "DynamoCore"],
            swiftSettings: swiftSettings
        ),
        // The console: REPL commands and session, the dashboard's model and its pure drawing.
        .target(
            name: "DynamoConsole",
            dependencies: [
                "DynamoAPI", "DynamoClient", "DynamoCore", "DynamoLauncher",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The console's terminal shell: the dashboard painted with ncurses, readline's prompt.
        .target(
            name: "DynamoTerminal",
            dependencies: [
                "DynamoConsole", "CNcurses", "CReadline",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "dynamo-node",
            dependencies: [
                "DynamoNode",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "dynamo",
            dependencies: [
                "DynamoAPI", "DynamoClient", "DynamoCore", "DynamoLauncher", "DynamoConsole", "DynamoTerminal",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: swiftSettings
        ),

        // Test support: the deterministic cluster simulator (not part of the product).
        .target(
            name: "DynamoSimulator",
            dependencies: [
                "DynamoCore", "DynamoStorage", "DynamoWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tests/DynamoSimulator",
            swiftSettings: optimizedSettings
        ),
        .testTarget(name: "DynamoCoreTests", dependencies: ["DynamoCore"], swiftSettings: swiftSettings),
        .testTarget(name: "DynamoAPITests", dependencies: ["DynamoAPI"], swiftSettings: swiftSettings),
        // The node's pure pieces: the documents it builds from the core's values, its event log.
        .testTarget(
            name: "DynamoNodeTests", dependencies: ["DynamoNode", "DynamoAPI", "DynamoCore"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "DynamoConsoleTests", dependencies: ["DynamoConsole", "DynamoClient", "DynamoNode", "DynamoAPI"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "DynamoSimulationTests",
            dependencies: ["DynamoSimulator", "DynamoCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DynamoWireTests",
            dependencies: [
                "DynamoWire", "DynamoCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test support: hostile inputs and what each fuzzer does with one (decode, round-trip,
        // run through what consumes it), shared by the fuzz tests and the libFuzzer driver.
        .target(
            name: "DynamoFuzzing",
            dependencies: [
                "DynamoCore", "DynamoWire", "DynamoStorage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Tests/DynamoFuzzing",
            swiftSettings: optimizedSettings
        ),
        // The fuzz targets as a libFuzzer driver (make fuzz-libfuzzer), or a replayer of inputs.
        .executableTarget(
            name: "dynamo-fuzz", dependencies: ["DynamoFuzzing"], path: "Tests/DynamoFuzzer",
            swiftSettings: swiftSettings),
        // Every decoder of bytes from outside (peers, clients, the disk), fed random and
        // boundary values, and what consumes its output (merges, writes, gossip, storage).
        .testTarget(
            name: "DynamoFuzzTests",
            dependencies: [
                "DynamoAPI", "DynamoCore", "DynamoWire", "DynamoStorage", "DynamoNode", "DynamoFuzzing",
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: optimizedSettings
        ),
        .testTarget(
            name: "DynamoStorageTests",
            dependencies: ["DynamoStorage", "DynamoCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DynamoIntegrationTests",
            dependencies: [
                "DynamoAPI", "DynamoClient", "DynamoCore", "DynamoLauncher", "DynamoConsole", "DynamoStorage", "DynamoWire",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
