import NIOConcurrencyHelpers

/// The client requests a node is serving, and whether it takes new ones: what SIGTERM
/// waits on before the node stops (drain, then exit 0). Shared by the HTTP loops.
///
/// A request enters before it reaches the node and leaves once its reply is written, so a
/// drain that sees none inside has none half-answered; one that arrives while draining is
/// refused with 503 and `Connection: close` instead of being cut off by the stop.
final class DrainGate: Sendable {
    private let state = NIOLockedValueBox<(draining: Bool, inside: Int)>((false, 0))

    /// Lets a request in (false: the node is draining; refuse it).
    func enter() -> Bool {
        state.withLockedValue { state in
            guard !state.draining else { return false }
            state.inside += 1
            return true
        }
    }

    /// A request's reply was written (or its connection went away).
    func leave() { state.withLockedValue { $0.inside = max(0, $0.inside - 1) } }

    /// From now on no request enters.
    func close() { state.withLockedValue { $0.draining = true } }

    /// Requests between `enter` and `leave`.
    var inside: Int { state.withLockedValue { $0.inside } }
}
