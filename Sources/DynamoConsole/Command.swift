/// One line typed at the console prompt, parsed. Pure, so parsing is tested on its own.
public enum Command: Equatable, Sendable {
    case help(String?)
    case status
    case get(String)
    case put(String, String)
    case delete(String)
    case preflist(String)
    /// Send requests to this node (the coordinator the client talks to).
    case use(String)
    case setR(Int)
    case setW(Int)
    case trace(Bool)
    /// Draw the last traced request's diagram again, or write it as SVG.
    case traceShow
    case traceSave(String)
    /// Messages NODE sends (to PEER only, or to everyone) take MS longer, ± JITTER; 0 removes it.
    case slow(String, ms: Int, jitterMs: Int, peer: String?)
    /// NODE loses PERCENT of the messages it sends (to PEER only, or to everyone).
    case lossy(String, percent: Double, peer: String?)
    /// Each node's write latency by W, from its stats.
    case latency
    /// Run a command N times (a quick workload: `repeat 20 put cart:ann x`).
    indirect case repeated(Int, Command)
    /// Resolve the siblings of the last read: pick one by number, or write a merged value.
    case resolvePick(Int)
    case resolveValue(String)
    case partition([[String]])
    case isolate(String)
    case heal
    case kill(String)
    case stop(String)
    case restart(String)
    case addNode(String?)
    case remove(String)
    /// Write COUNT keys PREFIX1...PREFIXCOUNT (to watch ranges fill, move and repair).
    case fill(String, Int)
    /// What one node stores itself for a key (no quorum).
    case local(String, String)
    /// Kill a node, delete its data directory and start it again, empty.
    case wipe(String)
    /// The ranges of the ring: every one, or those NODE is a home node of.
    case ring(String?)
    /// What the dashboard shows: every panel or one.
    case view(DashboardView.Panel)
    /// The event log: pause, resume, filter (nil: show every event).
    case events(EventsAction)
    case quit

    public enum EventsAction: Equatable, Sendable {
        case pause, resume
        case filter(String?)
    }

    /// Every command with its usage and what it does, for `help` and completion.
    public static let reference: [(name: String, usage: String, summary: String)] = [
        ("help", "help [COMMAND]", "list the commands, or explain one"),
        ("status", "status", "each node's view of the cluster: members, keys, hints"),
        ("get", "get KEY", "read a key; siblings are shown numbered with their clocks"),
        ("put", "put KEY VALUE", "read the key, then write VALUE with that context (replacing what was read)"),
        ("delete", "delete KEY", "delete what a read of the key returns"),
        ("preflist", "preflist KEY", "the key's ring position and its N home nodes"),
        ("use", "use NODE", "send requests to NODE (any node can coordinate)"),
        ("r", "r N", "read quorum for this session"),
        ("w", "w N", "write quorum for this session"),
        ("trace", "trace on|off|show|save FILE.svg", "draw each request's messages between the nodes; save the last as SVG"),
        (
            "resolve", "resolve N | resolve VALUE",
            "after a read with siblings: keep sibling N, or write VALUE, with the merged context"
        ),
        ("partition", "partition A,B | C,D", "cut the cluster into groups that cannot talk to each other"),
        ("isolate", "isolate NODE", "cut NODE off from everyone"),
        ("slow", "slow NODE MS[±J] [PEER]", "NODE's messages (to PEER) take MS longer, ± J ms; slow NODE 0 undoes it"),
        ("lossy", "lossy NODE PCT% [PEER]", "NODE loses PCT% of the messages it sends (to PEER); 0% undoes it"),
        ("heal", "heal", "remove every partition, slow and lossy link"),
        ("latency", "latency", "each node's write latency by W: p50 and p99 of the last 256 writes it took"),
        ("repeat", "repeat N COMMAND", "run COMMAND N times (1-1000), e.g. repeat 20 put cart:ann x"),
        ("kill", "kill NODE", "kill -9 a node's process"),
        ("stop", "stop NODE", "stop a node cleanly (SIGTERM)"),
        ("restart", "restart NODE", "start a stopped or killed node again, same name and data"),
        ("add-node", "add-node [NAME]", "start a new node; it joins and takes its ranges"),
        ("remove", "remove NODE", "the node leaves: hands its ranges to others, then exits"),
        ("fill", "fill PREFIX COUNT", "write COUNT keys PREFIX1..PREFIXCOUNT (values v1..)"),
        ("local", "local NODE KEY", "what NODE itself stores for KEY, without a quorum"),
        ("wipe", "wipe NODE", "kill NODE, delete its data directory, start it again empty"),
        ("ring", "ring [NODE]", "each range with its owner and home nodes; with NODE, the ranges it is home for"),
        ("view", "view all|ring|nodes|gossip|sync|events|output", "give the screen to one panel (keys F2-F8)"),
        ("events", "events pause|resume|filter TEXT|all", "freeze the event log, or show only events containing TEXT"),
        ("quit", "quit", "leave the console (nodes it started are stopped)"),
    ]

