/// `X-Dynamo-Request-Id`: names one client request in every node's log that handles it
/// (with `--log-format json`, the `request_id` field). A client may send its own; the node
/// keeps it if it is valid, else makes one, and answers with it either way.
public enum RequestId {
    public static let header = "X-Dynamo-Request-Id"
    public static let maxBytes = 64

    /// 1 to 64 letters, digits and `._:-`: safe to put in a log line as it is.
    public static func isValid(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= maxBytes
            && text.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                    || byte == 0x2e || byte == 0x5f || byte == 0x3a || byte == 0x2d
            }
    }
}
