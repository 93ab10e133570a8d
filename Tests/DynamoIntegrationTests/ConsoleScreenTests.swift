import DynamoLauncher
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The console as a person uses it: typed into through tmux, read off the screen.
@Suite(.serialized) struct ConsoleScreenTests {
    /// Runs a command with posix_spawn and waitpid, output to a temporary file. (Foundation's
    /// Process never noticed the exit of a tmux client whose server daemonized, and a pipe
    /// would be held open by that server.)
    @discardableResult
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("tmux-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        guard posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ) == 0 else {
            throw LauncherError("cannot run \(arguments[0]) (is it installed? `make deps` installs tmux)")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1, errno == EINTR {}
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return ((status >> 8) & 0xff, output)
    }

    @discardableResult
    static func tmux(_ arguments: [String]) throws -> String {
        let result = try run(["tmux"] + arguments)
        guard result.status == 0 else { throw LauncherError("tmux \(arguments.first ?? "") failed") }
        return result.output
    }

    static func nodesRunning(under directory: String) -> Bool {
        (try? run(["pgrep", "-f", directory]))?.status == 0
    }

    @Test func theConsoleStartsNodesTakesCommandsAndLeavesNothingBehind() async throws {
        let binary = try #require(LocalCluster.siblingBinary(named: "dynamo"), "dynamo is not built")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "dynamo-screen-\(UUID().uuidString)"
        ).path
        let session = "dynamo-test-\(getpid())"
        defer {
            _ = try? Self.tmux(["kill-session", "-t", session])
            _ = try? Self.run(["pkill", "-9", "-f", directory])
            try? FileManager.default.removeItem(atPath: directory)
        }
        try Self.tmux([
            "new-session", "-d", "-s", session, "-x", "100", "-y", "40",
            "\(binary) console --nodes 3 --gossip-interval-ms 100 --dir \(directory)",
        ])
        func screen() throws -> String { try Self.tmux(["capture-pane", "-p", "-t", session]) }
        func type(_ line: String) throws { try Self.tmux(["send-keys", "-t", session, line, "Enter"]) }
        func waitForScreen(_ text: String) async throws {
            try await LocalCluster.waitFor("'\(text)' on the console screen", timeout: .seconds(30)) {
                try screen().contains(text)
            }
        }

        try await waitForScreen("ring converged")
        try await waitForScreen("dynamo>")
        try type("put cart:ann book")
        try await waitForScreen("ok: written via")
        try type("get cart:ann")
        try await waitForScreen("via n")
        #expect(try screen().contains("book"))
        try type("kill n3")
        try await waitForScreen("n3 killed")
        try type("frobnicate")
        try await waitForScreen("unknown command 'frobnicate'")
        try type("quit")
        try await LocalCluster.waitFor("every node to stop after quit", timeout: .seconds(30)) {
            !Self.nodesRunning(under: directory)
        }
    }
}
