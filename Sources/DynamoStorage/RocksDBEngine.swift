import CRocksDB
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// The durable engine: RocksDB with its write-ahead log on.
///
/// Every write goes through the WAL before it is acknowledged, so it survives `kill -9`
/// (the OS has the bytes); `sync: true` additionally fsyncs it (survives power loss).
/// RocksDB's own LOCK file stops two processes from opening one data dir.
///
/// A damaged write-ahead log is refused by default (`strictLog`: any record that fails its
/// checksum fails the open, however recent); the caller may then open it in RocksDB's
/// point-in-time mode, recovered to the last consistent point, never past a hole, knowing
/// it lost the rest. `StoreSeal` catches the losses a log cannot show (a truncated MANIFEST).
public final class RocksDBEngine: StorageEngine, @unchecked Sendable {
    // RocksDB handles are thread-safe for concurrent get/put/iterate. The database handle
    // is swapped only by `reopen()`, under the write side of `lock`; every use holds the
    // read side. The option handles are freed in deinit, after every user is gone.
    private var handle: OpaquePointer?
    private var closedBecause = ""
    /// Set by the first failed write, cleared by `reopen()`: RocksDB must not be written
    /// again after a failed log append (Debian's build asserts, and the process aborts, when
    /// its log writer is used after an error), so the engine refuses writes itself.
    /// Held across each write, so no write is inside RocksDB when another's failure sets
    /// `writeFault` (a write already queued behind a failed log append would be the one to
    /// touch the broken log writer).
    private let writeFault = NIOLockedValueBox<String?>(nil)
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    private let options: OpaquePointer
    private let readOptions: OpaquePointer
    private let writeOptions: OpaquePointer
    private let syncWriteOptions: OpaquePointer
    public let path: String

    /// - Parameter strictLog: fail the open on any damaged log record (else recover to the
    ///   last consistent point).
    public init(path: String, strictLog: Bool = true) throws(StorageError) {
        self.path = path
        options = rocksdb_options_create()
        rocksdb_options_set_create_if_missing(options, 1)
        rocksdb_options_increase_parallelism(options, 2)
        rocksdb_options_set_max_open_files(options, 256)
        rocksdb_options_set_paranoid_checks(options, 1)
        rocksdb_options_set_wal_recovery_mode(options, strictLog ? 1 : 2)  // kAbsoluteConsistency : kPointInTime
        // RocksDB's own LOG file gets only its header (the options, at open): Debian's
        // librocksdb is built with assertions, and its logger aborts the process on the
        // line after one that failed on a full disk. The node logs storage faults itself.
        rocksdb_options_set_info_log_level(options, 5)  // HEADER_LEVEL
        rocksdb_options_set_keep_log_file_num(options, 4)
        // Most reads of a write's path miss (a new key, its hints, its departure mark):
        // Bloom filters answer those from memory, in the memtable and in each table file.
        let table = rocksdb_block_based_options_create()
        rocksdb_block_based_options_set_filter_policy(table, rocksdb_filterpolicy_create_bloom_full(10))
        rocksdb_block_based_options_set_whole_key_filtering(table, 1)
        rocksdb_options_set_block_based_table_factory(options, table)
        rocksdb_block_based_options_destroy(table)
        rocksdb_options_set_memtable_prefix_bloom_size_ratio(options, 0.1)
        rocksdb_options_set_memtable_whole_key_filtering(options, 1)
        // (Pipelined writes gain nothing here: the store writes one batch at a time.)
        readOptions = rocksdb_readoptions_create()
        writeOptions = rocksdb_writeoptions_create()
        syncWriteOptions = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(syncWriteOptions, 1)
        lock = .allocate(capacity: 1)
        pthread_rwlock_init(lock, nil)
        var error: UnsafeMutablePointer<CChar>?
        let handle = rocksdb_open(options, path, &error)
        if let message = Self.take(error) {
            // Every property is set, so deinit runs and frees the options and the lock.
            throw StorageError("cannot open RocksDB at \(path): \(message)")
        }
        self.handle = handle
    }

