import Foundation
import Testing

@testable import DynamoCore

@Suite struct ClusterKeyTests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// RFC 4231's test cases 1, 2 and 6 (a key longer than the block), and an empty message.
    @Test func hmacMatchesTheRFCVectors() {
        #expect(
            Self.hex(HMACSHA256.mac(key: [UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8)))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(
            Self.hex(HMACSHA256.mac(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(
            Self.hex(
                HMACSHA256.mac(
                    key: [UInt8](repeating: 0xaa, count: 131),
                    Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        #expect(
            Self.hex(HMACSHA256.mac(key: [], []))
                == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }

    @Test func secretsOutsideTheBoundsAreRefused() {
        #expect(throws: ClusterKeyError.tooShort(15)) { try ClusterKey(secret: [UInt8](repeating: 1, count: 15)) }
        #expect(throws: ClusterKeyError.tooLong(4097)) { try ClusterKey(secret: [UInt8](repeating: 1, count: 4097)) }
        #expect(throws: Never.self) { try ClusterKey(secret: [UInt8](repeating: 1, count: 4096)) }
    }

    /// A MAC verifies under its own label, parts and secret only.
    @Test func aMacVerifiesOnlyWhatItWasMadeFor() throws {
        let key = try ClusterKey(text: "a cluster secret of some length")
        let other = try ClusterKey(text: "another cluster secret entirely")
        let tag = key.mac("label", [[1, 2], [3]])
        #expect(key.verify(tag, "label", [[1, 2], [3]]))
        #expect(!key.verify(tag, "label", [[1], [2, 3]]))
        #expect(!key.verify(tag, "other", [[1, 2], [3]]))
        #expect(!other.verify(tag, "label", [[1, 2], [3]]))
        #expect(!key.verify(Array(tag.dropLast()), "label", [[1, 2], [3]]))
    }
}
