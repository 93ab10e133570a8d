/// Every error body: `{"error": ...}` plus, for quorum failures, what was missing, and for
/// a write refused by the object limits, which limit and what the key holds.
public struct ErrorDocument: Codable, Hashable, Sendable {
    public var error: String
    public var acks: Int?
    public var required: Int?
    public var replies: Int?
    /// The limit a refused write would cross: `max-siblings` or `max-object-bytes` (the
    /// flag's name), or `sibling-ceiling` / `byte-ceiling` (what a peer can read).
    public var limit: String?
    /// That limit's value.
    public var maximum: Int?
    /// The key (as text, shortened) and what it holds now: versions and encoded bytes.
    public var key: String?
    public var siblings: Int?
    public var bytes: Int?

    public init(
        error: String, acks: Int? = nil, required: Int? = nil, replies: Int? = nil, limit: String? = nil,
        maximum: Int? = nil, key: String? = nil, siblings: Int? = nil, bytes: Int? = nil
    ) {
        self.error = error
        self.acks = acks
        self.required = required
        self.replies = replies
        self.limit = limit
        self.maximum = maximum
        self.key = key
        self.siblings = siblings
        self.bytes = bytes
    }
}
