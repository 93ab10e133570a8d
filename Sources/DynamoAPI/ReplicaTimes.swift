/// `X-Dynamo-Replica-Times`: what a request did with each replica, as the coordinator saw it
/// (`n1:0.000:0.412,n5>n3:1.203:-`: name, `>home` for a fallback standing in for home, ms
/// after the request came when the replica was sent its part, and when it answered: `-` not
/// before the reply, `x` with a failure). `X-Dynamo-Replied-Ms` says when the reply went.
public struct ReplicaTime: Equatable, Sendable {
    public var node: String
    public var hintFor: String?
    public var sentMs: Double
    /// nil: no answer before the client was answered.
    public var answeredMs: Double?
    public var failed: Bool

    public init(node: String, hintFor: String?, sentMs: Double, answeredMs: Double?, failed: Bool = false) {
        self.node = node
        self.hintFor = hintFor
        self.sentMs = sentMs
        self.answeredMs = answeredMs
        self.failed = failed
    }

    /// The header parsed; entries that do not parse are left out (the header is only for
    /// people, and a node's bytes are as untrusted as any), at most 64 of them.
    public static func parse(_ header: String?) -> [ReplicaTime] {
        guard let header, header.utf8.count <= 8192 else { return [] }
        return header.split(separator: ",").prefix(64).compactMap { entry in
            let parts = entry.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 3, let sent = Double(parts[1]), sent.isFinite, sent >= 0 else { return nil }
            let names = parts[0].split(separator: ">", maxSplits: 1).map(String.init)
            guard let node = names.first, !node.isEmpty, node.count <= 64 else { return nil }
            let answer = parts[2]
            let answered = Double(answer).flatMap { $0.isFinite && $0 >= 0 ? $0 : nil }
            guard answered != nil || answer == "-" || answer == "x" else { return nil }
            return ReplicaTime(
                node: node, hintFor: names.count == 2 ? names[1] : nil, sentMs: sent, answeredMs: answered,
                failed: answer == "x")
        }
    }
}
