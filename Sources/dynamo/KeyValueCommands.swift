import ArgumentParser
import DynamoClient
import DynamoCore
import Foundation

struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read a key; siblings are shown numbered with their clocks.")

    @OptionGroup var target: NodeOption
    @Argument(help: "The key.") var key: String
    @Option(help: "Read quorum for this request.") var r: Int?
    @Flag(help: "Print the JSON sibling document.") var json = false

    func run() async throws {
        let client = DynamoClient(address: target.node)
        let result = try await client.get(Array(key.utf8), r: r)
        if json, let document = result.document {
            print(String(decoding: try JSONEncoder.pretty.encode(document), as: UTF8.self))
            return
        }
        print(Render.read(result))
        if result.status >= 400 && result.status != 404 { throw ExitCode(1) }
    }
}

struct Put: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a value.",
        discussion: """
            Without --context or --replace the write is blind: it becomes a sibling of whatever \
            the key holds (Dynamo never lets a write without context silently replace a value).
            """)

    @OptionGroup var target: NodeOption
    @Argument(help: "The key.") var key: String
    @Argument(help: "The value ('-' reads standard input).") var value: String
    @Option(help: "Context from an earlier read (X-Dynamo-Context).") var context: String?
    @Flag(help: "Read the key first and replace what was read.") var replace = false
    @Option(help: "Write quorum for this request.") var w: Int?

    func run() async throws {
        let client = DynamoClient(address: target.node)
        let bytes = value == "-" ? Array(FileHandle.standardInput.readDataToEndOfFile()) : Array(value.utf8)
        var context = self.context
        if replace && context == nil { context = try await client.get(Array(key.utf8)).context }
        let result = try await client.put(Array(key.utf8), value: bytes, context: context, w: w)
        print(Render.write(result))
        if !result.succeeded { throw ExitCode(1) }
    }
}

struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete a key (a tombstone covering what was read, or what --context covers).")

    @OptionGroup var target: NodeOption
    @Argument(help: "The key.") var key: String
    @Option(help: "Context from an earlier read; default: read the key first.") var context: String?
    @Option(help: "Write quorum for this request.") var w: Int?

    func run() async throws {
        let client = DynamoClient(address: target.node)
        var context = self.context
        if context == nil { context = try await client.get(Array(key.utf8)).context }
        let result = try await client.delete(Array(key.utf8), context: context, w: w)
        print(Render.write(result))
        if !result.succeeded { throw ExitCode(1) }
    }
}

struct Preflist: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a key's ring position and its N home nodes.")

    @OptionGroup var target: NodeOption
    @Argument(help: "The key.") var key: String

    func run() async throws {
        let document = try await DynamoClient(address: target.node).preferenceList(Array(key.utf8))
        print("hash \(document.hash)\npreference list \(document.preferenceList.joined(separator: " "))")
    }
}

/// Text for people.
enum Render {
    static func read(_ result: ReadResult) -> String {
        let via = "via \(result.coordinator ?? "?") (replies \(result.replicas.joined(separator: " ")))"
        switch result.status {
        case 200:
            let value = result.document?.siblings.first?.bytes ?? []
            return "\(printable(value))\n\(via), context \(result.context ?? "-")"
        case 300:
            var lines = ["\(result.document?.siblings.count ?? 0) siblings (context \(result.context ?? "-")):"]
            for (i, sibling) in (result.document?.siblings ?? []).enumerated() {
                let value = sibling.deleted ? "<deleted>" : printable(sibling.bytes ?? [])
                let dot = sibling.dot.map { "  (written as \($0))" } ?? ""
                lines.append("  [\(i + 1)] \(value)    clock \(clock(sibling.clock))\(dot)")
            }
            lines.append(via)
            return lines.joined(separator: "\n")
        case 404:
            return result.context == nil ? "not found \(via)" : "deleted (context \(result.context!)) \(via)"
        default:
            return "error \(result.status): \(result.error ?? "")"
        }
    }

    static func write(_ result: WriteResponse) -> String {
        if result.succeeded {
            return
                "ok: written via \(result.coordinator ?? "?") (acks \(result.replicas.joined(separator: " ")))\ncontext \(result.context ?? "-")"
        }
        return "error \(result.status): \(result.error ?? "")"
    }

    static func clock(_ clock: [String: UInt64]) -> String {
        clock.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: " ")
    }

    /// The value as text when it is printable UTF-8, else as base64.
    static func printable(_ bytes: [UInt8]) -> String {
        if let text = String(validating: bytes, as: UTF8.self),
            text.unicodeScalars.allSatisfy({
                !$0.properties.isNoncharacterCodePoint && ($0.value >= 0x20 || $0 == "\n" || $0 == "\t")
            })
        {
            return text
        }
        return "base64:" + Base64.encode(bytes)
    }
}

extension JSONEncoder {
    static var pretty: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }
}