    deinit {
        if let handle { rocksdb_close(handle) }
        pthread_rwlock_destroy(lock)
        lock.deallocate()
        rocksdb_options_destroy(options)
        rocksdb_readoptions_destroy(readOptions)
        rocksdb_writeoptions_destroy(writeOptions)
        rocksdb_writeoptions_destroy(syncWriteOptions)
    }

    /// Runs `body` with the open database handle (shared with other users, never with
    /// a `reopen()`).
    private func withDB<T>(_ body: (OpaquePointer) throws(StorageError) -> T) throws(StorageError) -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        guard let handle else { throw StorageError("the store at \(path) is closed: \(closedBecause)") }
        return try body(handle)
    }

    /// Table files plus memtables (RocksDB's own figures; no I/O). The write-ahead log is
    /// not counted: its records are in the memtables too.
    public var approximateBytes: UInt64? {
        try? withDB { db in
            var tables: UInt64 = 0
            var memtables: UInt64 = 0
            guard rocksdb_property_int(db, "rocksdb.total-sst-files-size", &tables) == 0,
                rocksdb_property_int(db, "rocksdb.cur-size-all-mem-tables", &memtables) == 0
            else { return nil }
            return tables &+ memtables
        }
    }

    /// The sequence number of the last write the store holds (RocksDB numbers every write);
    /// nil while the store is closed.
    public var latestSequence: UInt64? { try? withDB { rocksdb_get_latest_sequence_number($0) } }

    /// Free bytes where the store at `path` lives, and what reopening or repairing it needs:
    /// room to replay the write-ahead logs into a table file, plus a margin. Doing either on
    /// a full disk is worse than waiting: RocksDB then fails mid-write, and Debian's build
    /// aborts.
    public static func roomToRecover(path: String) -> (free: UInt64, needed: UInt64) {
        var stats = statvfs()
        let free = statvfs(path, &stats) == 0 ? UInt64(stats.f_bavail) * UInt64(stats.f_frsize) : 0
        var logs: UInt64 = 0
        if let directory = opendir(path) {
            defer { closedir(directory) }
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) {
                    String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
                }
                guard name.hasSuffix(".log") else { continue }
                var info = stat()
                if stat(path + "/" + name, &info) == 0 { logs += UInt64(max(0, info.st_size)) }
            }
        }
        return (free, logs + (1 << 20))
    }

    /// Closes the store for good (the node is stopping): RocksDB flushes what it must and
    /// stops its background threads. Left open, a process that exits while a flush runs
    /// can abort in RocksDB's static destructors. Later calls say it is closed.
    public func close() {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        if let handle { rocksdb_close(handle) }
        handle = nil
        closedBecause = "the node stopped"
    }

    /// Closes and opens the store again. After a failed write-ahead-log append (a full
    /// disk) RocksDB refuses every write until it is reopened; its C API has no resume.
    /// Users wait while this runs; if the open fails the store stays closed (every call
    /// says why) until a later `reopen()` succeeds.
    public func reopen() throws(StorageError) {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        if let handle { rocksdb_close(handle) }
        handle = nil
        writeFault.withLockedValue { $0 = nil }
        // A log append that failed mid-record (the full disk) leaves a torn tail that was
        // never acknowledged: recover to the last whole record rather than refuse.
        rocksdb_options_set_wal_recovery_mode(options, 2)
        var error: UnsafeMutablePointer<CChar>?
        let reopened = rocksdb_open(options, path, &error)
        if let message = Self.take(error) {
            closedBecause = "reopening it failed: \(message)"
            throw StorageError("cannot reopen RocksDB at \(path): \(message)")
        }
        handle = reopened
    }

    /// Runs RocksDB's repair on a store that cannot be opened or read (a damaged SST file
    /// or MANIFEST): it rebuilds the MANIFEST from the files, keeping every record that
    /// still reads back and setting aside what does not (in `lost/`). Some data may be gone
    /// afterwards, so the node refills from its replicas.
    public static func repair(path: String) throws(StorageError) {
        let options = rocksdb_options_create()
        defer { rocksdb_options_destroy(options) }
        rocksdb_options_set_info_log_level(options, 5)  // as in init: no log lines to fail on a full disk
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
        let (value, length, error) = try withDB { db in
            var error: UnsafeMutablePointer<CChar>?
            var length = 0
            let value = key.withUnsafeBufferPointer { k in
                k.withMemoryRebound(to: CChar.self) {
                    rocksdb_get(db, readOptions, $0.baseAddress, k.count, &length, &error)
                }
            }
            return (value, length, error)
        }
        if let message = Self.take(error) { throw StorageError("RocksDB get failed: \(message)") }
        guard let value else { return nil }
        defer { rocksdb_free(value) }
        return value.withMemoryRebound(to: UInt8.self, capacity: length) {
            Array(UnsafeBufferPointer(start: $0, count: length))
        }
    }

    /// Runs a write unless an earlier one failed; a failure stops the writes that follow.
    private func write(
        _ what: String, _ body: (OpaquePointer, inout UnsafeMutablePointer<CChar>?) -> Void
    ) throws(StorageError) {
        try withDB { db throws(StorageError) in
            let failure = writeFault.withLockedValue { fault -> StorageError? in
                if let fault {
                    return StorageError(
                        "RocksDB \(what) refused: writes stopped after an I/O error (\(fault)) until the store is reopened"
                    )
                }
                var error: UnsafeMutablePointer<CChar>?
                body(db, &error)
                guard let message = Self.take(error) else { return nil }
                fault = message
                return StorageError("RocksDB \(what) failed: \(message)")
            }
            if let failure { throw failure }
        }
    }

    public func put(_ key: [UInt8], _ value: [UInt8], sync: Bool) throws(StorageError) {
        try write([.put(key: key, value: value)], sync: sync)
    }

    /// The changes as one atomic write batch: one log record, synced once (group commit).
    public func write(_ changes: [StorageChange], sync: Bool) throws(StorageError) {
        guard !changes.isEmpty else { return }
        let batch = rocksdb_writebatch_create()
        defer { rocksdb_writebatch_destroy(batch) }
        for change in changes {
            switch change {
            case .put(let key, let value):
                key.withUnsafeBufferPointer { k in
                    value.withUnsafeBufferPointer { v in
                        k.withMemoryRebound(to: CChar.self) { kc in
                            v.withMemoryRebound(to: CChar.self) { vc in
                                rocksdb_writebatch_put(batch, kc.baseAddress, kc.count, vc.baseAddress, vc.count)
                            }
                        }
                    }
                }
            case .delete(let key):
                key.withUnsafeBufferPointer { k in
                    k.withMemoryRebound(to: CChar.self) { rocksdb_writebatch_delete(batch, $0.baseAddress, $0.count) }
                }
            }
        }
        try write("write") { db, error in
            rocksdb_write(db, sync ? syncWriteOptions : writeOptions, batch, &error)
        }
    }

    public func delete(_ key: [UInt8], sync: Bool) throws(StorageError) {
        try write([.delete(key: key)], sync: sync)
    }

    public func scan(from start: [UInt8], to end: [UInt8]?, limit: Int) throws(StorageError) -> [(
        key: [UInt8], value: [UInt8]
    )] {
        try withDB { db throws(StorageError) in try scan(db, from: start, to: end, limit: limit) }
    }

    private func scan(_ db: OpaquePointer, from start: [UInt8], to end: [UInt8]?, limit: Int) throws(StorageError)
        -> [(key: [UInt8], value: [UInt8])]
    {
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
