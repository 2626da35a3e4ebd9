import Foundation

/// One training iteration (one mini-batch step).
public struct IterationMetrics: Sendable, Equatable, Codable {
    /// 1-based epoch the iteration belongs to.
    public var epoch: Int
    /// 1-based iteration count over the whole run.
    public var iteration: Int
    /// The mini-batch loss.
    public var loss: Double
    public var learningRate: Double

    public init(epoch: Int, iteration: Int, loss: Double, learningRate: Double) {
        self.epoch = epoch
        self.iteration = iteration
        self.loss = loss
        self.learningRate = learningRate
    }
}

/// The summary written at the end of an epoch. Accuracies are fractions in [0, 1].
public struct EpochMetrics: Sendable, Equatable, Codable {
    public var epoch: Int
    /// The run's iteration count when the epoch ended.
    public var iteration: Int
    /// Mean training loss over the epoch.
    public var trainLoss: Double
    public var trainAccuracy: Double
    /// nil when the run has no test set (or did not evaluate it).
    public var testAccuracy: Double?
    /// Wall-clock seconds the epoch took.
    public var seconds: Double

    public init(epoch: Int, iteration: Int, trainLoss: Double, trainAccuracy: Double, testAccuracy: Double?, seconds: Double) {
        self.epoch = epoch
        self.iteration = iteration
        self.trainLoss = trainLoss
        self.trainAccuracy = trainAccuracy
        self.testAccuracy = testAccuracy
        self.seconds = seconds
    }
}

/// A problem reading a run's metrics, with the file and what to do.
public enum MetricsError: Error, Equatable, CustomStringConvertible {
    case missingFile(path: String)
    case unreadable(path: String, reason: String)
    case unwritable(path: String, reason: String)
    case badHeader(path: String, missing: [String])
    case badRow(path: String, line: Int, message: String)

    public var description: String {
        switch self {
        case .missingFile(let path):
            return "no metrics at \(path): expected \(RunMetrics.csvFileName) (or \(RunMetrics.jsonLinesFileName)); "
                + "point at the directory given to 'convnet train --out DIR'"
        case .unreadable(let path, let reason): return "cannot read metrics file \(path): \(reason)"
        case .unwritable(let path, let reason): return "cannot write metrics to \(path): \(reason)"
        case .badHeader(let path, let missing):
            return "\(path) is not a ConvNet metrics file: its header lacks \(missing.joined(separator: ", ")); "
                + "expected '\(RunMetrics.csvHeader)'"
        case .badRow(let path, let line, let message): return "\(path), line \(line): \(message) (the file may be corrupt or truncated)"
        }
    }
}

/// The per-iteration and per-epoch metrics of one training run, as written to `metrics.csv` and
/// `metrics.jsonl` in the run directory.
///
/// CSV columns: `type,epoch,iteration,loss,learning_rate,train_loss,train_accuracy,test_accuracy,seconds`.
/// `iteration` rows fill epoch, iteration, loss and learning_rate; `epoch` rows fill epoch, iteration (the
/// last one), train_loss, train_accuracy, test_accuracy (empty when there is none) and seconds. Other
/// fields are empty. The JSON-lines file holds the same rows as objects (fields that do not apply are
/// left out; a missing test accuracy is `null`).
public struct RunMetrics: Sendable, Equatable {
    public var iterations: [IterationMetrics]
    public var epochs: [EpochMetrics]

    public static let csvFileName = "metrics.csv"
    public static let jsonLinesFileName = "metrics.jsonl"
    public static let columns = [
        "type", "epoch", "iteration", "loss", "learning_rate", "train_loss", "train_accuracy", "test_accuracy", "seconds",
    ]
    public static var csvHeader: String { columns.joined(separator: ",") }

    public init(iterations: [IterationMetrics] = [], epochs: [EpochMetrics] = []) {
        self.iterations = iterations
        self.epochs = epochs
    }

    public var isEmpty: Bool { iterations.isEmpty && epochs.isEmpty }

    // MARK: Reading

