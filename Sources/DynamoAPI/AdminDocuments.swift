/// The admin API's smaller documents (spec section 7).

/// `POST /admin/faults` (and its answer): peers whose messages this node drops.
public struct FaultsDocument: Codable, Hashable, Sendable {
    public var drop: [String]

    public init(drop: [String]) { self.drop = drop }

    /// The drop set of every node for cutting `nodes` into `groups`: each node drops every
    /// node outside its own group; a node in no group is isolated from everyone.
    public static func partition(_ groups: [[String]], of nodes: [String]) -> [String: [String]] {
        Dictionary(
            uniqueKeysWithValues: nodes.map { node in
                let group = groups.first { $0.contains(node) } ?? [node]
                return (node, nodes.filter { !group.contains($0) })
            })
    }
}

/// `POST /admin/leave`: the node hands off what it holds, then exits.
public struct LeaveDocument: Codable, Hashable, Sendable {
    public var leaving: Bool
    /// Keys and hints it holds now, all of which go to other nodes before it exits.
    public var keys: Int
    public var hints: Int

    public init(leaving: Bool, keys: Int, hints: Int) {
        self.leaving = leaving
        self.keys = keys
        self.hints = hints
    }
}

/// `GET /admin/preflist/{key}`.
public struct PreflistDocument: Codable, Hashable, Sendable {
    public var hash: String
    public var preferenceList: [String]

    public init(hash: String, preferenceList: [String]) {
        self.hash = hash
        self.preferenceList = preferenceList
    }
}
