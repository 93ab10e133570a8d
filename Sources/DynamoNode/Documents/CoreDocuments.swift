public import DynamoAPI
public import DynamoCore

// The API's documents built from the core's values: the node is the one place that knows
// both (DynamoAPI knows nothing of the engine, DynamoCore nothing of HTTP).

extension SiblingDocument {
    /// - Parameter context: the object's context, sealed for its key.
    public init(_ object: VersionedObject, context: String) {
        self.init(
            context: context,
            siblings: object.versions.map { version in
                Sibling(
                    value: Base64.encode(version.value ?? []),
                    deleted: version.isTombstone,
                    clock: version.clock.summary,
                    dot: version.dot.description,
                    timestamp: version.timestamp
                )
            })
    }
}

extension ErrorDocument {
    /// The body of a write refused by the object limits (HTTP 409).
    public init(refusal: ObjectLimitRefusal) {
        let limit: String =
            switch refusal.bound {
            case .maxSiblings: "max-siblings"
            case .maxObjectBytes: "max-object-bytes"
            case .siblingCeiling: "sibling-ceiling"
            case .byteCeiling: "byte-ceiling"
            }
        self.init(
            error: refusal.description, limit: limit, maximum: refusal.limit, key: KeyText.short(refusal.key),
            siblings: refusal.current.siblings, bytes: refusal.current.bytes)
    }
}

extension EventsDocument.Event {
    /// `event` as it happened on `node`.
    public init(seq: UInt64, timeMs: UInt64, node: NodeName, _ event: NodeEvent) {
        self.init(
            seq: seq, timeMs: timeMs, text: event.text(node: node), kind: event.kind, node: node,
            peer: event.peer, key: event.key.map(KeyText.short), count: event.count,
            status: event.status?.rawValue, peers: event.peers, detail: event.detail)
    }
}
