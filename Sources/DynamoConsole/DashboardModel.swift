public import DynamoAPI
import DynamoClient
public import DynamoCore
import Foundation
import NIOConcurrencyHelpers

/// Everything the dashboard shows, as last polled from the nodes' admin API. A value:
/// the watcher builds it, the view draws it, tests construct it directly.
public struct DashboardModel: Sendable {
    public struct Node: Sendable {
        public var name: String
        /// The node's last answer to `/admin/status` (kept while it does not answer).
        public var status: StatusDocument?
        /// Whether it answered the last poll.
        public var answering = false
        /// False when the console knows its process is not running (nil: not its process).
        public var running: Bool?
        /// Client requests per second it coordinated, over the last poll interval.
        public var requestsPerSecond = 0.0
        /// The last rates, oldest first, for a sparkline.
        public var rateHistory: [Double] = []
        /// It left the cluster (some node lists it as departed): shown as `left`, counted
        /// nowhere, and forgotten `ClusterWatcher.departedShownMs` later.
        public var departed = false

        public init(name: String, status: StatusDocument? = nil, answering: Bool = false) {
            self.name = name
            self.status = status
            self.answering = answering
        }
    }

    /// One line of the event log.
    public struct Event: Sendable, Equatable {
        public enum Kind: Sendable { case failure, recovery, hint, repair, conflict, console, info }
        /// Lines that fold into one: a burst about the same thing (hints kept or delivered,
        /// a status change or a cut link every node sees, a partition's faults on every
        /// node, anti-entropy and read repairs) is one line with a count, so one partition
        /// or one restart does not scroll everything else away.
        enum Fold: Sendable, Equatable {
            /// `keys`: the distinct keys (one write can make its holder keep a hint twice).
            case hintsKept(holder: String, target: String, keys: Set<String>)
            case hintsDelivered(holder: String, target: String, count: Int)
            /// Who sees whom as `status` (marked) ...
            case marked(links: Set<Link>, status: String)
            /// ... or cannot reach, or reaches again.
            case reach(links: Set<Link>, reachable: Bool)
            /// Nodes that drop all traffic with `dropped` (empty: they heal).
            case faults(nodes: [String], dropped: [String])
            case antiEntropy(pairs: Set<Link>, repaired: Int)
            case joined(nodes: [String], keys: Int)
            case handingOff(nodes: [String], keys: Int)
            case learned(links: Set<Link>)
            case readRepair(peer: String, keys: Set<String>)

            /// The folded line (of two or more events).
            var text: String {
                switch self {
                case .hintsKept(let holder, let target, let keys): "\(holder) keeps hints of \(keys.count) keys for \(target)"
                case .hintsDelivered(let holder, let target, let count): "\(holder) delivered \(count) hints to \(target)"
                case .marked(let links, let status): Link.grouped(links, verb: "mark", then: " \(status)")
                case .reach(let links, let reachable):
                    reachable
                        ? Link.grouped(links, verb: "reach", then: " again")
                        : Link.grouped(links, verb: "cannot reach", then: "") + "; routing around"
                case .faults(let nodes, let dropped):
                    dropped.isEmpty
                        ? "\(nodes.joined(separator: ",")) heal: talking to everyone"
                        : "\(nodes.joined(separator: ",")) drop all traffic with \(dropped.joined(separator: ","))"
                case .antiEntropy(let pairs, let repaired):
                    "anti-entropy repaired \(repaired) keys between " + pairs.sorted().map { "\($0.observer)↔\($0.peer)" }.joined(separator: " ")
                case .readRepair(let peer, let keys): "read repair of \(keys.count) keys on \(peer)"
                case .joined(let nodes, let keys):
                    "\(nodes.joined(separator: ",")) joined the cluster and took \(keys) key(s) for their ranges; now up"
                case .learned(let links): Link.grouped(links, verb: "learn of", then: "")
                case .handingOff(let nodes, let keys):
                    "\(nodes.joined(separator: ",")) hand \(keys) key(s) to their home nodes"
                }
            }

