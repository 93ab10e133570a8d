import ArgumentParser

/// `dynamo`: the tool people type.
@main
struct Dynamo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dynamo",
        abstract: "Explore a Dynamo-style key-value store.",
        subcommands: [
            Console.self, Repl.self, DemoCommand.self, Get.self, Put.self, Delete.self, Preflist.self,
            ClusterCommand.self, Bench.self,
        ])
}

/// Where to send requests: a node's HTTP address.
struct NodeOption: ParsableArguments {
    @Option(name: .shortAndLong, help: "HTTP address (HOST:PORT) of the node to ask.")
    var node: String = ClusterState.defaultNodeAddress()
}
