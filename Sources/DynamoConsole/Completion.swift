/// What tab completion offers, given the words before the cursor: command names first,
/// then node names for commands about nodes, recent keys for commands about keys.
public enum Completion {
    static let nodeCommands: Set<String> = [
        "use", "node", "kill", "stop", "restart", "start", "remove", "leave", "isolate", "partition", "wipe", "local",
        "ring", "vnodes", "slow", "lossy",
    ]
    static let keyCommands: Set<String> = ["get", "put", "delete", "del", "preflist"]

    public static func candidates(words: [String], prefix: String, nodes: [String], keys: [String]) -> [String] {
        guard let command = words.first?.lowercased() else { return Command.completions(of: prefix) }
        let pool: [String]
        switch command {
        case "help", "?": pool = words.count == 1 ? Command.reference.map(\.name) : []
        case "trace": pool = words.count == 1 ? ["on", "off", "show", "save"] : []
        case "view", "zoom": pool = words.count == 1 ? DashboardView.Panel.allCases.map(\.rawValue) : []
        case "events": pool = words.count == 1 ? ["pause", "resume", "filter", "all"] : []
        case _ where nodeCommands.contains(command):
            // `partition A,B | C,D` completes the node after the last comma or bar too.
            pool = nodes
        case _ where keyCommands.contains(command): pool = words.count == 1 ? keys : []
        default: pool = []
        }
        let last =
            prefix.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "," || $0 == "|" }).last.map(
                String.init) ?? prefix
        let head = String(prefix.dropLast(last.count))
        return pool.filter { $0.hasPrefix(last) }.map { head + $0 }
    }
}