            /// How long after the last event of a fold another one still joins it.
            var windowMs: UInt64 {
                switch self {
                case .hintsKept, .hintsDelivered, .antiEntropy, .readRepair, .handingOff: 2_000
                default: 3_000
                }
            }
        }

        /// An observer and the node it is about (or the two nodes of a replica pair).
        struct Link: Hashable, Comparable, Sendable {
            var observer: String
            var peer: String
            static func < (a: Link, b: Link) -> Bool { (a.observer, a.peer) < (b.observer, b.peer) }

            /// "n1,n2 mark n3,n4 down; n3,n4 mark n1,n2 down": observers seeing the same
            /// nodes are named together.
            static func grouped(_ links: Set<Link>, verb: String, then: String) -> String {
                var peersOf: [String: [String]] = [:]
                for link in links.sorted() { peersOf[link.observer, default: []].append(link.peer) }
                // Every one of a group about every other (a cluster starting): "each other".
                let everyone = Set(links.map(\.observer)).union(links.map(\.peer))
                if everyone.count > 2, peersOf.count == everyone.count,
                    peersOf.allSatisfy({ Set($0.value) == everyone.subtracting([$0.key]) })
                {
                    return "\(everyone.sorted().joined(separator: ",")) \(verb) each other\(then)"
                }
                var groups: [(observers: [String], peers: [String])] = []
                for observer in peersOf.keys.sorted() {
                    let peers = peersOf[observer] ?? []
                    if let index = groups.firstIndex(where: { $0.peers == peers }) {
                        groups[index].observers.append(observer)
                    } else {
                        groups.append(([observer], peers))
                    }
                }
                return groups.map {
                    let verb = $0.observers.count == 1 ? singular(verb) : verb
                    return "\($0.observers.joined(separator: ",")) \(verb) \($0.peers.joined(separator: ","))\(then)"
                }.joined(separator: "; ")
            }

            static func singular(_ verb: String) -> String {
                switch verb {
                case "mark": "marks"
                case "reach": "reaches"
                case "learn of": "learns of"
                default: verb
                }
            }
        }

        /// When it happened (a folded line: when its first event did, so the log stays in
        /// time order).
        public var timeMs: UInt64
        public var text: String
        public var kind: Kind
        var fold: Fold?
        /// A folded line's latest event: a burst goes on folding while events keep coming.
        var lastMs: UInt64 = 0

        /// A line of the console's own (a partition it injected, a node it killed).
        public init(timeMs: UInt64, text: String, kind: Kind = .console) {
            self.timeMs = timeMs
            self.text = text
            self.kind = kind
        }

        /// A node's event, coloured and folded by its fields (never by its wording).
        public init(_ event: EventsDocument.Event) {
            self.init(timeMs: event.timeMs, text: event.text, kind: Self.kind(of: event))
            let key = event.key ?? ""
            switch (event.kind, event.node, event.peer) {
            case ("hint-kept", let holder?, let target?):
                fold = .hintsKept(holder: holder, target: target, keys: [key])
            case ("hint-delivered", let holder?, let target?):
                fold = .hintsDelivered(holder: holder, target: target, count: 1)
            case ("marked", let observer?, let peer?):
                if let status = event.status { fold = .marked(links: [Link(observer: observer, peer: peer)], status: status) }
            case ("reachability", let observer?, let peer?):
                fold = .reach(links: [Link(observer: observer, peer: peer)], reachable: event.status == "up")
            case ("faults", let node?, _):
                fold = .faults(nodes: [node], dropped: (event.peers ?? []).sorted())
            case ("anti-entropy", let node?, let peer?):
                let pair = node < peer ? Link(observer: node, peer: peer) : Link(observer: peer, peer: node)
                if (event.count ?? 0) > 0 { fold = .antiEntropy(pairs: [pair], repaired: event.count ?? 0) }
            case ("read-repair", _, let peer?):
                fold = .readRepair(peer: peer, keys: [key])
            case ("joined", let node?, _):
                fold = .joined(nodes: [node], keys: event.count ?? 0)
            case ("handing-off", let node?, _):
                fold = .handingOff(nodes: [node], keys: event.count ?? 0)
            case ("learned", let node?, _):
                fold = .learned(links: Set((event.peers ?? []).map { Link(observer: node, peer: $0) }))
            default: break
            }
        }

