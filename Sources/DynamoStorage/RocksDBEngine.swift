import CRocksDB

/// The durable engine: RocksDB with its write-ahead log on.
///
/// Every write goes through the WAL before it is acknowledged, so it survives `kill -9`
/// (the OS has the bytes); `sync: true` additionally fsyncs it (survives power loss).
/// RocksDB's own LOCK file stops two processes from opening one data dir.
///
/// A damaged write-ahead log is recovered to the last consistent point (RocksDB's
/// point-in-time mode), never past a hole; what that dropped is noticed by `StoreSeal`,
/// which compares the recovered sequence with the one the node last recorded.
public final class RocksDBEngine: StorageEngine, @unchecked Sendable {
    // RocksDB handles are thread-safe for concurrent get/put/iterate; they are only
    // freed in deinit, after every user is gone.
    private let db: OpaquePointer
    private let options: OpaquePointer
    private let readOptions: OpaquePointer
    private let writeOptions: OpaquePointer
    private let syncWriteOptions: OpaquePointer
    public let path: String

    public init(path: String) throws(StorageError) {
        self.path = path
        options = rocksdb_options_create()
        rocksdb_options_set_create_if_missing(options, 1)
        rocksdb_options_increase_parallelism(options, 2)
        rocksdb_options_set_max_open_files(options, 256)
        rocksdb_options_set_paranoid_checks(options, 1)
        rocksdb_options_set_wal_recovery_mode(options, 2)  // kPointInTimeRecovery
        readOptions = rocksdb_readoptions_create()
        writeOptions = rocksdb_writeoptions_create()
        syncWriteOptions = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(syncWriteOptions, 1)
        var error: UnsafeMutablePointer<CChar>?
        let handle = rocksdb_open(options, path, &error)
        if let message = Self.take(error) {
            rocksdb_options_destroy(options)
            rocksdb_readoptions_destroy(readOptions)
            rocksdb_writeoptions_destroy(writeOptions)
            rocksdb_writeoptions_destroy(syncWriteOptions)
            throw StorageError("cannot open RocksDB at \(path): \(message)")
        }
        db = handle!
    }

    deinit {
        rocksdb_close(db)
        rocksdb_options_destroy(options)
        rocksdb_readoptions_destroy(readOptions)
        rocksdb_writeoptions_destroy(writeOptions)
        rocksdb_writeoptions_destroy(syncWriteOptions)
    }

    /// The sequence number of the last write the store holds (RocksDB numbers every write).
    public var latestSequence: UInt64 { rocksdb_get_latest_sequence_number(db) }

    /// Runs RocksDB's repair on a store that cannot be opened or read (a damaged SST file
    /// or MANIFEST): it rebuilds the MANIFEST from the files, keeping every record that
    /// still reads back and setting aside what does not (in `lost/`). Some data may be gone
    /// afterwards, so the node refills from its replicas.
    public static func repair(path: String) throws(StorageError) {
        let options = rocksdb_options_create()
        defer { rocksdb_options_destroy(options) }
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_repair_db(options, path, &error)
        if let message = take(error) { throw StorageError("RocksDB repair of \(path) failed: \(message)") }
    }

    /// Frees a RocksDB error string, returning it as a Swift string.
    private static func take(_ error: UnsafeMutablePointer<CChar>?) -> String? {
        guard let error else { return nil }
        defer { rocksdb_free(error) }
        return String(cString: error)
    }

    public func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]? {
        var error: UnsafeMutablePointer<CChar>?
        var length = 0
        let value = key.withUnsafeBufferPointer { k in
            k.withMemoryRebound(to: CChar.self) {
                rocksdb_get(db, readOptions, $0.baseAddress, k.count, &length, &error)
            }
        }
        if let message = Self.take(error) { throw StorageError("RocksDB get failed: \(message)") }
        guard let value else { return nil }
        defer { rocksdb_free(value) }
        return value.withMemoryRebound(to: UInt8.self, capacity: length) {
            Array(UnsafeBufferPointer(start: $0, count: length))
        }
    }

    public func put(_ key: [UInt8], _ value: [UInt8], sync: Bool) throws(StorageError) {
        var error: UnsafeMutablePointer<CChar>?
        key.withUnsafeBufferPointer { k in
            value.withUnsafeBufferPointer { v in
                k.withMemoryRebound(to: CChar.self) { kc in
                    v.withMemoryRebound(to: CChar.self) { vc in
                        rocksdb_put(
                            db, sync ? syncWriteOptions : writeOptions, kc.baseAddress, kc.count, vc.baseAddress,
                            vc.count, &error)
                    }
                }
            }
        }
        if let message = Self.take(error) { throw StorageError("RocksDB put failed: \(message)") }
    }

    public func delete(_ key: [UInt8], sync: Bool) throws(StorageError) {
        var error: UnsafeMutablePointer<CChar>?
        key.withUnsafeBufferPointer { k in
            k.withMemoryRebound(to: CChar.self) {
                rocksdb_delete(db, sync ? syncWriteOptions : writeOptions, $0.baseAddress, $0.count, &error)
            }
        }
        if let message = Self.take(error) { throw StorageError("RocksDB delete failed: \(message)") }
    }

    public func scan(from start: [UInt8], to end: [UInt8]?, limit: Int) throws(StorageError) -> [(
        key: [UInt8], value: [UInt8]
    )] {
        let iterator = rocksdb_create_iterator(db, readOptions)!
        defer { rocksdb_iter_destroy(iterator) }
        start.withUnsafeBufferPointer { s in
            s.withMemoryRebound(to: CChar.self) { rocksdb_iter_seek(iterator, $0.baseAddress, $0.count) }
        }
        var result: [(key: [UInt8], value: [UInt8])] = []
        while result.count < limit, rocksdb_iter_valid(iterator) != 0 {
            var keyLength = 0
            var valueLength = 0
            let keyPointer = rocksdb_iter_key(iterator, &keyLength)!
            let key = keyPointer.withMemoryRebound(to: UInt8.self, capacity: keyLength) {
                Array(UnsafeBufferPointer(start: $0, count: keyLength))
            }
            if let end, !key.lexicographicallyPrecedes(end) { break }
            let valuePointer = rocksdb_iter_value(iterator, &valueLength)!
            let value = valuePointer.withMemoryRebound(to: UInt8.self, capacity: valueLength) {
                Array(UnsafeBufferPointer(start: $0, count: valueLength))
            }
            result.append((key, value))
            rocksdb_iter_next(iterator)
        }
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_iter_get_error(iterator, &error)
        if let message = Self.take(error) { throw StorageError("RocksDB scan failed: \(message)") }
        return result
    }
}
