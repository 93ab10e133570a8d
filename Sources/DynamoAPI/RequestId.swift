/// `X-Dynamo-Request-Id`: names one client request in every node's log that handles it
/// (with `--log-format json`, the `request_id` field). A client may send its own; the node
/// keeps it if it is valid (`ForwardedPut.isValid(requestId:)`, in the core, which carries
/// it to other nodes), else makes one, and answers with it either way.
public enum RequestId {
    public static let header = "X-Dynamo-Request-Id"
}
