import DynamoAPI
import Testing

@Suite struct HostAddressTests {
    @Test func readsHostsAndAddressesAlike() {
        #expect(HostAddress.isIPLiteral("127.0.0.2") && HostAddress.isIPLiteral("::1") && HostAddress.isIPLiteral("[::1]"))
        #expect(!HostAddress.isIPLiteral("db1.example") && !HostAddress.isIPLiteral("localhost"))
        #expect(HostAddress.isLoopback("127.0.0.2") && HostAddress.isLoopback("[::1]") && HostAddress.isLoopback("localhost"))
        #expect(!HostAddress.isLoopback("10.0.0.1") && !HostAddress.isLoopback("0.0.0.0"))
        #expect(HostAddress.isWildcard("0.0.0.0") && HostAddress.isWildcard("::") && HostAddress.isWildcard("[::]"))
        #expect(HostAddress.joined("::1", 7) == "[::1]:7" && HostAddress.joined("10.0.0.1", 7) == "10.0.0.1:7")
        #expect(HostAddress.split("[::1]:7")! == ("::1", 7))
        #expect(HostAddress.split("n1:7001")! == ("n1", 7001))
        #expect(HostAddress.split("n1") == nil)
    }
}