    /// Parses a line; a clear message when it is not a command.
    public static func parse(_ line: String) -> Result<Command, CommandError> {
        let trimmed = line.trimmed()
        guard !trimmed.isEmpty else { return .failure(CommandError("")) }
        let parts = trimmed.split(separator: " ", maxSplits: 1).map(String.init)
        let name = parts[0].lowercased()
        let rest = parts.count > 1 ? parts[1].trimmed() : ""
        let words = rest.split(separator: " ").map(String.init)
        func one(_ make: (String) -> Command) -> Result<Command, CommandError> {
            words.count == 1 ? .success(make(words[0])) : .failure(usage(name))
        }
        switch name {
        case "help", "?": return .success(.help(words.first))
        case "status", "nodes": return words.isEmpty ? .success(.status) : .failure(usage("status"))
        case "get": return one(Command.get)
        case "delete", "del": return one(Command.delete)
        case "preflist": return one(Command.preflist)
        case "use", "node": return one(Command.use)
        case "put":
            let split = rest.split(separator: " ", maxSplits: 1).map(String.init)
            return split.count == 2 ? .success(.put(split[0], split[1])) : .failure(usage("put"))
        case "r", "w":
            guard words.count == 1, let n = Int(words[0]), n > 0 else { return .failure(usage(name)) }
            return .success(name == "r" ? .setR(n) : .setW(n))
        case "trace":
            switch words.first?.lowercased() {
            case "on" where words.count == 1: return .success(.trace(true))
            case "off" where words.count == 1: return .success(.trace(false))
            case "show" where words.count == 1: return .success(.traceShow)
            case "save" where words.count == 2: return .success(.traceSave(words[1]))
            default: return .failure(usage("trace"))
            }
        case "resolve":
            guard !rest.isEmpty else { return .failure(usage("resolve")) }
            if let n = Int(rest) { return .success(.resolvePick(n)) }
            return .success(.resolveValue(rest))
        case "partition":
            let groups = rest.split(separator: "|").map {
                $0.split(separator: ",").map { String($0).trimmed() }.filter { !$0.isEmpty }
            }
            guard groups.count >= 2, groups.allSatisfy({ !$0.isEmpty }) else { return .failure(usage("partition")) }
            // A node in two groups would drop traffic one way only: not a partition.
            let all = groups.flatMap { $0 }
            if let twice = all.first(where: { name in all.filter { $0 == name }.count > 1 }) {
                return .failure(CommandError("\(twice) is in two groups: each node belongs to one side"))
            }
            return .success(.partition(groups))
        case "slow":
            guard (2...3).contains(words.count), let (ms, jitter) = parseDelay(words[1]) else {
                return .failure(usage("slow"))
            }
            return .success(.slow(words[0], ms: ms, jitterMs: jitter, peer: words.count == 3 ? words[2] : nil))
        case "lossy":
            let text = words.count >= 2 ? (words[1].hasSuffix("%") ? String(words[1].dropLast()) : words[1]) : ""
            guard (2...3).contains(words.count), let percent = Double(text), percent.isFinite, (0...100).contains(percent)
            else { return .failure(usage("lossy")) }
            return .success(.lossy(words[0], percent: percent, peer: words.count == 3 ? words[2] : nil))
        case "latency": return words.isEmpty ? .success(.latency) : .failure(usage("latency"))
        case "repeat":
            let split = rest.split(separator: " ", maxSplits: 1).map(String.init)
            guard split.count == 2, let count = Int(split[0]), (1...1000).contains(count) else {
                return .failure(usage("repeat"))
            }
            switch parse(split[1]) {
            case .failure(let error): return .failure(error)
            case .success(.repeated), .success(.quit), .success(.resolvePick), .success(.resolveValue):
                return .failure(CommandError("repeat runs get, put, delete, fill and the like, not \(split[1])"))
            case .success(let command): return .success(.repeated(count, command))
            }
        case "isolate": return one(Command.isolate)
        case "heal": return words.isEmpty ? .success(.heal) : .failure(usage("heal"))
        case "kill": return one(Command.kill)
        case "stop": return one(Command.stop)
        case "restart", "start": return one(Command.restart)
        case "add-node", "add":
            return words.count <= 1 ? .success(.addNode(words.first)) : .failure(usage("add-node"))
        case "remove", "leave": return one(Command.remove)
        case "fill":
            guard words.count == 2, let count = Int(words[1]), (1...100_000).contains(count) else {
                return .failure(usage("fill"))
            }
            return .success(.fill(words[0], count))
        case "local":
            let split = rest.split(separator: " ", maxSplits: 1).map(String.init)
            return split.count == 2 ? .success(.local(split[0], split[1])) : .failure(usage("local"))
        case "wipe": return one(Command.wipe)
        case "ring", "vnodes":
            return words.count <= 1 ? .success(.ring(words.first)) : .failure(usage("ring"))
        case "view", "zoom":
            guard words.count == 1, let panel = DashboardView.Panel(rawValue: words[0].lowercased()) else {
                return .failure(usage("view"))
            }
            return .success(.view(panel))
        case "events":
            switch words.first?.lowercased() {
            case "pause" where words.count == 1: return .success(.events(.pause))
            case "resume" where words.count == 1: return .success(.events(.resume))
            case "all" where words.count == 1: return .success(.events(.filter(nil)))
            case "filter" where words.count >= 2:
                return .success(.events(.filter(words.dropFirst().joined(separator: " "))))
            default: return .failure(usage("events"))
            }
        case "quit", "exit", "q": return .success(.quit)
        default:
            return .failure(CommandError("unknown command '\(name)'; type help for the list"))
        }
    }

