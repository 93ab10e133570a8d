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

        public init(name: String, status: StatusDocument? = nil, answering: Bool = false) {
            self.name = name
            self.status = status
            self.answering = answering
        }
    }

    /// One line of the event log.
    public struct Event: Sendable, Equatable {
        public enum Kind: Sendable { case failure, recovery, hint, repair, conflict, console, info }
        public var timeMs: UInt64
        public var text: String
        public var kind: Kind

        public init(timeMs: UInt64, text: String, kind: Kind? = nil) {
            self.timeMs = timeMs
            self.text = text
            self.kind = kind ?? Self.kind(of: text)
        }

        /// Colours the log by what happened, from the node's wording.
        static func kind(of text: String) -> Kind {
            if text.contains(" down") || text.contains("cannot reach") || text.contains("drops all") { return .failure }
            if text.contains(" up") || text.contains("reaches") || text.contains("heals") || text.contains("joined") {
                return .recovery
            }
            if text.contains("hint") { return .hint }
            if text.contains("repair") || text.contains("anti-entropy") { return .repair }
            if text.contains("siblings") { return .conflict }
            return .info
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
    /// so a failure seen by every node is one line, not one per observer.
    public mutating func record(_ event: Event) {
        if let (holder, target, count) = Self.hintsKept(event.text) {
            // A burst of hints kept by one node for one target is one line with a count.
            for index in events.indices.suffix(8).reversed() {
                guard event.timeMs <= events[index].timeMs + 2_000,
                    let (h, t, n) = Self.hintsKept(events[index].text), h == holder, t == target
                else { continue }
                events[index].text = "\(holder) keeps hints of \(n + count) keys for \(target)"
                events[index].timeMs = event.timeMs
                return
            }
        }
        if let (observer, rest) = Self.marking(event.text) {
            for index in events.indices.suffix(8).reversed() {
                let earlier = events[index]
                guard event.timeMs <= earlier.timeMs + 3_000, let (observers, earlierRest) = Self.marking(earlier.text),
                    earlierRest == rest
                else { continue }
                let names = observers.split(separator: ",").map(String.init)
                if !names.contains(observer) {
                    events[index].text = (names + [observer]).joined(separator: ",") + " mark " + rest
                }
                return
            }
        }
        events.append(event)
    }

    /// (holder, target, keys) from "n1 keeps a hint of KEY for n3" or "n1 keeps hints of 5 keys for n3".
    static func hintsKept(_ text: String) -> (String, String, Int)? {
        let words = text.split(separator: " ").map(String.init)
        guard words.count >= 7, words[1] == "keeps", words[words.count - 2] == "for" else { return nil }
        if words[2] == "a", words[3] == "hint" { return (words[0], words[words.count - 1], 1) }
        if words[2] == "hints", words.count == 8, let n = Int(words[4]) { return (words[0], words[7], n) }
        return nil
    }

    /// ("n4", "n3 down") from "n4 marks n3 down (…)" or "n1,n4 mark n3 down".
    static func marking(_ text: String) -> (String, String)? {
        let words = text.split(separator: " ", maxSplits: 2).map(String.init)
        guard words.count == 3, words[1] == "marks" || words[1] == "mark" else { return nil }
        let rest = words[2].split(separator: " ").prefix(2).joined(separator: " ")
        return (words[0], rest)
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
    }

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
                        fresh.append(DashboardModel.Event(timeMs: event.timeMs, text: event.text))
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
