/// A node's stable identity: its `--name`.
public typealias NodeName = String
