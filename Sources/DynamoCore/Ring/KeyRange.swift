/// A ring range (start, end] between two consecutive tokens: one replica set serves it.
public struct KeyRange: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var start: RingPosition
    public var end: RingPosition

    public init(start: RingPosition, end: RingPosition) {
        self.start = start
        self.end = end
    }

    public func contains(_ position: RingPosition) -> Bool {
        start < end ? (position > start && position <= end) : (position > start || position <= end)
    }

    public static func < (lhs: KeyRange, rhs: KeyRange) -> Bool { lhs.end < rhs.end }

    public var description: String { "\(start.hex.prefix(8))..\(end.hex.prefix(8))" }
}
