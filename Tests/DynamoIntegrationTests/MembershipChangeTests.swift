import DynamoClient
import DynamoCore
import DynamoLauncher
import Foundation
import Testing

/// Join and leave with data, against real processes.
@Suite(.serialized) struct MembershipChangeTests {
    /// Which nodes hold each key in their own store.
    static func holders(of keys: [[UInt8]], in cluster: LocalCluster, among names: [String]) async throws
        -> [[UInt8]: Set<String>]
    {
        var result: [[UInt8]: Set<String>] = [:]
        for key in keys {
            for name in names where try await cluster.client(name).local(key) != nil {
                result[key, default: []].insert(name)
            }
        }
        return result
    }

    @Test(.timeLimit(.minutes(3))) func aNodeJoinsALoadedClusterAndTakesExactlyItsKeysThenANodeLeaves() async throws {
        try await withCluster(nodes: 4, configure: { $0.extraArguments = ["--hint-interval-ms", "200"] }) { cluster in
            let keys = (0..<120).map { "cart:\($0)".bytes }
            for (i, key) in keys.enumerated() {
                let put = try await cluster.client(cluster.names[i % 4]).put(key, value: "v\(i)".bytes, w: 3)
                #expect(put.succeeded)
            }

            // A fifth node joins: it pulls the keys of its new ranges, the old owners hand off.
            try cluster.addNode(name: "n5")
            try cluster.launch("n5")
            try await cluster.waitUntilAllSee("n5", as: "up", timeout: .seconds(30))
            var names = cluster.names
            try await LocalCluster.waitFor("every key on exactly its home nodes", timeout: .seconds(30)) {
                let holders = try await Self.holders(of: keys, in: cluster, among: names)
                for key in keys {
                    let home = Set(try await cluster.client("n1").preferenceList(key).preferenceList)
                    if holders[key] != home { return false }
                }
                return true
            }
            let owned = try await keys.asyncMap { try await cluster.client("n5").preferenceList($0).preferenceList }
                .filter { $0.contains("n5") }.count
            #expect(owned > 0, "n5 owns part of the ring")
            #expect(try await cluster.client("n5").status().keys == owned, "n5 holds exactly the keys it owns")

            // n2 leaves: it hands every range to the new owners, then exits by itself.
            let leave = try await cluster.client("n2").raw(.POST, "/admin/leave")
            #expect(leave.status == 202)
            #expect(try await cluster.waitForExit("n2") == 0)
            names.removeAll { $0 == "n2" }
            for (i, key) in keys.enumerated() {
                let read = try await cluster.client(names[i % names.count]).get(key)
                #expect(read.values == ["v\(i)".bytes], "key \(i) after n2 left")
            }
            try await LocalCluster.waitFor("every key on its N home nodes after the leave", timeout: .seconds(30)) {
                let holders = try await Self.holders(of: keys, in: cluster, among: names)
                for key in keys {
                    let home = Set(try await cluster.client("n1").preferenceList(key).preferenceList)
                    if home.contains("n2") || home.count != 3 || holders[key] != home { return false }
                }
                return true
            }
            // Every node knows n2 left: not a member any more (not `down`), listed as
            // departed, and its tokens are on no node's ring.
            let n2Tokens = Set(Token.defaultPositions(for: "n2", count: cluster.spec("n2")!.tokens).map(\.hex))
            for name in names {
                let status = try await cluster.client(name).status()
                #expect(!status.members.contains { $0.name == "n2" }, "\(name) still lists n2")
                #expect(status.departed?.contains { $0.name == "n2" } == true, "\(name) says n2 left")
                #expect(status.members.allSatisfy { n2Tokens.isDisjoint(with: $0.tokens) })
                #expect(status.members.allSatisfy { $0.status == "up" }, "\(name): \(status.members.map(\.status))")
            }
            // Started again on the same data dir, n2 joins as a new node: it pulls its
            // ranges before it is up (it once went up at once and answered "not found").
            try cluster.launch("n2")
            try await LocalCluster.waitFor("n2 up again, holding its keys", timeout: .seconds(30)) {
                guard try await cluster.client("n2").status().members.first(where: { $0.name == "n2" })?.status == "up"
                else { return false }
                return true
            }
            try await cluster.waitUntilAllSee("n2", as: "up", timeout: .seconds(30))
            let ownedAgain = try await keys.asyncMap { try await cluster.client("n1").preferenceList($0).preferenceList }
                .filter { $0.contains("n2") }.count
            let again = try await cluster.client("n2").status().keys
            let told = try await cluster.client("n2").events(since: 0).events.map(\.text)
            #expect(again == ownedAgain, "n2 pulled its ranges before going up: \(again) of \(ownedAgain); \(told)")
            for key in keys where try await cluster.client("n1").preferenceList(key).preferenceList.contains("n2") {
                #expect(try await cluster.client("n2").get(key, r: 1).values.count == 1)
            }
        }
    }

    @Test(.timeLimit(.minutes(3))) func aNodeThatLostItsDiskComesBackAsItselfAndRefillsItsRanges() async throws {
        try await withCluster { cluster in
            let keys = (0..<60).map { "item:\($0)".bytes }
            for key in keys { #expect(try await cluster.client("n1").put(key, value: key, w: 3).succeeded) }
            let tokensBefore = try await cluster.client("n1").status().members.first { $0.name == "n3" }?.tokens
            let owned = try await keys.asyncMap { try await cluster.client("n1").preferenceList($0).preferenceList }
                .filter { $0.contains("n3") }.count

            cluster.stop("n3", .kill)
            try FileManager.default.removeItem(atPath: cluster.spec("n3")!.dataDir)
            try cluster.launch("n3")
            // Others may still show n3's old row as up; n3 itself says joining until it has pulled.
            try await LocalCluster.waitFor("n3 to declare itself up", timeout: .seconds(30)) {
                try await cluster.client("n3").status().members.first { $0.name == "n3" }?.status == "up"
            }
            try await cluster.waitUntilAllSee("n3", as: "up", timeout: .seconds(30))
            let status = try await cluster.client("n3").status()
            #expect(status.members.first { $0.name == "n3" }?.tokens == tokensBefore, "same name, same tokens")
            #expect(status.keys == owned, "it pulled back exactly the keys of its ranges")
            for key in keys where try await cluster.client("n1").preferenceList(key).preferenceList.contains("n3") {
                #expect(try await cluster.client("n3").local(key)?.siblings.first?.bytes == key)
            }
        }
    }

    /// The last member refuses to leave (members that left do not count as someone to
    /// hand data to).
    @Test(.timeLimit(.minutes(2))) func theLastMemberRefusesToLeave() async throws {
        try await withCluster(nodes: 2) { cluster in
            #expect(try await cluster.client("n2").raw(.POST, "/admin/leave").status == 202)
            #expect(try await cluster.waitForExit("n2") == 0)
            try await LocalCluster.waitFor("n1 to learn n2 left", timeout: .seconds(10)) {
                try await cluster.client("n1").status().departed?.contains { $0.name == "n2" } == true
            }
            let refused = try await cluster.client("n1").raw(.POST, "/admin/leave")
            #expect(refused.status == 409, "\(refused.bodyText)")
        }
    }
}
