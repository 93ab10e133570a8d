import DynamoFuzzing
import Foundation

// The fuzz targets as one binary: built with `-sanitize=fuzzer` it is a libFuzzer driver
// (`make fuzz-libfuzzer`); built normally it replays inputs from files, so a crash that
// libFuzzer saved can be run under the debugger. The first byte of an input picks the
// target (`FuzzTarget`), the rest is that target's input.

/// Runs one input; a broken invariant is a crash, which is what libFuzzer looks for.
func fuzzOne(_ bytes: [UInt8]) {
    guard let first = bytes.first else { return }
    let target = FuzzTarget.allCases[Int(first) % FuzzTarget.allCases.count]
    let broken = target.run(Array(bytes.dropFirst()))
    if !broken.isEmpty { fatalError("\(target): \(broken)") }
}

#if LIBFUZZER
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        guard let data else { return 0 }
        fuzzOne(Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }

    @_silgen_name("LLVMFuzzerRunDriver")
    func runFuzzerDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    /// SwiftPM links an executable's entry point under this name; hand over to libFuzzer.
    @_cdecl("dynamo_fuzz_main")
    public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
        var count = argc
        var arguments = argv
        return runFuzzerDriver(&count, &arguments, fuzzerTestOneInput)
    }
#else
    @main
    enum FuzzReplay {
        static func main() {
            let paths = CommandLine.arguments.dropFirst()
            guard !paths.isEmpty, !paths.contains("--help"), !paths.contains("-h") else {
                print("usage: dynamo-fuzz INPUT... (replays saved fuzzer inputs; see make fuzz-libfuzzer)")
                return
            }
            var missing = 0
            for path in paths {
                guard let data = FileManager.default.contents(atPath: path) else {
                    print("\(path): no such file (or not a file): skipped")
                    missing += 1
                    continue
                }
                fuzzOne(Array(data))
                print("\(path): ok")
            }
            if missing == paths.count { exit(1) }
        }
    }
#endif