        /// Colours the log by what happened.
        static func kind(of event: EventsDocument.Event) -> Kind {
            switch event.kind {
            case "marked", "reachability":
                return event.status == "down" ? .failure : event.status == "up" ? .recovery : .info
            case "faults": return event.count == 0 ? .recovery : .failure
            case "joined", "rejoined": return .recovery
            case "hint-kept", "hint-delivered": return .hint
            case "read-repair", "anti-entropy": return .repair
            case "siblings-read": return .conflict
            case "store-lost": return .failure
            case "storage": return event.detail == nil ? .recovery : .failure
            default: return .info
            }
        }
    }

    /// The key last used at the prompt: marked on the ring with its preference list.
    public struct Focus: Sendable, Equatable {
        public var key: String
        public var position: RingPosition
        public var homeNodes: [String]
    }

    public var nodes: [Node]
    public var events: [Event] = []
    public var focus: Focus?
    /// The partition the console injected, as typed (nil when healed).
    public var partition: String?
    /// The slow and lossy links the console injected (`n3 +300ms · n4 10% lost`; nil: none).
    public var links: String?
    public var nowMs: UInt64 = 0

    public init(nodes: [Node]) { self.nodes = nodes }

    /// The membership as the first answering node sees it (the ring everyone converges on).
    public var view: StatusDocument? {
        nodes.first { $0.answering && $0.status != nil }?.status ?? nodes.first { $0.status != nil }?.status
    }

    public var quorum: StatusDocument.Quorum? { view?.quorum }

    /// The ring of every member's tokens, from `view`.
    public var ring: Ring {
        var tokens: [NodeName: [RingPosition]] = [:]
        for member in view?.members ?? [] {
            tokens[member.name] = member.tokens.compactMap(RingPosition.init(hex:))
        }
        return Ring(nodes: tokens)
    }

    /// Every member any node knows, in the console's order then the others.
    public var memberNames: [String] {
        var names = nodes.map(\.name)
        for member in view?.members ?? [] where !names.contains(member.name) { names.append(member.name) }
        return names
    }

    /// How `observer` sees `member`: up, down, joining, leaving (nil: no answer from the observer).
    public func status(of member: String, seenBy observer: String) -> StatusDocument.MemberInfo? {
        guard let node = nodes.first(where: { $0.name == observer }), node.answering else { return nil }
        return node.status?.members.first { $0.name == member }
    }

    /// Adds an event; "A marks C down" right after "B marks C down" becomes "A,B mark C down",
    /// so a failure seen by every node is one line, not one per observer, and a burst of
    /// hints kept by one node for one target is one line with a count.
    public mutating func record(_ event: Event) {
        if let fold = event.fold {
            for index in events.indices.suffix(8).reversed() {
                guard let earlier = events[index].fold, let merged = Self.merge(earlier, fold),
                    event.timeMs <= max(events[index].timeMs, events[index].lastMs) + earlier.windowMs
                else { continue }
                // (An observer telling the same again leaves the line as it was.)
                if merged != earlier {
                    events[index].fold = merged
                    events[index].text = merged.text
                }
                // Bursts slide: the window runs from the latest event (a status change
                // from its first); the line keeps the time the burst began.
                if case .marked = merged {} else { events[index].lastMs = max(events[index].lastMs, event.timeMs) }
                return
            }
        }
        events.append(event)
    }

