/// Host names and addresses as the flags, peers and clients spell them ("127.0.0.1",
/// "::1", "[::1]", "db1.example"), in one place so every part reads them alike.
public enum HostAddress {
    /// An IP literal (v4, or v6 with or without brackets), as opposed to a name: TLS checks
    /// a certificate's IP entries for it, and sends no server name.
    public static func isIPLiteral(_ host: String) -> Bool {
        host.contains(":") || host.split(separator: ".").allSatisfy { UInt8($0) != nil }
    }

    /// The host without the brackets an IPv6 literal wears next to a port.
    public static func unbracketed(_ host: some StringProtocol) -> String {
        host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : String(host)
    }

    /// Only this machine can reach it.
    public static func isLoopback(_ host: String) -> Bool {
        let host = unbracketed(host)
        return host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Every address of the machine (what `--listen` may bind, never what is advertised).
    public static func isWildcard(_ host: String) -> Bool { ["0.0.0.0", "::"].contains(unbracketed(host)) }

    /// "host:port", with brackets around an IPv6 host.
    public static func joined(_ host: String, _ port: Int) -> String {
        host.contains(":") && !host.hasPrefix("[") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// "host:port" (or "[v6]:port") split; nil without a numeric port.
    public static func split(_ address: String) -> (host: String, port: Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            return nil
        }
        return (unbracketed(address[..<colon]), port)
    }
}
