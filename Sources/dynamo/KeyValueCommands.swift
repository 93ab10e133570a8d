import ArgumentParser
import DynamoClient
import DynamoConsole
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

extension JSONEncoder {
    static var pretty: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }
}
