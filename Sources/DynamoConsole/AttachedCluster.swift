public import DynamoClient
import DynamoCore
import Foundation

/// A running cluster the console did not start: it can talk to every node, but not
/// kill, stop, restart or add node processes.
public final class AttachedCluster: ClusterControl, @unchecked Sendable {
    private let http = HTTPClient.shared
    /// Guards `addresses` and `order` (the watcher forgets members that left).
    private let lock = NSLock()
    private var addresses: [String: String] = [:]
    private var order: [String] = []
    /// The cluster secret for admin requests (partitions need it).
    private let bearer: String?

    /// Learns the members (and their HTTP addresses) from the node at `address`.
    /// - Parameter bearer: the cluster secret; by default `DYNAMO_CLUSTER_SECRET`.
    public init(address: String, bearer: String? = DynamoClient.environmentSecret) async throws {
        self.bearer = bearer
        let status = try await DynamoClient(address: address, http: http, bearer: bearer).status()
        for member in status.members {
            addresses[member.name] = member.httpAddress
            order.append(member.name)
        }
    }

    public var nodeNames: [String] { lock.withLock { order } }

    public func client(_ name: String) -> DynamoClient {
        DynamoClient(address: lock.withLock { addresses[name] } ?? "", http: http, bearer: bearer)
    }

    private func refuse(_ what: String) -> CommandError {
        CommandError("\(what) works only for nodes this console started (attached to a running cluster)")
    }

    public func processRunning(_ name: String) -> Bool? { nil }

    public func forget(_ name: String) {
        lock.withLock {
            order.removeAll { $0 == name }
            addresses[name] = nil
        }
    }

    public func kill(_ name: String) throws { throw refuse("kill") }
    public func wipe(_ name: String) throws { throw refuse("wipe") }
    public func stop(_ name: String) throws { throw refuse("stop") }
    public func restart(_ name: String) throws { throw refuse("restart") }
    public func addNode(_ name: String?) throws -> String { throw refuse("add-node") }
}
