import DynamoAPI
import Foundation
import Testing

@Suite struct EncodingTests {
    @Test func base64MatchesKnownVectors() {
        #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Base64.encode(Array("fo".utf8)) == "Zm8=")
        #expect(Base64.encode([0xfb, 0xff]) == "+/8=")
        #expect(Base64.decode("+/8=") == [0xfb, 0xff])
        #expect(Base64URL.encode([0xfb, 0xff]) == "-_8")
    }

    /// Both forms agree with Foundation's encoder at every length's remainder, decode back,
    /// and refuse what is not theirs (the other alphabet, a stray byte, an impossible length).
    @Test func base64AgreesWithFoundationAndRefusesForeignText() {
        for count in Array(0..<40) + [1 << 16, (1 << 16) + 1, (1 << 16) + 2] {
            // Every byte value shows up, in no simple order (a Weyl sequence).
            let bytes = (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 0x9E37_79B1) >> 11) }
            let standard = Data(bytes).base64EncodedString()
            #expect(Base64.encode(bytes) == standard)
            #expect(Base64.decode(standard) == bytes)
            var url = String(standard.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
            while url.hasSuffix("=") { url.removeLast() }
            #expect(Base64URL.encode(bytes) == url)
            #expect(Base64URL.decode(url) == bytes)
        }
        #expect(Base64.decode("-_8=") == nil)
        #expect(Base64URL.decode("+/8") == nil)
        #expect(Base64.decode("Zm9v\n") == nil)
        #expect(Base64.decode("Zm9vY") == nil)
        #expect(Base64.decode("Zm8===") == nil)
        #expect(Base64.decode("") == [])
    }

    @Test func percentEncodingRoundTripsEveryByte() {
        let all = (0...255).map(UInt8.init)
        #expect(PercentEncoding.decode(Substring(PercentEncoding.encode(all))) == all)
        #expect(PercentEncoding.decode("%zz") == nil)
        #expect(PercentEncoding.decode("%4") == nil)
    }
}

@Suite struct ContextHeaderTests {
    @Test func roundTripsURLSafeAndIgnoresBlanksAround() throws {
        let bytes = (0...255).map(UInt8.init)
        let text = ContextHeader.encode(bytes)
        #expect(text.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        #expect(try ContextHeader.decode(text) == bytes)
        #expect(try ContextHeader.decode(" \t\(text) ") == bytes)
        #expect(try ContextHeader.decode("  ") == [])
    }

    @Test(arguments: ["!!!", "not base64 at all", "3AEBAm4yAauJpYSgNA==x", "A", String(repeating: "A", count: 20_000)])
    func malformedTextIsAClearError(text: String) {
        #expect(throws: ContextHeaderError.self) { try ContextHeader.decode(text) }
    }

    /// The replica times header: what a node sends parses; anything else is left out,
    /// never trapped on (negative, infinite, huge, malformed).
    @Test func replicaTimesParseAndRefuseWhatIsNotThem() {
        #expect(
            ReplicaTime.parse("n1:0.000:0.412,n5>n3:1.203:-,n2:0.1:x")
                == [
                    .init(node: "n1", hintFor: nil, sentMs: 0, answeredMs: 0.412),
                    .init(node: "n5", hintFor: "n3", sentMs: 1.203, answeredMs: nil),
                    .init(node: "n2", hintFor: nil, sentMs: 0.1, answeredMs: nil, failed: true),
                ])
        for hostile in ["", ":::", "n1:-1:2", "n1:inf:2", "n1:nan:1", "n1:1:", ":1:1", "n1:1:1:1", "n1", String(repeating: "a", count: 9000)] {
            #expect(ReplicaTime.parse(hostile).isEmpty, "\(hostile.prefix(20))")
        }
        #expect(ReplicaTime.parse(Array(repeating: "n1:0:1", count: 500).joined(separator: ",")).count == 64)
        #expect(ReplicaTime.parse(nil).isEmpty)
    }

    /// The faults document keeps the `drop` contract: a drop-only answer is written as it
    /// always was, and each kind may be left out of a request.
    @Test func faultsKeepTheDropContract() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        #expect(String(decoding: try encoder.encode(FaultsDocument(drop: ["n2"])), as: UTF8.self) == #"{"drop":["n2"]}"#)
        let full = FaultsDocument(drop: [], delay: ["n3": 200], jitter: ["n3": 50], loss: ["n4": 0.1])
        #expect(
            String(decoding: try encoder.encode(full), as: UTF8.self)
                == #"{"delay":{"n3":200},"drop":[],"jitter":{"n3":50},"loss":{"n4":0.1}}"#)
        let decoded = try JSONDecoder().decode(FaultsDocument.self, from: Data(#"{"loss": {"n4": 0.25}}"#.utf8))
        #expect(decoded == FaultsDocument(drop: [], loss: ["n4": 0.25]))
        #expect(decoded.problem == nil && decoded.peers == ["n4"])
        #expect(FaultsDocument(drop: [], delay: ["n3": 60_001]).problem != nil)
        #expect(FaultsDocument(drop: [], jitter: ["n3": -1]).problem != nil)
        #expect(FaultsDocument(drop: [], delay: ["n3": -5], jitter: ["n3": 10]).problem != nil, "each on its own")
        #expect(FaultsDocument(drop: [], delay: ["n3": 10], jitter: ["n3": -5]).problem != nil)
        #expect(FaultsDocument(drop: [], loss: ["n3": .infinity]).problem != nil)
        #expect(throws: (any Error).self) { try JSONDecoder().decode(FaultsDocument.self, from: Data(#"{"delay": 5}"#.utf8)) }
    }
}
