/// `GET /admin/events?since=SEQ`: the node's recent events (failures seen, hints kept and
/// delivered, read repairs, siblings read, partitions), numbered so a watcher polls only
/// the new ones.
public struct EventsDocument: Codable, Hashable, Sendable {
    /// One event: its sentence, and its facts as fields (absent when the kind has none),
    /// so a watcher never has to parse the sentence.
    public struct Event: Codable, Hashable, Sendable {
        public var seq: UInt64
        /// Wall-clock milliseconds since 1970.
        public var timeMs: UInt64
        public var text: String
        /// What happened, a stable name (`marked`, `hint-kept`, `read-repair`, ...).
        public var kind: String?
        /// The node the event happened on.
        public var node: String?
        /// The other node it is about.
        public var peer: String?
        /// The key it is about, as shown in `text` (printable, or a hex prefix).
        public var key: String?
        /// Keys, siblings or members counted.
        public var count: Int?
        /// The member status reported (`marked`), or up/down for reachability.
        public var status: String?
        /// The nodes it names (traffic dropped with, members learned of).
        public var peers: [String]?
        /// Why: a peer marked down (`phi 9.1`, `partition`, `unanswered`), storage degraded
        /// (`disk full`), a pull failed.
        public var detail: String?

        public init(
            seq: UInt64, timeMs: UInt64, text: String, kind: String? = nil, node: String? = nil,
            peer: String? = nil, key: String? = nil, count: Int? = nil, status: String? = nil,
            peers: [String]? = nil, detail: String? = nil
        ) {
            self.peers = peers
            self.detail = detail
            self.seq = seq
            self.timeMs = timeMs
            self.text = text
            self.kind = kind
            self.node = node
            self.peer = peer
            self.key = key
            self.count = count
            self.status = status
        }
    }

    public var node: String
    public var events: [Event]

    public init(node: String, events: [Event]) {
        self.node = node
        self.events = events
    }
}
