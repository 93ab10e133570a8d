import DynamoAPI
import DynamoCore
import DynamoFuzzing
import Foundation
import PropertyBased
import Testing

@testable import DynamoNode
@testable import DynamoStorage
@testable import DynamoWire

/// Fuzzes every decoder of outside bytes, and what consumes its output (`FuzzTarget`),
/// with `HostileBytes` (structured, boundary-heavy, mutated) and with plain random bytes.
///
/// A trap anywhere fails the run. `DYNAMO_FUZZ_ITERATIONS` sets the inputs per decoder
/// (default 4000: enough to hit each overflow found by hand in issue 9 several times
/// over); `make fuzz` runs 200,000. A failure prints the property-based seed to replay.
@Suite struct DecoderFuzzTests {
    static let iterations = ProcessInfo.processInfo.environment["DYNAMO_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 4000

    /// Structured inputs for one target: a seed per input, so a failing input replays.
    static func inputs(_ target: FuzzTarget) -> Generator<[UInt8], Shrink.None<[UInt8]>> {
        Generator { rng in
            var hostile = HostileBytes(seed: rng.next())
            return hostile.input(for: target)
        }
    }

    @Test(arguments: FuzzTarget.allCases)
    func decodesOrFailsCleanlyAndWhatConsumesItNeverTraps(target: FuzzTarget) async {
        let count = target == .frames ? Self.iterations / 4 : Self.iterations
        await propertyCheck(count: count, input: Self.inputs(target)) { bytes in
            let broken = target.run(bytes)
            #expect(broken.isEmpty, "\(broken)")
        }
    }

    @Test func randomBytesFailCleanlyEverywhere() async {
        let input = Generator<[UInt8], Shrink.None<[UInt8]>> { rng in
            let count = Int(rng.next() % 64)
            return (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        }
        await propertyCheck(count: Self.iterations, input: input) { bytes in
            for target in FuzzTarget.allCases { _ = target.run(bytes) }
            _ = try? PeerCodec.decode([0x02, 0x00] + bytes)
            _ = try? PeerCodec.decode([0x03, 0x00] + bytes)
            let header = try? ContextHeader.decode(String(decoding: bytes, as: UTF8.self))
            _ = header.flatMap { try? CausalContext(opening: $0, forKey: [1], with: .development) }
            _ = try? CausalContext(opening: bytes, forKey: [1], with: .development)
            _ = try? NodeIdentity.decode([1] + bytes)
            _ = StoreSeal(decoding: bytes)
            _ = StoreSeal(decoding: StoreSeal.magic + bytes)
            _ = StorageKey.parseHint([0x02] + bytes)
            _ = Base64.decode(String(decoding: bytes, as: UTF8.self))
            let text = String(decoding: bytes, as: UTF8.self)
            _ = PercentEncoding.decode(Substring(text))
            // Request targets, built from URL-ish pieces so '?', '&' and '=' come up often.
            let pieces = ["/kv/", "?", "&", "=", "r", "w", "since", "%", "%4", "/admin/status", ""]
            let target = bytes.map { pieces[Int($0) % pieces.count] }.joined()
            _ = RequestTarget.split(target)
            _ = RequestTarget.split(text)
            // The replica times header, from bytes shaped like it.
            let timePieces = ["n1", ">", ":", ",", "0.5", "-", "x", "1e308", "-1", "nan", ""]
            for time in ReplicaTime.parse(bytes.map { timePieces[Int($0) % timePieces.count] }.joined()) {
                #expect(time.sentMs.isFinite && time.sentMs >= 0 && (time.answeredMs ?? 0) >= 0)
            }
            _ = ReplicaTime.parse(text)
        }
    }
}
