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
        /// Lines that fold into one: a burst of hints one node keeps for one target, and a
        /// status change several nodes see.
        enum Fold: Sendable, Equatable {
            /// `keys`: the distinct keys (one write can make its holder keep a hint twice).
            case hintsKept(holder: String, target: String, keys: Set<String>)
            case marked(observers: [String], peer: String, status: String)

            /// The folded line (of two or more events).
            var text: String {
                switch self {
                case .hintsKept(let holder, let target, let keys): "\(holder) keeps hints of \(keys.count) keys for \(target)"
                case .marked(let observers, let peer, let status): "\(observers.joined(separator: ",")) mark \(peer) \(status)"
                }
            }
        }

        public var timeMs: UInt64
        public var text: String
        public var kind: Kind
        var fold: Fold?

        /// A line of the console's own (a partition it injected, a node it killed).
        public init(timeMs: UInt64, text: String, kind: Kind = .console) {
            self.timeMs = timeMs
            self.text = text
            self.kind = kind
        }

        /// A node's event, coloured and folded by its fields (never by its wording).
        public init(_ event: EventsDocument.Event) {
            self.init(timeMs: event.timeMs, text: event.text, kind: Self.kind(of: event))
            switch (event.kind, event.node, event.peer, event.status) {
            case ("hint-kept", let holder?, let target?, _):
                fold = .hintsKept(holder: holder, target: target, keys: [event.key ?? ""])
            case ("marked", let observer?, let peer?, let status?):
                fold = .marked(observers: [observer], peer: peer, status: status)
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
                    event.timeMs <= events[index].timeMs + (merged.isHints ? 2_000 : 3_000)
                else { continue }
                // (An observer telling the same again leaves the line as it was.)
                if merged.fold != earlier {
                    events[index].fold = merged.fold
                    events[index].text = merged.fold.text
                }
                if merged.isHints { events[index].timeMs = event.timeMs }
                return
            }
        }
        events.append(event)
    }

    /// `later` folded into `earlier`, when they are about the same thing.
    private static func merge(_ earlier: Event.Fold, _ later: Event.Fold) -> (fold: Event.Fold, isHints: Bool)? {
        switch (earlier, later) {
        case (.hintsKept(let holder, let target, let keys), .hintsKept(let h, let t, let more))
        where h == holder && t == target:
            return (.hintsKept(holder: holder, target: target, keys: keys.union(more)), true)
        case (.marked(let observers, let peer, let status), .marked(let more, let p, let st))
        where p == peer && st == status:
            return (.marked(observers: observers + more.filter { !observers.contains($0) }, peer: peer, status: status), false)
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

    static var wallMs: UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }
}
