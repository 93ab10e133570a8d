/// The JSON documents of the client and admin HTTP APIs (spec sections 6 and 7), shared by
/// the node (which writes them) and the client (which reads them).

/// A key's versions as the client sees them.
public struct SiblingDocument: Codable, Hashable, Sendable {
    public struct Sibling: Codable, Hashable, Sendable {
        /// Standard base64 of the value ("" for a tombstone).
        public var value: String
        public var deleted: Bool
        public var clock: [String: UInt64]
        /// Extras for people: the dot that created this version and its write time (ms).
        public var dot: String?
        public var timestamp: UInt64?

        public init(value: String, deleted: Bool, clock: [String: UInt64], dot: String?, timestamp: UInt64?) {
            self.value = value
            self.deleted = deleted
            self.clock = clock
            self.dot = dot
            self.timestamp = timestamp
        }

        /// The decoded value bytes (nil for a tombstone).
        public var bytes: [UInt8]? { deleted ? nil : Base64.decode(value) }
    }

    public var context: String
    public var siblings: [Sibling]

    public init(context: String, siblings: [Sibling]) {
        self.context = context
        self.siblings = siblings
    }
}
