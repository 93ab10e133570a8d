import Foundation

/// A strict reader of the Prometheus text exposition format, version 0.0.4
/// (prometheus.io/docs/instrumenting/exposition_formats): what a scrape of `/metrics` must
/// parse as. It refuses anything the format does not allow: a bad metric or label name, an
/// unescaped or unknown escape in a label value or help text, a value that is not a float,
/// a family whose samples are not in one group, a TYPE or HELP given twice or after the
/// family's samples, a duplicate series, a histogram without `+Inf`, with buckets that
/// go down, or whose `+Inf` bucket is not its `_count`, and a text not ending in a newline.
struct PrometheusText {
    struct Sample: Hashable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    struct ParseError: Error, CustomStringConvertible {
        var line: Int
        var reason: String
        var description: String { "line \(line): \(reason)" }
    }

    private(set) var samples: [Sample] = []
    private(set) var types: [String: String] = [:]
    private(set) var help: [String: String] = [:]

    /// The value of the series `name` with exactly `labels` (nil: no such series).
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    /// The sum over every series of `name` whose labels include `matching`.
    func sum(_ name: String, matching: [String: String] = [:]) -> Double {
        samples.filter { sample in
            sample.name == name && matching.allSatisfy { sample.labels[$0.key] == $0.value }
        }.reduce(0) { $0 + $1.value }
    }

    init(_ text: String) throws(ParseError) {
        guard text.isEmpty || text.hasSuffix("\n") else { throw ParseError(line: 0, reason: "the text must end in a newline") }
        var finished: Set<String> = []  // families whose group of samples ended
        var current: String?  // the family of the last sample
        var seen: Set<String> = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        for (index, line) in lines.enumerated() {
            let number = index + 1
            func fail(_ reason: String) -> ParseError { ParseError(line: number, reason: "\(reason): \(line)") }
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
                guard parts.count >= 3, parts[0] == "#", parts[1] == "HELP" || parts[1] == "TYPE" else { continue }
                let name = String(parts[2])
                guard Self.isMetricName(name) else { throw fail("bad metric name") }
                guard !finished.contains(name), current != name else { throw fail("\(parts[1]) after the family's samples") }
                if parts[1] == "TYPE" {
                    guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3])
                    else { throw fail("bad type") }
                    guard types.updateValue(String(parts[3]), forKey: name) == nil else { throw fail("second TYPE") }
                } else {
                    let text = parts.count == 4 ? String(parts[3]) : ""
                    guard let unescaped = Self.unescape(text, quotes: false) else { throw fail("bad escape in help") }
                    guard help.updateValue(unescaped, forKey: name) == nil else { throw fail("second HELP") }
                }
                continue
            }
            guard let sample = Self.sample(line) else { throw fail("not a sample") }
            let family = family(of: sample.name)
            if family != current {
                if let current { finished.insert(current) }
                guard !finished.contains(family) else { throw fail("the samples of \(family) are not in one group") }
                current = family
            }
            let key = sample.name + "{" + sample.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            guard seen.insert(key).inserted else { throw fail("duplicate series") }
            if types[family] == "histogram" {
                guard sample.name != family else { throw fail("a histogram's samples are _bucket, _sum and _count") }
                if sample.name == family + "_bucket" {
                    guard let le = sample.labels["le"], le == "+Inf" || Double(le) != nil else { throw fail("bucket without le") }
                }
            } else if types[family] == "counter" {
                guard sample.value >= 0 || sample.value.isNaN else { throw fail("negative counter") }
            }
            samples.append(sample)
        }
        try checkHistograms()
    }

    /// The family a sample belongs to: its name, or a histogram's or summary's base name.
    private func family(of name: String) -> String {
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            let base = String(name.dropLast(suffix.count))
            if ["histogram", "summary"].contains(types[base]) { return base }
        }
        return name
    }

    private func checkHistograms() throws(ParseError) {
        for (family, type) in types where type == "histogram" {
            var series: [[String: String]: [(le: Double, count: Double)]] = [:]
            for sample in samples where sample.name == family + "_bucket" {
                var labels = sample.labels
                let le = labels.removeValue(forKey: "le")!
                series[labels, default: []].append((le == "+Inf" ? .infinity : Double(le)!, sample.value))
            }
            for (labels, buckets) in series {
                let sorted = buckets.sorted { $0.le < $1.le }
                guard sorted.last?.le == .infinity else {
                    throw ParseError(line: 0, reason: "\(family)\(labels) has no +Inf bucket")
                }
                guard zip(sorted, sorted.dropFirst()).allSatisfy({ $0.count <= $1.count }) else {
                    throw ParseError(line: 0, reason: "\(family)\(labels) buckets are not cumulative")
                }
                guard let count = value(family + "_count", labels), count == sorted.last!.count,
                    value(family + "_sum", labels) != nil
                else { throw ParseError(line: 0, reason: "\(family)\(labels): _count or _sum missing or not the +Inf bucket") }
            }
        }
    }

    static func isMetricName(_ name: some StringProtocol) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCIILetter || first == "_" || first == ":" else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" || $0 == ":" }
    }

    static func isLabelName(_ name: some StringProtocol) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCIILetter || first == "_" else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" }
    }

    /// `\\` and `\n` (and `\"` in label values) are the only escapes.
    static func unescape(_ text: String, quotes: Bool) -> String? {
        var out = ""
        var escaping = false
        for character in text {
            if escaping {
                switch character {
                case "\\": out.append("\\")
                case "n": out.append("\n")
                case "\"" where quotes: out.append("\"")
                default: return nil
                }
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else if character == "\"" && quotes {
                return nil
            } else {
                out.append(character)
            }
        }
        return escaping ? nil : out
    }

    /// `name{label="value",...} value [timestamp]` (nil: not that).
    static func sample(_ line: Substring) -> Sample? {
        var rest = line[...]
        let name = rest.prefix { $0 != "{" && $0 != " " }
        guard isMetricName(name) else { return nil }
        rest = rest.dropFirst(name.count)
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                let label = rest.prefix { $0 != "=" }
                guard isLabelName(label), labels[String(label)] == nil else { return nil }
                rest = rest.dropFirst(label.count)
                guard rest.hasPrefix("=\"") else { return nil }
                rest = rest.dropFirst(2)
                // The value runs to the first quote not escaped.
                var raw = ""
                var escaped = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if character == "\"" && !escaped { break }
                    escaped = character == "\\" && !escaped
                    raw.append(character)
                }
                guard let value = unescape(raw, quotes: true) else { return nil }
                labels[String(label)] = value
                if rest.first == "," { rest = rest.dropFirst() } else if rest.first != "}" { return nil }
            }
            rest = rest.dropFirst()
        }
        guard rest.first == " " else { return nil }
        let fields = rest.dropFirst().split(separator: " ", omittingEmptySubsequences: false)
        guard (1...2).contains(fields.count), let value = float(fields[0]) else { return nil }
        if fields.count == 2 { guard Int64(fields[1]) != nil else { return nil } }
        return Sample(name: String(name), labels: labels, value: value)
    }

    /// A Go `ParseFloat` value: decimal or exponent notation, `NaN`, `+Inf`, `-Inf`.
    static func float(_ text: Substring) -> Double? {
        switch text {
        case "NaN": return .nan
        case "+Inf", "Inf": return .infinity
        case "-Inf": return -.infinity
        default:
            guard !text.isEmpty, text.allSatisfy({ "0123456789.eE+-".contains($0) }) else { return nil }
            return Double(text)
        }
    }
}

extension Unicode.Scalar {
    fileprivate var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