    /// `later` folded into `earlier`, when they are about the same thing.
    private static func merge(_ earlier: Event.Fold, _ later: Event.Fold) -> Event.Fold? {
        switch (earlier, later) {
        case (.hintsKept(let holder, let target, let keys), .hintsKept(let h, let t, let more))
        where h == holder && t == target:
            return .hintsKept(holder: holder, target: target, keys: keys.union(more))
        case (.hintsDelivered(let holder, let target, let count), .hintsDelivered(let h, let t, let more))
        where h == holder && t == target:
            return .hintsDelivered(holder: holder, target: target, count: count + more)
        case (.marked(let links, let status), .marked(let more, let st)) where st == status:
            return .marked(links: links.union(more), status: status)
        case (.reach(let links, let reachable), .reach(let more, let r)) where r == reachable:
            return .reach(links: links.union(more), reachable: reachable)
        case (.faults(let nodes, let dropped), .faults(let more, let d)) where d == dropped:
            return .faults(nodes: (nodes + more.filter { !nodes.contains($0) }).sorted(), dropped: dropped)
        case (.antiEntropy(let pairs, let repaired), .antiEntropy(let more, let count)):
            return .antiEntropy(pairs: pairs.union(more), repaired: repaired + count)
        case (.readRepair(let peer, let keys), .readRepair(let p, let more)) where p == peer:
            return .readRepair(peer: peer, keys: keys.union(more))
        case (.joined(let nodes, let keys), .joined(let more, let count)):
            return .joined(nodes: nodes + more.filter { !nodes.contains($0) }, keys: keys + count)
        case (.handingOff(let nodes, let keys), .handingOff(let more, let count)):
            return .handingOff(nodes: nodes + more.filter { !nodes.contains($0) }, keys: keys + count)
        case (.learned(let links), .learned(let more)):
            return .learned(links: links.union(more))
        default:
            return nil
        }
    }

    /// Sets the focus to `key` and its first N nodes on the current ring.
    public mutating func focus(on key: String) {
        let bytes = Array(key.utf8)
        let n = quorum?.n ?? 3
        focus = Focus(
            key: key, position: RingPosition.of(key: bytes), homeNodes: ring.preferenceList(forKey: bytes).home(n))
    }
}

/// Polls every node's status and events and keeps the dashboard model current. Thread-safe:
/// the poller, the prompt and the screen share it.
public final class ClusterWatcher: Sendable {
    private let cluster: any ClusterControl
    private let state: NIOLockedValueBox<State>

    private struct State {
        var model: DashboardModel
        var lastSeq: [String: UInt64] = [:]
        /// Each node's generation when its events were last read (a restart numbers them anew).
        var generations: [String: UInt64] = [:]
        var lastCount: [String: (count: UInt64, atMs: UInt64)] = [:]
        var generation = 0
        /// When each departed node was first seen so (wall ms).
        var departedAt: [String: UInt64] = [:]
    }

    /// How long a node that left stays on screen as `left` before it is forgotten.
    public static let departedShownMs: UInt64 = 10_000

    /// How many events the log keeps.
    static let eventLimit = 500

    public init(cluster: any ClusterControl) {
        self.cluster = cluster
        state = NIOLockedValueBox(State(model: DashboardModel(nodes: cluster.nodeNames.map { .init(name: $0) })))
    }

    /// A copy of the current model.
    public var model: DashboardModel { state.withLockedValue { $0.model } }

    /// Bumped whenever the model changes (the screen redraws then).
    public var generation: Int { state.withLockedValue { $0.generation } }

    /// Adds a line to the event log (the console's own actions: partitions, kills...).
    public func note(_ text: String, kind: DashboardModel.Event.Kind = .console) {
        let now = Self.wallMs
        state.withLockedValue { state in
            Self.append([DashboardModel.Event(timeMs: now, text: text, kind: kind)], to: &state.model)
            state.generation += 1
        }
    }

    /// Forgets everything polled (the cluster was replaced by a new one).
    public func reset() {
        let names = cluster.nodeNames
        state.withLockedValue { state in
            state = State(model: DashboardModel(nodes: names.map { .init(name: $0) }))
        }
    }

    public func focus(on key: String) {
        state.withLockedValue { state in
            state.model.focus(on: key)
            state.generation += 1
        }
    }

    public func setPartition(_ text: String?) {
        state.withLockedValue { state in
            state.model.partition = text
            state.generation += 1
        }
    }

    public func setLinks(_ text: String?) {
        state.withLockedValue { state in
            state.model.links = text
            state.generation += 1
        }
    }

