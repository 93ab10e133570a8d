import DynamoCore
import DynamoSimulator
import Foundation
import Testing

/// What the cluster costs as it grows (issue 15): gossip per node and the rounds a change
/// takes to reach every node, Merkle tree memory, anti-entropy bytes as keys differ.
@Suite struct GrowthTests {
    @Test func aHeartbeatReachesEveryNodeInLogarithmicRounds() {
        for nodes in [16, 64] {
            let study = GrowthStudy.gossip(nodes: nodes, tokens: 64)
            let rounds = Int(log2(Double(nodes)).rounded(.up))
            #expect(study.roundsToReachAll <= 3 * rounds, "\(study)")
            // A whole table is about a member's tokens per member; a digest exchange sends
            // versions and changed states, never the tokens of a member the peer holds.
            #expect(study.tableBytes >= nodes * 64 * 16, "\(study)")
            #expect(study.bytesPerNodePerRound * 10 < study.tableBytes, "\(study)")
        }
    }

    @Test func aMerkleTreeTakesBoundedMemoryPerKey() {
        let bytes = GrowthStudy.merkleBytes(keys: 50_000)
        #expect(bytes > 0 && bytes / 50_000 < 1_024, "\(bytes / 50_000) bytes per key")
    }

    /// The figures in the README: `DYNAMO_GROWTH_REPORT=1 swift test --filter GrowthTests`
    /// (about a minute in a release-like build; prints, and checks only that it ran).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["DYNAMO_GROWTH_REPORT"] == "1"))
    func report() throws {
        // First, while the process has freed nothing it could reuse for the tree.
        let keys = 1_000_000
        let bytes = GrowthStudy.merkleBytes(keys: keys)
        print("GROWTH merkle \(bytes / keys) bytes per key: \(bytes >> 20) MiB per million keys")
        for nodes in ProcessInfo.processInfo.environment["DYNAMO_GROWTH_NODES"].map({
            $0.split(separator: ",").compactMap { Int($0) }
        }) ?? [100, 500] {
            let started = Date()
            let study = GrowthStudy.gossip(nodes: nodes, tokens: 64)
            print("GROWTH gossip \(study) (\(Int(Date().timeIntervalSince(started))) s to simulate)")
        }
        for differing in [1, 10, 100, 1_000] {
            let sent = try AntiEntropyCostTests.bytesToRepair(differing: differing, among: 10_000)
            print("GROWTH anti-entropy \(differing) differing keys among 10,000: \(sent) bytes")
        }
    }
}
