import DynamoCore

/// The layout of the engine's keys, in one place (the on-disk format: never change it
/// without a migration). A prefix byte says what a record is; data, departure marks and
/// hints then carry the key's 16-byte ring position, so a scan in key order walks the ring:
///
///     meta       0x00 name
///     data       0x01 position key
///     hint       0x02 position length(2, big-endian) key target
///     departure  0x03 position key
enum StorageKey {
    static let meta: UInt8 = 0x00
    static let data: UInt8 = 0x01
    static let hint: UInt8 = 0x02
    static let departure: UInt8 = 0x03

    /// Prefix and ring position: where the key itself starts in a data or departure record.
    static let keyOffset = 1 + RingPosition.byteCount
    /// Where a hint's key starts, after its two length bytes.
    static let hintKeyOffset = keyOffset + 2

    static func meta(_ name: String) -> [UInt8] { [meta] + Array(name.utf8) }
    static func data(_ key: [UInt8]) -> [UInt8] { [data] + RingPosition.of(key: key).bytes + key }
    static func departure(_ key: [UInt8]) -> [UInt8] { [departure] + RingPosition.of(key: key).bytes + key }

    /// Every record of one kind lies in [prefix, prefix + 1).
    static func all(_ prefix: UInt8) -> (from: [UInt8], to: [UInt8]) { ([prefix], [prefix + 1]) }

    /// The key of a data record.
    static func dataKey(_ storageKey: [UInt8]) -> [UInt8] { Array(storageKey[keyOffset...]) }
    /// The ring position of a data record.
    static func position(_ storageKey: [UInt8]) -> RingPosition {
        RingPosition(bytes: storageKey[1..<keyOffset])
    }

    /// The data records with positions in (start, end] lie in these spans of storage keys
    /// (two when the range wraps past the top of the ring); a span may hold records just
    /// outside the range, which the caller filters by `position`.
    static func dataSpans(start: RingPosition, end: RingPosition) -> [(from: [UInt8], to: [UInt8])] {
        let low = [data] + start.bytes
        let high = end.value == .max ? [data + 1] : [data] + RingPosition(end.value + 1).bytes
        return start < end ? [(low, high)] : [(low, [data + 1]), ([data], high)]
    }

    /// Every hint of `key`, for any target, starts with this. The key's length is stored in
    /// two bytes: longer keys are refused (peers and clients never send them:
    /// `KeyLimits.absoluteMaxKeyBytes`).
    static func hintPrefix(for key: [UInt8]) throws(StorageError) -> [UInt8] {
        guard let length = UInt16(exactly: key.count) else {
            throw StorageError("a key of \(key.count) bytes cannot be kept as a hint (limit 65535)")
        }
        return [hint] + RingPosition.of(key: key).bytes + [UInt8(length >> 8), UInt8(length & 0xff)] + key
    }

    static func hint(for key: [UInt8], target: NodeName) throws(StorageError) -> [UInt8] {
        try hintPrefix(for: key) + Array(target.utf8)
    }

    /// The key and target of a hint record; nil for anything else or a damaged one.
    static func parseHint(_ storageKey: [UInt8]) -> (key: [UInt8], target: NodeName)? {
        guard storageKey.count >= hintKeyOffset, storageKey[0] == hint else { return nil }
        let length = Int(storageKey[keyOffset]) << 8 | Int(storageKey[keyOffset + 1])
        guard storageKey.count > hintKeyOffset + length else { return nil }
        let key = Array(storageKey[hintKeyOffset..<(hintKeyOffset + length)])
        return (key, String(decoding: storageKey[(hintKeyOffset + length)...], as: UTF8.self))
    }
}