    /// `200ms`, `200`, `200±50ms`, `200+-50`: a delay and its jitter, 0...60000 ms each.
    static func parseDelay(_ text: String) -> (Int, Int)? {
        var text = text.lowercased()
        if text.hasSuffix("ms") { text.removeLast(2) }
        let parts = text.replacingOccurrences(of: "+-", with: "±").split(separator: "±", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else { return nil }
        let numbers = parts.map { part -> Int? in
            var part = String(part)
            if part.hasSuffix("ms") { part.removeLast(2) }
            return Int(part).flatMap { (0...60_000).contains($0) ? $0 : nil }
        }
        guard let ms = numbers[0] else { return nil }
        guard numbers.count == 2 else { return (ms, 0) }
        // Jitter varies a delay: without one there is nothing to vary.
        guard let jitter = numbers[1], ms > 0 || jitter == 0 else { return nil }
        return (ms, jitter)
    }

    static func usage(_ name: String) -> CommandError {
        let entry = reference.first { $0.name == name }
        return CommandError("usage: \(entry?.usage ?? name)")
    }

    /// What is left to type after `line`, as redis-cli hints it (`put ` → `KEY VALUE`):
    /// the usage's words not yet given, nil when the line is not a known command's start.
    public static func hint(for line: String) -> String? {
        let words = line.split(separator: " ").map(String.init)
        guard let first = words.first?.lowercased() else { return nil }
        let name = aliases[first] ?? first
        guard let entry = reference.first(where: { $0.name == name }) else { return nil }
        // `resolve N | resolve VALUE` and `view all|ring|...` read better as one word.
        var usage = entry.usage.split(separator: " ").dropFirst().map(String.init)
        if name == "resolve" { usage = ["N|VALUE"] }
        // Words begun: the command's own, then its arguments (the last may be in progress).
        let given = words.count - 1
        guard given < usage.count, !usage.isEmpty else { return nil }
        let rest = usage.dropFirst(given).joined(separator: " ")
        return line.hasSuffix(" ") ? rest : " " + rest
    }

    /// Other names commands answer to.
    static let aliases = [
        "nodes": "status", "del": "delete", "node": "use", "start": "restart", "add": "add-node", "leave": "remove",
        "vnodes": "ring", "zoom": "view", "exit": "quit", "q": "quit",
    ]

    /// Command names that start with `prefix`, for tab completion.
    public static func completions(of prefix: String) -> [String] {
        reference.map(\.name).filter { $0.hasPrefix(prefix.lowercased()) }
    }
}

/// A mistake at the prompt, said plainly.
public struct CommandError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    func trimmed() -> String {
        var start = startIndex
        var end = endIndex
        while start < end, " \t".contains(self[start]) { start = index(after: start) }
        while end > start, " \t".contains(self[index(before: end)]) { end = index(before: end) }
        return String(self[start..<end])
    }
}
