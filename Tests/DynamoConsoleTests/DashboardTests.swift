import DynamoAPI
import DynamoCore
import DynamoNode
import Foundation
import Testing

@testable import DynamoConsole

/// The dashboard drawn as text from a made-up cluster: five nodes, n3 dead, hints waiting
/// for it, one range pair differing.
@Suite struct DashboardTests {
    static func model() -> DashboardModel {
        let names = ["n1", "n2", "n3", "n4", "n5"]
        func members(seenBy observer: String) -> [StatusDocument.MemberInfo] {
            names.map { name in
                StatusDocument.MemberInfo(
                    name: name, status: name == "n3" && observer != "n3" ? "down" : "up", peerAddress: "",
                    httpAddress: "", tokens: Token.defaultPositions(for: name, count: 8).map(\.hex), heartbeat: 1,
                    generation: 1, heartbeatAgeMs: name == "n3" ? 14_000 : 300, phi: name == "n3" ? 11 : 0.2)
            }
        }
        var nodes: [DashboardModel.Node] = []
        for name in names {
            let hints = name == "n4" ? ["n3": 3] : [:]
            let exchange = StatusDocument.AntiEntropy.Exchange(
                range: "00..40", peer: name == "n1" ? "n2" : "n1", lastComparedMsAgo: 1_500, inSync: name != "n5",
                keysDiffering: name == "n5" ? 7 : 0, keysRepaired: 0, bytesReceived: 0)
            let status = StatusDocument(
                node: name, members: members(seenBy: name),
                hints: .init(pending: hints.values.reduce(0, +), byTarget: hints),
                keys: 1000 + names.firstIndex(of: name)!,
                quorum: .init(n: 3, r: 2, w: 2, policy: "siblings", sloppy: true), joined: true,
                antiEntropy: .init(trees: 8, keysTracked: 1000, exchanges: 3, keysRepaired: 0, ranges: [exchange]),
                requests: .init(gets: 10, writes: 5, p50Ms: 0.8, p99Ms: 2.5))
            var node = DashboardModel.Node(name: name, status: status, answering: name != "n3")
            node.requestsPerSecond = 42
            node.rateHistory = [1, 5, 42]
            nodes.append(node)
        }
        var model = DashboardModel(nodes: nodes)
        func happened(_ timeMs: UInt64, on node: String, _ event: NodeEvent) {
            model.record(.init(EventsDocument.Event(seq: 1, timeMs: timeMs, node: node, event)))
        }
        happened(1_000, on: "n1", .marked(peer: "n3", status: .down, why: .phi(9.1)))
        happened(1_100, on: "n2", .marked(peer: "n3", status: .down, why: .phi(8.4)))
        for (index, key) in ["cart:ann", "cart:bob", "cart:eve"].enumerated() {
            happened(1_200 + UInt64(index) * 100, on: "n4", .hintKept(key: Array(key.utf8), target: "n3"))
        }
        model.focus(on: "cart:ann")
        return model
    }

    @Test func fitsEightyByTwentyFourWithEveryPanel() {
        let canvas = DashboardView.render(
            Self.model(), output: ["dynamo> get cart:ann", "book"], width: 80, height: 24)
        let text = canvas.lines.joined(separator: "\n")
        #expect(canvas.lines.count == 24)
        #expect(canvas.lines.allSatisfy { $0.count <= 80 })
        for panel in ["ring", "nodes", "gossip", "hints & anti-entropy", "events", "?:help"] {
            #expect(text.contains(panel), "missing \(panel)")
        }
        #expect(text.contains("5 nodes, 4 up"))
        let n3 = canvas.lines.first { $0.contains("│ n3 ") && $0.contains("DOWN") }
        #expect(n3 != nil, "n3 shows as DOWN in the node table")
        #expect(text.contains("3→n3"), "n4's hints for n3")
        #expect(text.contains("n4→n3 3"))
        #expect(text.contains("7 repairing"), "a replica pair differing, compared 1.5 s ago")
        #expect(text.contains("n1,n2 mark n3 down"), "one line for a failure every node saw")
        #expect(text.contains("n4 keeps hints of 3 keys for n3"), "one line for a burst of hints")
        #expect(text.contains("cart:ann → "), "the focus key and its home nodes")
        #expect(text.contains("book"))
        // The gossip row of n1 shows n3 down.
        #expect(canvas.lines.contains { $0.contains(" n1 ·  U  D  U  U") })
    }