    /// Loads a run's metrics from its directory (`metrics.csv`, else `metrics.jsonl`) or from either file.
    public static func load(from url: URL) throws -> RunMetrics {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDirectory) else { throw MetricsError.missingFile(path: url.path) }
        var file = url
        if isDirectory.boolValue {
            let csv = url.appendingPathComponent(csvFileName), jsonl = url.appendingPathComponent(jsonLinesFileName)
            if fm.fileExists(atPath: csv.path) {
                file = csv
            } else if fm.fileExists(atPath: jsonl.path) {
                file = jsonl
            } else {
                throw MetricsError.missingFile(path: csv.path)
            }
        }
        let text: String
        do {
            let data = try CheckedFile.read(file)
            guard let decoded = String(data: data, encoding: .utf8) else {
                throw MetricsError.unreadable(path: file.path, reason: "not UTF-8 text")
            }
            text = decoded
        } catch let error as MetricsError {
            throw error
        } catch DataError.notAFile(_, let kind) {
            throw MetricsError.unreadable(path: file.path, reason: "it is \(kind.notAFileWords)")
        } catch DataError.io(_, let problem) {
            throw MetricsError.unreadable(path: file.path, reason: problem)
        } catch {
            throw MetricsError.unreadable(path: file.path, reason: plainDescription(error))
        }
        let parse = file.pathExtension.lowercased() == "jsonl" ? parseJSONLines : parseCSV
        do {
            return try parse(text, file.path)
        } catch let error as MetricsError {
            // A run killed while appending leaves a torn last row (no newline after it): that row is dropped.
            guard !text.hasSuffix("\n"), let end = text.lastIndex(of: "\n") else { throw error }
            guard let kept = try? parse(String(text[...end]), file.path) else { throw error }
            return kept
        }
    }

    /// Parses the CSV form. Columns are found by name, so extra columns are ignored.
    public static func parseCSV(_ text: String, source: String = "metrics.csv") throws -> RunMetrics {
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard let headerLine = lines.first(where: { !$0.isEmpty }) else {
            throw MetricsError.badHeader(path: source, missing: columns)
        }
        let header = headerLine.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        let missing = columns.filter { !header.contains($0) }
        guard missing.isEmpty else { throw MetricsError.badHeader(path: source, missing: missing) }
        let index = Dictionary(uniqueKeysWithValues: columns.map { name in (name, header.firstIndex(of: name)!) })
        var metrics = RunMetrics()
        let headerIndex = lines.firstIndex(of: headerLine)!
        for (offset, line) in lines.enumerated() where offset > headerIndex && !line.isEmpty {
            let number = offset + 1
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard fields.count >= header.count else {
                throw MetricsError.badRow(path: source, line: number, message: "\(fields.count) fields, expected \(header.count)")
            }
            var row = FieldReader(path: source, line: number)
            for name in columns { row.fields[name] = fields[index[name]!] }
            try metrics.add(row)
        }
        return metrics
    }

    /// Parses the JSON-lines form.
    public static func parseJSONLines(_ text: String, source: String = "metrics.jsonl") throws -> RunMetrics {
        var metrics = RunMetrics()
        for (offset, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let object: [String: Any]
            do {
                guard let parsed = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                    throw MetricsError.badRow(path: source, line: offset + 1, message: "not a JSON object")
                }
                object = parsed
            } catch let error as MetricsError {
                throw error
            } catch {
                throw MetricsError.badRow(path: source, line: offset + 1, message: "invalid JSON")
            }
            var row = FieldReader(path: source, line: offset + 1)
            for name in columns {
                switch object[name] {
                case let s as String: row.fields[name] = s
                case let n as NSNumber: row.fields[name] = n.stringValue
                default: row.fields[name] = ""
                }
            }
            try metrics.add(row)
        }
        return metrics
    }

    private mutating func add(_ row: FieldReader) throws {
        switch row.fields["type"]?.lowercased() ?? "" {
        case "iteration":
            iterations.append(
                IterationMetrics(
                    epoch: try row.int("epoch"), iteration: try row.int("iteration"), loss: try row.double("loss"),
                    learningRate: try row.double("learning_rate")))
        case "epoch":
            epochs.append(
                EpochMetrics(
                    epoch: try row.int("epoch"), iteration: try row.int("iteration"), trainLoss: try row.double("train_loss"),
                    trainAccuracy: try row.double("train_accuracy"), testAccuracy: try row.optionalDouble("test_accuracy"),
                    seconds: try row.double("seconds")))
        case let other:
            throw MetricsError.badRow(path: row.path, line: row.line, message: "type '\(other)' is neither 'iteration' nor 'epoch'")
        }
    }

    private struct FieldReader {
        let path: String
        let line: Int
        var fields: [String: String] = [:]

        init(path: String, line: Int) {
            self.path = path
            self.line = line
        }

        func int(_ name: String) throws -> Int {
            let s = fields[name] ?? ""
            guard let v = Int(s) else { throw MetricsError.badRow(path: path, line: line, message: "\(name) '\(s)' is not an integer") }
            return v
        }

        func double(_ name: String) throws -> Double {
            guard let v = try optionalDouble(name) else {
                throw MetricsError.badRow(path: path, line: line, message: "\(name) is empty")
            }
            return v
        }

        func optionalDouble(_ name: String) throws -> Double? {
            let s = fields[name] ?? ""
            if s.isEmpty || s == "null" { return nil }
            guard let v = Double(s) else { throw MetricsError.badRow(path: path, line: line, message: "\(name) '\(s)' is not a number") }
            return v
        }
    }

    // MARK: Writing

    /// The CSV row of an iteration (no newline).
    public static func csvLine(_ r: IterationMetrics) -> String {
        ["iteration", String(r.epoch), String(r.iteration), number(r.loss), number(r.learningRate), "", "", "", ""]
            .joined(separator: ",")
    }

    /// The CSV row of an epoch (no newline).
    public static func csvLine(_ r: EpochMetrics) -> String {
        [
            "epoch", String(r.epoch), String(r.iteration), "", "", number(r.trainLoss), number(r.trainAccuracy),
            r.testAccuracy.map(number) ?? "", number(r.seconds),
        ].joined(separator: ",")
    }

    /// The JSON-lines row of an iteration (no newline).
    public static func jsonLine(_ r: IterationMetrics) -> String {
        "{\"type\":\"iteration\",\"epoch\":\(r.epoch),\"iteration\":\(r.iteration),\"loss\":\(json(r.loss)),\"learning_rate\":\(json(r.learningRate))}"
    }

    /// The JSON-lines row of an epoch (no newline).
    public static func jsonLine(_ r: EpochMetrics) -> String {
        "{\"type\":\"epoch\",\"epoch\":\(r.epoch),\"iteration\":\(r.iteration),\"train_loss\":\(json(r.trainLoss)),"
            + "\"train_accuracy\":\(json(r.trainAccuracy)),\"test_accuracy\":\(r.testAccuracy.map(json) ?? "null"),"
            + "\"seconds\":\(json(r.seconds))}"
    }

    /// The whole CSV file, header included, rows in run order (each epoch after its iterations).
    public var csv: String { ([Self.csvHeader] + orderedRows.map { $0.csv }).joined(separator: "\n") + "\n" }
    public var jsonLines: String { orderedRows.map { $0.json }.joined(separator: "\n") + (isEmpty ? "" : "\n") }

    /// Writes both files into `directory` (created if needed), replacing earlier ones.
    public func write(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try AtomicFile.write(Data(csv.utf8), to: directory.appendingPathComponent(Self.csvFileName))
        try AtomicFile.write(Data(jsonLines.utf8), to: directory.appendingPathComponent(Self.jsonLinesFileName))
    }

    private var orderedRows: [(csv: String, json: String)] {
        var rows: [(key: (Int, Int), csv: String, json: String)] = []
        for r in iterations { rows.append(((r.iteration, 0), Self.csvLine(r), Self.jsonLine(r))) }
        for r in epochs { rows.append(((r.iteration, 1), Self.csvLine(r), Self.jsonLine(r))) }
        return rows.enumerated().sorted { a, b in
            a.element.key != b.element.key ? a.element.key < b.element.key : a.offset < b.offset
        }.map { ($0.element.csv, $0.element.json) }
    }

    /// Shortest text that reads back as the same value (a value that came from a Float prints as that Float).
    static func number(_ v: Double) -> String {
        guard v.isFinite else { return v.isNaN ? "nan" : (v > 0 ? "inf" : "-inf") }
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        let f = Float(v)
        if Double(f) == v { return "\(f)" }
        return "\(v)"
    }

    private static func json(_ v: Double) -> String { v.isFinite ? number(v) : "null" }
}

