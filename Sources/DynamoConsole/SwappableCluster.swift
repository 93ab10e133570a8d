public import DynamoClient
import NIOConcurrencyHelpers

/// A cluster the console can replace while it runs (a demo may start a fresh cluster for
/// each part): the dashboard and the prompt keep talking to whichever is current.
public final class SwappableCluster: ClusterControl {
    private let current: NIOLockedValueBox<any ClusterControl>

    public init(_ cluster: any ClusterControl) { current = NIOLockedValueBox(cluster) }

    public var cluster: any ClusterControl { current.withLockedValue { $0 } }

    public func replace(with cluster: any ClusterControl) { current.withLockedValue { $0 = cluster } }

    public var nodeNames: [String] { cluster.nodeNames }
    public func client(_ name: String) -> DynamoClient { cluster.client(name) }
    public func kill(_ name: String) throws { try cluster.kill(name) }
    public func stop(_ name: String) throws { try cluster.stop(name) }
    public func restart(_ name: String) throws { try cluster.restart(name) }
    public func addNode(_ name: String?) throws -> String { try cluster.addNode(name) }
    public func processRunning(_ name: String) -> Bool? { cluster.processRunning(name) }
    public func wipe(_ name: String) throws { try cluster.wipe(name) }
    public func forget(_ name: String) { cluster.forget(name) }
}

/// A cluster that does not exist yet (a demo before its first `cluster` line).
public final class NoCluster: ClusterControl {
    public init() {}
    public var nodeNames: [String] { [] }
    public func client(_ name: String) -> DynamoClient { DynamoClient(address: "127.0.0.1:1") }
    private func none() -> CommandError { CommandError("no cluster is running") }
    public func kill(_ name: String) throws { throw none() }
    public func stop(_ name: String) throws { throw none() }
    public func restart(_ name: String) throws { throw none() }
    public func addNode(_ name: String?) throws -> String { throw none() }
    public func processRunning(_ name: String) -> Bool? { nil }
    public func wipe(_ name: String) throws { throw none() }
    public func forget(_ name: String) {}
}