    /// The log folds and colours events by their fields: a node that words them otherwise
    /// (another language, a later release) folds the same.
    @Test func eventsFoldAndColourByTheirFieldsNotTheirWording() {
        var model = DashboardModel(nodes: [])
        func record(
            _ timeMs: UInt64, _ kind: String, node: String, peer: String, status: String? = nil, key: String? = nil
        ) {
            model.record(
                .init(
                    EventsDocument.Event(
                        seq: 1, timeMs: timeMs, text: "\(node) ~ \(peer)", kind: kind, node: node, peer: peer, key: key,
                        status: status)))
        }
        record(1_000, "marked", node: "n1", peer: "n3", status: "down")
        record(1_500, "marked", node: "n2", peer: "n3", status: "down")
        record(1_550, "marked", node: "n1", peer: "n3", status: "down")
        record(1_600, "marked", node: "n2", peer: "n3", status: "up")
        record(2_000, "hint-kept", node: "n4", peer: "n3", key: "a")
        record(2_050, "hint-kept", node: "n4", peer: "n3", key: "a")  // the same key again: counted once
        record(2_100, "hint-kept", node: "n4", peer: "n3", key: "b")
        record(2_200, "hint-kept", node: "n4", peer: "n5", key: "a")
        record(9_000, "marked", node: "n5", peer: "n3", status: "down")
        #expect(
            model.events.map(\.text) == [
                "n1,n2 mark n3 down", "n2 ~ n3", "n4 keeps hints of 2 keys for n3", "n4 ~ n5", "n5 ~ n3",
            ])
        #expect(model.events.map(\.kind) == [.failure, .recovery, .hint, .hint, .failure])
        let heal = EventsDocument.Event(seq: 2, timeMs: 1, node: "n1", .faults(dropped: []))
        let cut = EventsDocument.Event(seq: 3, timeMs: 1, node: "n1", .faults(dropped: ["n2"]))
        #expect(DashboardModel.Event(heal).kind == .recovery && DashboardModel.Event(cut).kind == .failure)
        let full = EventsDocument.Event(seq: 4, timeMs: 1, node: "n1", .storage(degraded: "disk full"))
        #expect(DashboardModel.Event(full).kind == .failure)
        #expect(DashboardModel.Event(.init(seq: 5, timeMs: 1, node: "n1", .storage(degraded: nil))).kind == .recovery)
    }

    /// A partition of five nodes, and a restart delivering 25 hints, are a few lines, not
    /// thirty: faults, cut links, marks, deliveries and repairs fold by their fields.
    @Test func aPartitionAndARestartFoldIntoAFewLines() {
        var model = DashboardModel(nodes: [])
        var time: UInt64 = 10_000
        func happened(on node: String, _ event: NodeEvent) {
            time += 37
            model.record(.init(EventsDocument.Event(seq: 1, timeMs: time, node: node, event)))
        }
        let sides = [["n1", "n2"], ["n3", "n4", "n5"]]
        for (side, other) in [(sides[0], sides[1]), (sides[1], sides[0])] {
            for node in side { happened(on: node, .faults(dropped: other)) }
        }
        for (side, other) in [(sides[0], sides[1]), (sides[1], sides[0])] {
            for node in side {
                for peer in other { happened(on: node, .reachability(peer: peer, reachable: false)) }
            }
        }
        for (side, other) in [(sides[0], sides[1]), (sides[1], sides[0])] {
            for node in side {
                for peer in other { happened(on: node, .marked(peer: peer, status: .down, why: .partition)) }
            }
        }
        #expect(
            model.events.map(\.text) == [
                "n1,n2 drop all traffic with n3,n4,n5", "n3,n4,n5 drop all traffic with n1,n2",
                "n1,n2 cannot reach n3,n4,n5; n3,n4,n5 cannot reach n1,n2; routing around",
                "n1,n2 mark n3,n4,n5 down; n3,n4,n5 mark n1,n2 down",
            ])
        model.events = []
        for _ in 0..<25 { happened(on: "n4", .hintDelivered(target: "n3")) }
        for peer in ["n1", "n2"] {
            happened(on: "n3", .antiEntropy(peer: peer, range: KeyRange(start: .init(0), end: .init(1)), differing: 5, repaired: 5))
        }
        #expect(model.events.map(\.text) == ["n4 delivered 25 hints to n3", "anti-entropy repaired 10 keys between n1↔n3 n2↔n3"])
    }

    /// During a partition the header keeps the clock, the help key and the groups: the
    /// wording around them gives way first.
    @Test func theHeaderKeepsTheClockHelpAndPartitionAtEighty() {
        var model = Self.model()
        model.partition = "n1,n2 | n3,n4,n5"
        let header = DashboardView.render(model, output: [], width: 80, height: 24).lines[0]
        #expect(header.contains("partition n1,n2|n3,n4,n5"), "\(header)")
        #expect(header.contains("?:help") && header.contains(/[0-9]{2}:[0-9]{2}:[0-9]{2}/), "\(header)")
        model.partition = "n1 | n2 | n3 | n4 | n5,n6,n7,n8,n9,n10,n11,n12"
        let crowded = DashboardView.render(model, output: [], width: 60, height: 24).lines[0]
        #expect(crowded.contains("?:help") && crowded.contains(/[0-9]{2}:[0-9]{2}:[0-9]{2}/), "\(crowded)")
        #expect(crowded.count <= 60)
        // R and W set for the session are what requests use: the header shows them, starred.
        var options = DashboardView.Options()
        options.sessionR = 3
        options.sessionW = 1
        let session: String = DashboardView.render(Self.model(), output: [], width: 80, height: 24, options: options).lines[0]
        #expect(session.contains("N3 R3* W1*"), "\(session)")
        // Slow and lossy links: named with what they do, shorter when space runs out.
        var slow = Self.model()
        slow.links = "n5 +300ms"
        let slowHeader = DashboardView.render(slow, output: [], width: 80, height: 24).lines[0]
        #expect(slowHeader.contains("slow/lossy n5 +300ms"), "\(slowHeader)")
        slow.links = "n4 20% lost · n5 +300±50ms"
        slow.partition = "n1,n2 | n3,n4,n5"
        let both = DashboardView.render(slow, output: [], width: 80, height: 24).lines[0]
        #expect(both.contains("slow/lossy") && both.contains("?:help") && both.count <= 80, "\(both)")
    }

    /// At 60x16 what does not fit says so: the node table ends in "… N more nodes" and
    /// names cut columns, and a long line wraps at a word boundary.
    @Test func theSmallestScreenSaysWhatItCannotShow() {
        let long = "ok: written via n1 (acks n1 n4) and a sentence long enough to need a second line here"
        var reply: [String] = ["dynamo> status"]
        for i in 1...5 { reply.append("n\(i)  12 keys  0 hints") }
        reply.append(long)
        let canvas = DashboardView.render(Self.model(), output: reply, width: 60, height: 16)
        let lines: [String] = canvas.lines
        let text: String = lines.joined(separator: "\n")
        let first: Bool = lines.contains("ok: written via n1 (acks n1 n4) and a sentence long enough")
        let second: Bool = lines.contains("  to need a second line here")
        #expect(first && second, "\(text)")
        // A shorter reply leaves the ring and node table room; the table says what it hides.
        let small = DashboardView.render(Self.model(), output: ["dynamo> get k", "v", "via n1"], width: 60, height: 16)
        let smallText: String = small.lines.joined(separator: "\n")
        let said: Bool = smallText.contains("nodes (F4: every column)")
        #expect(said, "columns cut say so: \(smallText)")
    }

    /// PgDn through a reply longer than the screen shows every line once at least, then
    /// returns to rest; PgUp from rest goes back through what scrolled away.
    @Test func pagingThroughALongReplySkipsNoLine() {
        let model = Self.model()
        var output: [String] = ["dynamo> earlier", "older line"]
        output.append("dynamo> ring")
        for i in 1...60 { output.append("line \(i) of the reply") }
        var options = DashboardView.Options()
        var seen = Set<String>()
        for _ in 0..<10 {
            let lines: [String] = DashboardView.render(model, output: output, width: 80, height: 24, options: options).lines
            for line in lines where line.hasPrefix("line ") { seen.insert(line) }
            options = DashboardView.scrolled(options, pages: -1, model: model, output: output, width: 80, height: 24)
            if options.outputTop == nil { break }
        }
        #expect(seen.count == 60, "lines never shown: \(60 - seen.count)")
        #expect(options.outputTop == nil, "PgDn at the end returns to rest")
        options = DashboardView.scrolled(options, pages: 1, model: model, output: output, width: 80, height: 24)
        options = DashboardView.scrolled(options, pages: 1, model: model, output: output, width: 80, height: 24)
        options = DashboardView.scrolled(options, pages: 1, model: model, output: output, width: 80, height: 24)
        let back: String = DashboardView.render(model, output: output, width: 80, height: 24, options: options).lines
            .joined(separator: "\n")
        #expect(back.contains("older line") && back.contains("↓"), "\(back)")
    }

    @Test func aNodeWhoseDiskIsFullSaysSoInItsState() {
        var model = Self.model()
        model.nodes[1].status?.storage = .init(
            failures: 3, lastError: "No space left on device", lastErrorMsAgo: 10, degraded: "disk full")
        let canvas = DashboardView.render(model, output: [], width: 80, height: 24)
        #expect(canvas.lines.contains { $0.contains("│ n2 ") && $0.contains("FULL") })
        #expect(!canvas.lines.contains { $0.contains("│ n1 ") && $0.contains("FULL") })
    }

    /// Keys near the object limits get one compact line under the hints, at 80x24 too.
    @Test func keysNearTheObjectLimitsShowInOneLine() {
        var model = Self.model()
        #expect(DashboardView.hotKeysText(model) == nil)
        func objects(_ keys: [StatusDocument.Objects.HotKey]) -> StatusDocument.Objects {
            .init(
                warnSiblings: 25, maxSiblings: 100, warnObjectBytes: 5 << 20, maxObjectBytes: 12 << 20,
                writesRefused: keys.filter(\.refused).count, nearLimits: keys)
        }
        model.nodes[0].status?.objects = objects([
            .init(key: "cart", siblings: 30, bytes: 900, refused: false, msAgo: 10),
            .init(key: "img", siblings: 1, bytes: 6_400_000, refused: false, msAgo: 20),
        ])
        model.nodes[1].status?.objects = objects([
            .init(key: "cart", siblings: 100, bytes: 3000, refused: true, msAgo: 5)
        ])
        #expect(DashboardView.hotKeysText(model) == "hot keys: cart 100sib 2KiB refused · img 6.1MiB")
        let canvas = DashboardView.render(model, output: [], width: 80, height: 24)
        #expect(canvas.lines.allSatisfy { $0.count <= 80 })
        #expect(canvas.lines.contains { $0.contains("hot keys: cart 100sib 2KiB refused · img 6.1MiB") }, "whole at 80 columns")
        #expect(canvas.lines.joined().contains("n4→n3 3"), "the hints line stays")
    }

    @Test func largeTerminalsShowLatencyHeartbeatAgesAndSparklines() {
        let canvas = DashboardView.render(Self.model(), output: [], width: 160, height: 50)
        let text = canvas.lines.joined(separator: "\n")
        #expect(text.contains("p50ms"))
        #expect(text.contains("D 14s"), "heartbeat age of the dead node")
        #expect(text.contains("range 00..40: 7 keys differ"), "the differing range itself")
        #expect(text.contains("▁"), "a sparkline")
        #expect(text.contains("F2-F8:views"))
    }

    /// The anti-entropy lines count the ranges the nodes hold now: a comparison of a range
    /// that moved away is not counted, ranges not compared yet are said so (the count does
    /// not grow as comparisons come in), and a pair with a node down never reads "in sync".
    @Test func replicaPairsCountCurrentRangesAndNeverCallADownPairInSync() {
        typealias AE = StatusDocument.AntiEntropy
        func exchange(_ range: String, _ peer: String, inSync: Bool, differing: Int = 0, ago: UInt64 = 1_000)
            -> AE.Exchange
        {
            .init(
                range: range, peer: peer, lastComparedMsAgo: ago, inSync: inSync, keysDiffering: differing,
                keysRepaired: 0, bytesReceived: 0)
        }
        func node(_ name: String, answering: Bool = true, tracked: [AE.Tracked], ranges: [AE.Exchange])
            -> DashboardModel.Node
        {
            let status = StatusDocument(
                node: name, members: [], hints: .init(pending: 0, byTarget: [:]), keys: 0, quorum: nil, joined: true,
                antiEntropy: .init(
                    trees: tracked.count, keysTracked: 0, exchanges: ranges.count, keysRepaired: 0, ranges: ranges,
                    tracked: tracked))
            return DashboardModel.Node(name: name, status: status, answering: answering)
        }
        let model = DashboardModel(nodes: [
            node(
                "n1", tracked: [.init(range: "00..40", peers: ["n2", "n3"]), .init(range: "40..80", peers: ["n2", "n3"])],
                ranges: [
                    exchange("00..40", "n2", inSync: true), exchange("00..40", "n3", inSync: true, ago: 60_000),
                    // Kept from before the ring changed: not a range n1 holds now.
                    exchange("c0..00", "n2", inSync: false, differing: 40, ago: 100_000),
                ]),
            node("n2", tracked: [.init(range: "00..40", peers: ["n1"]), .init(range: "40..80", peers: ["n1"])], ranges: []),
            node("n3", answering: false, tracked: [], ranges: []),
        ])
        let pairs = model.replicaPairs
        let n1n2 = pairs.first { $0.a == "n1" && $0.b == "n2" }
        #expect(n1n2?.ranges == 2 && n1n2?.compared == 1 && n1n2?.inSync == 1 && n1n2?.differing == 0)
        let n1n3 = pairs.first { $0.a == "n1" && $0.b == "n3" }
        #expect(n1n3?.down == "n3" && n1n3?.allInSync == false)
        let text = DashboardView.render(model, output: [], width: 80, height: 24).lines.joined(separator: "\n")
        #expect(!text.contains("40 keys"), "a range no longer held is not shown")
        #expect(text.contains("1/2 in sync · 1 not compared yet"))
        #expect(text.contains("n3 down"))
        #expect(!text.contains("n1↔n3   2/2") && !text.contains("n1↔n3   1/1"))
    }

    /// Lines that do not fit say whether what they hide is all in sync; a pair whose
    /// differing keys were all copied over since says "repaired", not "differ".
    @Test func hiddenPairsAndRepairedRangesAreToldTruly() {
        func exchange(_ peer: String, inSync: Bool, differing: Int = 0, repaired: Int = 0) -> StatusDocument.AntiEntropy.Exchange {
            .init(
                range: "00..40", peer: peer, lastComparedMsAgo: 9_000, inSync: inSync, keysDiffering: differing,
                keysRepaired: repaired, bytesReceived: 0)
        }
        func node(_ name: String, _ ranges: [StatusDocument.AntiEntropy.Exchange]) -> DashboardModel.Node {
            let tracked = [StatusDocument.AntiEntropy.Tracked(range: "00..40", peers: ranges.map(\.peer))]
            let status = StatusDocument(
                node: name, members: [], hints: .init(pending: 0, byTarget: [:]), keys: 0, quorum: nil, joined: true,
                antiEntropy: .init(trees: 1, keysTracked: 0, exchanges: 1, keysRepaired: 0, ranges: ranges, tracked: tracked))
            return .init(name: name, status: status, answering: true)
        }
        func render(nodes count: Int, firstPairInSync: Bool, othersInSync: Bool = true) -> String {
            let names = (1...count).map { "n\($0)" }
            var nodes = names.dropFirst().map { node($0, []) }
            let first = exchange("n2", inSync: firstPairInSync, differing: firstPairInSync ? 0 : 4, repaired: 4)
            let others = names.dropFirst(2).map { exchange($0, inSync: othersInSync, differing: othersInSync ? 0 : 2) }
            nodes.insert(node("n1", [first] + others), at: 0)
            return DashboardView.render(DashboardModel(nodes: nodes), output: [], width: 80, height: 24).lines
                .joined(separator: "\n")
        }
        #expect(render(nodes: 6, firstPairInSync: false).contains("n1↔n2    0/1 in sync · 4 repaired · 9.0s ago"))
        // Ten nodes at 80x24: some pairs are hidden, and the line says whether all are in sync.
        let allInSync = render(nodes: 10, firstPairInSync: true)
        #expect(allInSync.contains(/… [0-9]+ more pairs, all in sync/), "\(allInSync)")
        let showingADifference = render(nodes: 10, firstPairInSync: false)
        #expect(showingADifference.contains("n1↔n2    0/1 in sync · 4 repaired"), "the differing pair is shown first")
        let hidingDifferences = render(nodes: 10, firstPairInSync: false, othersInSync: false)
        #expect(hidingDifferences.contains(/… [0-9]+ more/) && !hidingDifferences.contains("all in sync"))
    }

    /// Each number says what its label says: the home share (what a node stores, summing to
    /// N), hints for several targets as the top target's own count with a plus, and
    /// deliveries counted since the nodes started.
    @Test func numbersMeanWhatTheirLabelsSay() {
        #expect(DashboardView.hintsText(.init(pending: 20, byTarget: ["n4": 12, "n5": 8])) == "12→n4+")
        #expect(DashboardView.hintsText(.init(pending: 3, byTarget: ["n3": 3])) == "3→n3")
        let canvas = DashboardView.render(Self.model(), output: [], width: 80, height: 24)
        let text = canvas.lines.joined(separator: "\n")
        #expect(text.contains(" home ") && !text.contains(" owns "))
        #expect(text.contains("delivered since start"))
        let ring = Ring(
            nodes: Dictionary(
                uniqueKeysWithValues: (1...5).map { ("n\($0)", Token.defaultPositions(for: "n\($0)", count: 8)) }))
        let shares = ring.homeShare(n: 3)
        for name in ["n1", "n2", "n4"] {
            let row = canvas.lines.first { $0.contains("│ \(name) ") && $0.contains("%") } ?? ""
            #expect(row.contains(String(format: "%3.0f%%", shares[name]! * 100)), "\(name): \(row)")
        }
    }

    /// A node that left is counted nowhere: the header counts the others and names it, and
    /// its row reads `left`, not `DOWN`.
    @Test func aNodeThatLeftIsShownAsSuchAndCountedNowhere() {
        var model = Self.model()
        let index = model.nodes.firstIndex { $0.name == "n3" }!
        model.nodes[index].departed = true
        let canvas = DashboardView.render(model, output: [], width: 80, height: 24)
        #expect(canvas.lines[0].contains("4 nodes, 4 up · n3 left"))
        #expect(canvas.lines.contains { $0.contains("│ n3 ") && $0.contains("left") && !$0.contains("DOWN") })
    }

    @Test func longOutputLinesWrapInsteadOfBeingCut() {
        let long = "» " + String(repeating: "abcdefghij", count: 12) + "END"
        let canvas = DashboardView.render(Self.model(), output: [long], width: 80, height: 24)
        #expect(canvas.lines.contains { $0.hasSuffix("END") })
    }

    @Test func asciiFallbackUsesNoOtherCharacters() {
        let canvas = DashboardView.render(
            Self.model(), output: [], width: 100, height: 30, options: .init(unicode: false))
        #expect(canvas.lines.joined().unicodeScalars.allSatisfy { $0.isASCII })
    }

    @Test func tooSmallSaysSoAndHelpOverlayListsEveryCommand() {
        let small = DashboardView.render(Self.model(), output: [], width: 40, height: 10)
        #expect(small.lines[0].contains("too small"))
        // The overlay scrolls: page through it as PgDn does, to its end.
        var text = ""
        var options = DashboardView.Options(help: true)
        for _ in 0..<20 {
            let help = DashboardView.render(Self.model(), output: [], width: 80, height: 24, options: options)
            #expect(help.lines.allSatisfy { $0.count <= 80 })
            text += help.lines.joined(separator: "\n")
            options.helpOffset += 20
            options = DashboardView.clamped(options, model: Self.model(), output: [], width: 80, height: 24)
        }
        for entry in Command.reference { #expect(text.contains(entry.usage), "help overlay misses \(entry.name)") }
        // A legend for every column of the node table and every letter of the gossip matrix.
        for word in ["state", "tok", "home", "keys", "hints→", "rps", "p99ms", "sync", "repairing", "◆", "0↻"] {
            #expect(text.contains("\n│ \(word) "), "help overlay explains no \(word)")
        }
        for letter in ["U ", "D ", "J  L"] { #expect(text.contains("│ \(letter)"), "no legend for \(letter)") }
    }

    @Test func everySizeFromMinimumToLargeRendersWithinBounds() {
        let model = Self.model()
        for width in stride(from: 60, through: 200, by: 7) {
            for height in stride(from: 16, through: 60, by: 5) {
                let canvas = DashboardView.render(model, output: ["x"], width: width, height: height)
                #expect(canvas.lines.count == height)
                #expect(canvas.lines.allSatisfy { $0.count <= width })
            }
        }
    }

    @Test func completionOffersCommandsNodesAndKeys() {
        let nodes = ["n1", "n2", "n3"]
        let keys = ["cart:ann", "cart:bob", "user7"]
        #expect(Completion.candidates(words: [], prefix: "pre", nodes: nodes, keys: keys) == ["preflist"])
        #expect(Completion.candidates(words: ["kill"], prefix: "n", nodes: nodes, keys: keys) == nodes)
        #expect(
            Completion.candidates(words: ["get"], prefix: "cart:", nodes: nodes, keys: keys) == [
                "cart:ann", "cart:bob",
            ])
        #expect(
            Completion.candidates(words: ["partition"], prefix: "n1,n", nodes: nodes, keys: keys) == [
                "n1,n1", "n1,n2", "n1,n3",
            ])
        #expect(Completion.candidates(words: ["trace"], prefix: "o", nodes: nodes, keys: keys) == ["on", "off"])
        #expect(Completion.candidates(words: ["put", "cart:ann"], prefix: "b", nodes: nodes, keys: keys).isEmpty)
    }

    @Test func everyDemoInTheRepositoryParses() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Demos").path
        let demos = Demo.list(in: directory)
        #expect(
            Set(demos.map(\.name)) == [
                "vector-clocks", "hinted-handoff", "merkle-repair", "node-join", "shopping-cart", "sloppy-vs-strict",
                "latency-and-quorums",
            ])
        for demo in demos {
            #expect(demo.steps.contains { if case .expect = $0 { true } else { false } }, "\(demo.name) checks itself")
        }
        #expect(throws: CommandError.self) { try Demo.parse(name: "bad", text: "cluster 3\nfrobnicate") }
        #expect(throws: CommandError.self) { try Demo.parse(name: "bad", text: "wait n1 sideways") }
    }
}