/// Appends a run's metrics to `metrics.csv` and `metrics.jsonl` as training goes. Iteration rows are
/// kept in memory and written, with the epoch row, when the epoch ends, so each epoch costs two
/// writes; call `flush()` to write pending rows earlier (for example when training stops).
public final class MetricsWriter {
    public let directory: URL
    /// Everything recorded so far (plus earlier rows when appending to an existing run).
    public private(set) var metrics: RunMetrics
    private let csv: FileHandle
    private let jsonl: FileHandle
    private var pendingCSV: [String] = []
    private var pendingJSON: [String] = []

    /// Opens the files in `directory` (created if needed). `append: false` starts fresh files;
    /// `append: true` keeps existing rows (resuming a run) and starts a file that is missing.
    public init(directory: URL, append: Bool = false) throws {
        self.directory = directory
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw MetricsError.unwritable(path: directory.path, reason: "cannot create the run directory: \(plainDescription(error))")
        }
        let csvURL = directory.appendingPathComponent(RunMetrics.csvFileName)
        let jsonURL = directory.appendingPathComponent(RunMetrics.jsonLinesFileName)
        var existing = RunMetrics()
        if append && fm.fileExists(atPath: csvURL.path) { existing = try RunMetrics.load(from: csvURL) }  // reads: its errors say so
        if !append || !fm.fileExists(atPath: csvURL.path) {
            guard fm.createFile(atPath: csvURL.path, contents: Data((RunMetrics.csvHeader + "\n").utf8)) else {
                throw MetricsError.unwritable(path: csvURL.path, reason: "cannot create the file (permissions?)")
            }
        }
        if !append || !fm.fileExists(atPath: jsonURL.path) {
            guard fm.createFile(atPath: jsonURL.path, contents: Data()) else {
                throw MetricsError.unwritable(path: jsonURL.path, reason: "cannot create the file (permissions?)")
            }
        }
        do {
            csv = try FileHandle(forWritingTo: csvURL)
            jsonl = try FileHandle(forWritingTo: jsonURL)
            try csv.seekToEnd()
            try jsonl.seekToEnd()
        } catch {
            throw MetricsError.unwritable(path: csvURL.path, reason: plainDescription(error))
        }
        metrics = existing
    }

    /// Opens the metrics of a run resumed from a checkpoint taken at `iteration`, after `epochsDone`
    /// epochs. Rows recorded after that point (the run went on past its last checkpoint before it
    /// stopped) are dropped from both files first, so the resumed run records each iteration and epoch once.
    public convenience init(resuming directory: URL, epochsDone: Int, iteration: Int) throws {
        let csvURL = directory.appendingPathComponent(RunMetrics.csvFileName)
        if FileManager.default.fileExists(atPath: csvURL.path) {
            var kept = try RunMetrics.load(from: csvURL)
            kept.iterations.removeAll { $0.iteration > iteration }
            kept.epochs.removeAll { $0.epoch > epochsDone || $0.iteration > iteration }
            do {
                try kept.write(to: directory)
            } catch {
                throw MetricsError.unwritable(path: directory.path, reason: "rewriting the metrics up to the checkpoint failed: \(plainDescription(error))")
            }
        }
        try self.init(directory: directory, append: true)
    }

    deinit {
        try? flush()
        try? csv.close()
        try? jsonl.close()
    }

    /// Records one iteration (written at the end of its epoch or on `flush()`).
    public func record(_ iteration: IterationMetrics) {
        metrics.iterations.append(iteration)
        pendingCSV.append(RunMetrics.csvLine(iteration))
        pendingJSON.append(RunMetrics.jsonLine(iteration))
    }

    /// Records an epoch and writes it with the pending iterations.
    public func record(_ epoch: EpochMetrics) throws {
        recordPending(epoch)
        try flush()
    }

    /// Records an epoch, to be written with the pending iterations at the next `flush()`.
    public func recordPending(_ epoch: EpochMetrics) {
        metrics.epochs.append(epoch)
        pendingCSV.append(RunMetrics.csvLine(epoch))
        pendingJSON.append(RunMetrics.jsonLine(epoch))
    }

    /// Where the files end now: `rollBack(to:)` cuts them back to it.
    public func mark() throws -> (csv: UInt64, jsonl: UInt64) {
        do { return (try csv.offset(), try jsonl.offset()) } catch {
            throw MetricsError.unwritable(path: directory.path, reason: plainDescription(error))
        }
    }

    /// Cuts both files back to `mark`, and forgets the rows recorded since: the rows of a checkpoint that
    /// could not be written leave with it, so the files hold what the last checkpoint has seen.
    public func rollBack(to mark: (csv: UInt64, jsonl: UInt64), keepingIterations iterations: Int, epochs: Int) throws {
        pendingCSV.removeAll()
        pendingJSON.removeAll()
        metrics.iterations.removeLast(max(metrics.iterations.count - iterations, 0))
        metrics.epochs.removeLast(max(metrics.epochs.count - epochs, 0))
        do {
            try csv.truncate(atOffset: mark.csv)
            try jsonl.truncate(atOffset: mark.jsonl)
        } catch {
            throw MetricsError.unwritable(path: directory.path, reason: "cutting the metrics back to the last checkpoint failed: \(plainDescription(error))")
        }
    }

    /// Writes pending rows to both files.
    public func flush() throws {
        guard !pendingCSV.isEmpty else { return }
        let csvText = pendingCSV.joined(separator: "\n") + "\n"
        let jsonText = pendingJSON.joined(separator: "\n") + "\n"
        pendingCSV.removeAll(keepingCapacity: true)
        pendingJSON.removeAll(keepingCapacity: true)
        do {
            try csv.write(contentsOf: Data(csvText.utf8))
            try jsonl.write(contentsOf: Data(jsonText.utf8))
        } catch {
            throw MetricsError.unwritable(path: directory.path, reason: "writing metrics failed: \(plainDescription(error))")
        }
    }
}
