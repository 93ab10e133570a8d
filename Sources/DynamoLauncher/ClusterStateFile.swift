import Foundation

/// The state file a launching command (`dynamo console`, `repl`, `cluster start`) keeps in
/// its directory, so other `dynamo` commands find the nodes: rewritten on every change of
/// the cluster (a node launched, stopped, added, restarted, wiped or gone), so its pids
/// are the running processes', never old ones.
public struct ClusterStateFile: Codable, Sendable, Equatable {
    public struct Node: Codable, Sendable, Equatable {
        public var name: String
        public var httpAddress: String
        public var peerAddress: String
        /// 0 while the node's process is not running.
        public var pid: Int32
        /// The node's data dir: a live pid is this node's only if its command line names it.
        public var dataDir: String?

        public init(name: String, httpAddress: String, peerAddress: String, pid: Int32, dataDir: String?) {
            self.name = name
            self.httpAddress = httpAddress
            self.peerAddress = peerAddress
            self.pid = pid
            self.dataDir = dataDir
        }
    }

    public var nodes: [Node]
    /// The process that launched the nodes and manages them (a console), if it still
    /// does; nil after `cluster start`, whose nodes run on by themselves.
    public var owner: Int32?

    public static let defaultDirectory = ".dynamo-cluster"

    public static func path(_ directory: String) -> String { "\(directory)/cluster.json" }

    public init(nodes: [Node], owner: Int32?) {
        self.nodes = nodes
        self.owner = owner
    }

    /// The file's content for `cluster` as it is now.
    public init(_ cluster: LocalCluster, owner: Int32?) {
        self.owner = owner
        nodes = cluster.names.compactMap { name in
            guard let spec = cluster.spec(name) else { return nil }
            return Node(
                name: name, httpAddress: spec.httpAddress, peerAddress: spec.peerAddress,
                pid: cluster.isRunning(name) ? cluster.pid(name) ?? 0 : 0, dataDir: spec.dataDir)
        }
    }

    /// Writes the file into `directory` (atomically: a reader never sees half of it).
    public func save(to directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: Self.path(directory)), options: .atomic)
    }

    public static func save(_ cluster: LocalCluster, owner: Int32?, to directory: String) throws {
        try ClusterStateFile(cluster, owner: owner).save(to: directory)
    }

    /// The largest state file read (a few hundred bytes per node).
    public static let maxBytes = 1 << 20

    /// What the directory holds: nothing, a state file, or a file that is not one.
    public enum Found: Sendable, Equatable {
        case none
        case state(ClusterStateFile)
        case unreadable(String)
    }

    public static func find(_ directory: String) -> Found {
        let file = path(directory)
        guard let handle = FileHandle(forReadingAtPath: file) else { return .none }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: maxBytes + 1), data.count <= maxBytes else {
            return .unreadable("\(file) is larger than \(maxBytes) bytes: not a cluster state file")
        }
        guard let state = try? JSONDecoder().decode(ClusterStateFile.self, from: data) else {
            return .unreadable("\(file) is not a cluster state file")
        }
        return .state(state)
    }

    public static func load(_ directory: String) -> ClusterStateFile? {
        if case .state(let state) = find(directory) { return state }
        return nil
    }

    /// Whether `pid` is a live process running `command` (its executable's name), whose
    /// command line names `argument` if given: a pid from an old file may belong to another
    /// program by now, which must not be signalled.
    public static func isLive(_ pid: Int32, running command: String, naming argument: String? = nil) -> Bool {
        guard pid > 0, kill(pid, 0) == 0,
            let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline")
        else { return false }
        let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard let first = arguments.first, URL(fileURLWithPath: first).lastPathComponent == command else {
            return false
        }
        return argument.map(arguments.contains) ?? true
    }

    /// The nodes of the file whose processes are still this cluster's.
    public var liveNodes: [Node] {
        nodes.filter { Self.isLive($0.pid, running: "dynamo-node", naming: $0.dataDir) }
    }

    /// Why a new cluster cannot start in `directory`: one is running there (its owner or
    /// any of its nodes is alive), in one line with what to do instead; nil when free.
    public static func busy(_ directory: String) -> String? {
        let state: ClusterStateFile
        switch find(directory) {
        case .none: return nil
        case .unreadable(let why): return "\(why); if no cluster runs in \(directory), delete it"
        case .state(let found): state = found
        }
        let live = state.liveNodes
        let attach = live.first.map { "attach with `dynamo console --attach \($0.httpAddress)`" }
        let stop = "stop it with `dynamo cluster stop\(directory == defaultDirectory ? "" : " --dir \(directory)")`"
        if let owner = state.owner, isLive(owner, running: "dynamo") {
            let ways = ["quit it"] + (attach.map { [$0] } ?? []) + ["use another --dir"]
            return "a console (pid \(owner)) is already running a cluster in \(directory): "
                + ways.joined(separator: ", ")
        }
        let attachOr = attach.map { "\($0), or " } ?? ""
        guard !live.isEmpty else { return nil }
        return "a cluster is already running in \(directory) (pid \(live[0].pid)): \(attachOr)\(stop)"
    }
}