    /// One round: every node's status and new events, asked in parallel with a short timeout
    /// (a dead or stopped node must not hold the screen up).
    public func poll() async {
        let names = cluster.nodeNames
        let (since, generations) = state.withLockedValue { ($0.lastSeq, $0.generations) }
        let answers = await withTaskGroup(of: (String, StatusDocument?, EventsDocument?).self) { group in
            for name in names {
                let client = cluster.client(name)
                group.addTask {
                    guard let status = try? await client.status(timeout: .milliseconds(800)) else {
                        return (name, nil, nil)
                    }
                    let generation = status.members.first { $0.name == name }?.generation
                    let from = generation == generations[name] ? since[name] ?? 0 : 0
                    let events = try? await client.events(since: from, timeout: .milliseconds(800))
                    return (name, status, events)
                }
            }
            var answers: [String: (StatusDocument?, EventsDocument?)] = [:]
            for await (name, status, events) in group { answers[name] = (status, events) }
            return answers
        }
        let now = Self.wallMs
        let running = Dictionary(uniqueKeysWithValues: names.map { ($0, cluster.processRunning($0)) })
        // Members some node says left, whose process (if the console runs it) is gone.
        let departed = Set(answers.values.flatMap { $0.0?.departed ?? [] }.map(\.name)).filter {
            names.contains($0) && running[$0] != true
        }
        let forget = state.withLockedValue { state -> [String] in
            state.departedAt = state.departedAt.filter { departed.contains($0.key) }
            for name in departed where state.departedAt[name] == nil { state.departedAt[name] = now }
            return state.departedAt.filter { now >= $0.value + Self.departedShownMs }.map(\.key).sorted()
        }
        for name in forget {
            cluster.forget(name)
            note("\(name) left the cluster: forgotten by the console", kind: .info)
        }
        state.withLockedValue { state in
            var model = state.model
            for name in names where !model.nodes.contains(where: { $0.name == name }) {
                model.nodes.append(.init(name: name))
            }
            model.nodes.removeAll { !names.contains($0.name) }
            var fresh: [DashboardModel.Event] = []
            for index in model.nodes.indices {
                let name = model.nodes[index].name
                let (status, events) = answers[name] ?? (nil, nil)
                model.nodes[index].running = running[name] ?? nil
                model.nodes[index].answering = status != nil
                model.nodes[index].departed = departed.contains(name)
                var rate = 0.0
                if let status {
                    model.nodes[index].status = status
                    let count = (status.requests?.gets ?? 0) + (status.requests?.writes ?? 0)
                    if let last = state.lastCount[name], now > last.atMs, count >= last.count {
                        rate = Double(count - last.count) * 1000 / Double(now - last.atMs)
                    }
                    state.lastCount[name] = (count, now)
                } else {
                    state.lastCount[name] = nil
                }
                model.nodes[index].requestsPerSecond = rate
                model.nodes[index].rateHistory = Array((model.nodes[index].rateHistory + [rate]).suffix(60))
                if let events, let status {
                    let generation = status.members.first { $0.name == name }?.generation
                    if generation != state.generations[name] {
                        state.generations[name] = generation
                        state.lastSeq[name] = 0
                    }
                    for event in events.events where event.seq > state.lastSeq[name] ?? 0 {
                        fresh.append(DashboardModel.Event(event))
                        state.lastSeq[name] = event.seq
                    }
                }
            }
            Self.append(fresh.sorted { $0.timeMs < $1.timeMs }, to: &model)
            if let focus = model.focus { model.focus(on: focus.key) }
            model.nowMs = now
            state.model = model
            state.generation += 1
        }
    }

    /// Polls every `intervalMs` until the task is cancelled.
    public func run(intervalMs: Int = 400) async {
        while !Task.isCancelled {
            await poll()
            try? await Task.sleep(for: .milliseconds(intervalMs))
        }
    }

    private static func append(_ events: [DashboardModel.Event], to model: inout DashboardModel) {
        for event in events { model.record(event) }
        if model.events.count > eventLimit { model.events.removeFirst(model.events.count - eventLimit) }
    }

    public static var wallMs: UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }
}
