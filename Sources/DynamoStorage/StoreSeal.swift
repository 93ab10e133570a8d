public import DynamoCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a node last knew its store held, kept in a small file beside the store, so that a
/// store which comes back from a crash holding less is noticed instead of served.
///
/// RocksDB recovers a damaged write-ahead log to the last consistent point and opens
/// without complaint; a truncated MANIFEST can drop whole files the same way. Either way
/// acknowledged writes are gone and nothing says so. The seal records two things the store
/// cannot fake by losing data: its incarnation (random bytes written into the store when it
/// was created) and the highest write sequence it had reached. A store that no longer holds
/// its incarnation, or whose sequence went back, lost data.
///
/// The node refreshes the seal about once a second. `kill -9` loses nothing (the OS has
/// the bytes of both), so every loss after it is caught; after a power loss, writes of
/// the last second that were never fsynced can be lost without being noticed.
public struct StoreSeal: Hashable, Sendable {
    public var incarnation: [UInt8]
    public var sequence: UInt64

    /// The store's metadata entry holding its incarnation.
    public static let metadataKey = "incarnation"
    public static let fileName = "store-seal"
    static let magic = Array("DYNSEAL1".utf8)

    public init(incarnation: [UInt8], sequence: UInt64) {
        self.incarnation = incarnation
        self.sequence = sequence
    }

    /// A new store's incarnation.
    public static func newIncarnation() -> [UInt8] { (0..<16).map { _ in UInt8.random(in: .min ... .max) } }

    /// Whether the store still holds everything the seal says it had; nil if it does,
    /// otherwise what it lost, in words for the log.
    public func loss(storeIncarnation: [UInt8]?, storeSequence: UInt64) -> String? {
        guard let storeIncarnation else {
            return
                "the store no longer holds the record written when it was created (it was emptied or replaced, or lost its oldest files: a damaged MANIFEST?)"
        }
        guard storeIncarnation == incarnation else {
            return "the store is not the one this data dir had (another store was put in its place)"
        }
        guard storeSequence >= sequence else {
            return
                "the store came back with writes up to sequence \(storeSequence) but had reached \(sequence): \(sequence - storeSequence) writes are gone (a damaged write-ahead log?)"
        }
        return nil
    }

    /// Magic, incarnation, sequence and a checksum of them (so a damaged seal is told
    /// apart from a store that lost data).
    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.write(raw: Self.magic)
        w.write(bytes: incarnation)
        w.write(varint: sequence)
        return w.bytes + MD5.digest(w.bytes).prefix(8)
    }

    /// nil when the bytes are not an intact seal.
    public init?(decoding bytes: [UInt8]) {
        guard bytes.count > 8 else { return nil }
        let body = Array(bytes.dropLast(8))
        guard Array(MD5.digest(body).prefix(8)) == Array(bytes.suffix(8)) else { return nil }
        var r = ByteReader(body)
        guard (try? r.readRaw(Self.magic.count)) == Self.magic,
            let incarnation = try? r.readBytes(max: 64), let sequence = try? r.readVarint(), r.isAtEnd
        else { return nil }
        self.init(incarnation: incarnation, sequence: sequence)
    }

    /// The seal file's bytes, or nil when there is none.
    public static func read(at path: String) throws(StorageError) -> [UInt8]? {
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw StorageError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 256)
        while bytes.count < 4096 {
            let n = chunk.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw StorageError("cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return bytes
    }

    /// Replaces the seal file atomically and durably: a temporary file, fsynced, renamed
    /// over the old one, and the directory fsynced. A crash leaves the old seal or the new.
    public func write(to path: String) throws(StorageError) {
        let temporary = path + ".tmp"
        let bytes = encoded()
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw StorageError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let written = bytes.withUnsafeBytes { posixWrite(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0 else {
            let reason = written < 0 || synced != 0 ? String(cString: strerror(errno)) : "short write"
            unlink(temporary)
            throw StorageError("cannot write \(temporary): \(reason)")
        }
        guard rename(temporary, path) == 0 else {
            throw StorageError("cannot replace \(path): \(String(cString: strerror(errno)))")
        }
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let dirfd = open(directory.isEmpty ? "." : directory, O_RDONLY)
        if dirfd >= 0 {
            fsync(dirfd)
            close(dirfd)
        }
    }
}

// The seal's own `read(at:)` and `write(to:)` hide the POSIX calls of the same names.
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int { read(fd, buffer, count) }
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int { write(fd, buffer, count) }
