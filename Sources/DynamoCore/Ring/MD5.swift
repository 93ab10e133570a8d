import Crypto

/// MD5 (RFC 1321), used only to place keys and tokens on the ring, hash Merkle leaves and
/// check the store's seal: spread, not security.
///
/// swift-crypto's `Insecure.MD5` (BoringSSL's): it measured 2.3x faster than the
/// hand-written MD5 this replaced, with one allocation instead of five (README,
/// "Micro-benchmarks": 301 vs 702 ns for a 10-byte key, 391 vs 852 ns for 100 bytes). The
/// system libcrypto's, already linked for HMAC, was slower still (812 and 1,744 ns: its
/// EVP layer's overhead).
public enum MD5 {
    /// The 16-byte digest of `bytes`.
    public static func digest(_ bytes: some Collection<UInt8>) -> [UInt8] {
        let hash: Insecure.MD5Digest =
            bytes.withContiguousStorageIfAvailable { Insecure.MD5.hash(data: UnsafeRawBufferPointer($0)) }
            ?? Insecure.MD5.hash(data: Array(bytes))
        return Array(hash)
    }
}
