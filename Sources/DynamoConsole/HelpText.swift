/// What the `?` overlay says: every command, every key, and what each column, letter and
/// phrase on the dashboard means (a class asks "what is `home`?" before anything else).
enum HelpText {
    typealias Entry = (name: String, text: String)

    static var sections: [(heading: String, entries: [Entry])] {
        [
            ("COMMANDS (help COMMAND explains one)", Command.reference.map { ($0.usage, $0.summary) }),
            (
                "KEYS",
                [
                    ("Tab", "complete a command, a node name or a recent key"),
                    ("↑ ↓  Ctrl-R", "history; Ctrl-R searches it, shown as (reverse-i-search)"),
                    ("PgUp PgDn End", "scroll the output back and forth (in the events view: the events)"),
                    ("F2 … F8", "views: " + DashboardView.Panel.allCases.map { "\($0.key) \($0.rawValue)" }.joined(separator: ", ")),
                    ("Ctrl-C", "clear the line being typed"),
                    ("quit, Ctrl-D", "leave; asks once when it would stop the nodes this console started"),
                    (":CMD at resolve>", "run a command instead of writing the text as the merged value"),
                    ("R3* W1*", "in the header: R or W set for this session (r N, w N), what its requests use"),
                ]
            ),
            ("VIEWS (view NAME, or its key)", DashboardView.Panel.allCases.map { ("\($0.key)  \($0.rawValue)", $0.summary) }),
            (
                "NODE TABLE",
                [
                    ("state", "up; DOWN (not answering, or marked down); joining, leaving, left; FULL or STORE! when its disk refuses writes"),
                    ("tok", "the node's tokens: its virtual nodes on the ring"),
                    ("home", "the share of all keys the node is a home node for (one of the N in their preference list); the column sums to N x 100%"),
                    ("keys", "keys the node stores, hints excluded"),
                    ("hints→", "hints it holds for a node that was down: 3→n3 means 3 for n3; a + means for other nodes too"),
                    ("rps", "client requests per second it coordinated, over the last poll"),
                    ("p99ms p50ms", "latency of the requests it coordinated"),
                    ("sync", "its Merkle ranges: in sync, N diff (keys differing), or compared/total"),
                ]
            ),
            (
                "GOSSIP MATRIX (row's view of column)",
                [
                    ("U", "up (underlined or yellow: suspected, phi 4 or more, or unreachable)"),
                    ("D", "down: the accrual detector's phi passed its threshold, or a partition cut it off"),
                    ("J  L", "joining (pulling its ranges), leaving (handing them off)"),
                    ("·  -", "itself; no answer from the row's node"),
                ]
            ),
            (
                "RING",
                [
                    ("0↻", "position 0 at the top; keys and tokens run clockwise"),
                    ("1 2 3 …", "each cell is an arc of the ring, drawn with the digit (and colour) of the node owning it; every range gets at least one cell"),
                    ("◆", "the last key used, inside the ring at its position"),
                    ("reversed", "the ranges where its preference list picks each home node, walking clockwise"),
                    ("dim", "the ranges of a node that is down"),
                    ("ring [NODE]", "the table: each range, its owner and home nodes; with NODE, the ranges it is home for"),
                ]
            ),
            (
                "HINTS & ANTI-ENTROPY",
                [
                    ("hints waiting", "holder→target count: writes kept for a node that was down, handed over when it is back"),
                    ("n1↔n2 8/10", "of the 10 ranges the pair replicates, 8 compared equal at their last Merkle exchange"),
                    ("repairing", "keys found differing, being copied now"),
                    ("repaired", "keys found differing, copied since (the next exchange says in sync)"),
                    ("differ", "keys found differing more than 3 s ago and not copied yet"),
                    ("not compared", "ranges the pair has not exchanged yet, or a pair with a node down"),
                    ("hot keys", "keys near the object limits (siblings, bytes); refused ones first"),
                ]
            ),
            (
                "TRACE DIAGRAM (trace on)",
                [
                    ("lanes", "one per node involved, time flowing down; the first column is ms since the request came in"),
                    ("● ▶ ◀", "a message: ● its sender, the arrow head where it arrived, its kind on the arrow (forward, get, put, repair; ok, value, none, failed for answers)"),
                    ("╳", "a message that never arrived, or no answer by the deadline"),
                    ("◆", "the client answered: a quorum met (on a forwarded write, also where the coordinator met it)"),
                    ("■  H", "the node's own replica stored or read the key; a hint kept for a home node that was down"),
                    ("LATE", "an answer that arrived after the client was answered (nobody waited for it)"),
                    ("sent at 2.4", "a message that spent 5 ms or more on the way (slow n3 300ms delays what n3 sends)"),
                    ("header slow/lossy", "links slowed (n3 +300ms, ±jitter) or losing messages (n4 10% lost); heal removes them"),
                ]
            ),
            (
                "EVENTS",
                [
                    ("colours", "red failures, green recoveries, yellow hints, cyan repairs, magenta siblings, bold the console's own"),
                    ("folding", "a burst about the same thing is one line with a count: 25 hints delivered, 4 nodes marking n3 down"),
                    ("events pause", "freeze the log (new events are counted); events resume"),
                    ("events filter TEXT", "only events containing TEXT; events all shows every event"),
                ]
            ),
        ]
    }
}
