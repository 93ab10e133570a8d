import ArgumentParser
import DynamoConsole
import DynamoLauncher
import DynamoTerminal
import Foundation

/// `dynamo repl`: the console's command line without the dashboard; also runs scripts.
struct Repl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Type commands at a live cluster (help lists them); runs a script from a file or stdin.")

    @OptionGroup var options: ClusterOptions
    @Option(help: "HTTP address (HOST:PORT) of a node of a running cluster to attach to.") var attach: String?
    @Argument(help: "A file of commands, one per line (default: standard input).") var script: String?

    func run() async throws {
        var started: LocalCluster?
        let control: any ClusterControl
        if let attach {
            control = try await AttachedCluster(address: attach)
        } else {
            try ClusterState.ensureFree(options.dir)
            let cluster = try options.makeCluster(exitWithParent: true)
            FileHandle.standardError.write(Data("starting \(options.nodes) nodes...\n".utf8))
            try await cluster.start(count: options.nodes)
            try ClusterState.follow(cluster, owner: getpid(), in: options.dir)
            started = cluster
            control = cluster
        }
        defer {
            started?.onChange = nil
            started?.stopAll()
            if started != nil { try? FileManager.default.removeItem(atPath: ClusterState.path(options.dir)) }
        }
        let session = ReplSession(cluster: control)
        let interactive = script == nil && isatty(0) == 1
        var lines: [String]? = nil
        if let script {
            guard let text = try? String(contentsOfFile: script, encoding: .utf8) else {
                throw ValidationError("cannot read \(script)")
            }
            lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        }
        await runPrompt(session, script: lines, interactive: interactive)
    }
}

/// The console's read-run-print loop, shared by `dynamo console` and `dynamo repl`: lines
/// come from `script` (if given) or standard input. Interactive runs show a prompt;
/// scripts echo each command before its output. `#` starts a comment line.
func runPrompt(_ session: ReplSession, script lines: [String]?, interactive: Bool) async {
    var index = 0
    while true {
        let line: String?
        if let lines {
            line = index < lines.count ? lines[index] : nil
            index += 1
        } else {
            line =
                interactive
                ? readEditedLine(prompt: session.prompt, nodes: session.cluster.nodeNames, keys: session.recentKeys)
                : readLine()
        }
        guard let line else { break }
        if line.hasPrefix("#") { continue }
        if !interactive, !line.trimmingCharacters(in: .whitespaces).isEmpty { say("\(session.prompt)\(line)") }
        let (output, quit) = await session.run(line)
        for text in output { say(text) }
        if quit { break }
    }
}
