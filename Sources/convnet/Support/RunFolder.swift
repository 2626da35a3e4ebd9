import ConvNet
import Foundation

/// What a `--out` folder holds, before a run writes into it.
enum RunFolder: Equatable {
    /// Missing or empty.
    case new
    /// Only the metrics of a run that stopped before its first checkpoint (and stale temporary files):
    /// a new run may start over in it.
    case restartable
    /// A run with a checkpoint: continue it with `--resume`.
    case run
    /// Other files (the names found): not ours to overwrite.
    case foreign([String])

    /// The files a run writes before its first checkpoint.
    static let firstFiles: Set<String> = [RunMetrics.csvFileName, RunMetrics.jsonLinesFileName]

    static func inspect(_ directory: URL) throws -> RunFolder {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) else { return .new }
        guard isDirectory.boolValue else {
            throw CommandError("\(directory.path) is a file, not a folder; give --out a folder for the run")
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        } catch {
            throw CommandError("cannot list the folder \(directory.path): \(plainWords(error))")
        }
        if names.isEmpty { return .new }
        if names.contains("checkpoint.npz") { return .run }
        let others = names.filter { !firstFiles.contains($0) && !isTemporary($0) }
        // Both files, and metrics.csv starting with ConvNet's header: a metrics.csv of the user's own is not taken for a run.
        if others.isEmpty && names.contains(RunMetrics.csvFileName) && names.contains(RunMetrics.jsonLinesFileName)
            && startsWithMetricsHeader(directory.appendingPathComponent(RunMetrics.csvFileName)) {
            return .restartable
        }
        return .foreign(others.isEmpty ? names : others)
    }

    /// Whether the file's first line is the header `MetricsWriter` writes.
    static func startsWithMetricsHeader(_ url: URL) -> Bool {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return false }
        defer { try? handle.close() }
        let header = Data((RunMetrics.csvHeader + "\n").utf8)
        return (try? handle.read(upToCount: header.count)) == header
    }

    /// A temporary file of an atomic write (`.checkpoint.npz.1234.tmp`), left behind when a process was
    /// killed while writing.
    static func isTemporary(_ name: String) -> Bool { name.hasPrefix(".") && name.hasSuffix(".tmp") }

    /// Removes the temporary files that killed writes left in a run folder (none are in use: one run
    /// writes a folder at a time).
    static func removeStaleTemporaries(in directory: URL) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return }
        for name in names where isTemporary(name) {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
    }
}

/// An error in plain words: Foundation's and the JSON coders' errors without their domains and coding
/// paths' internals (`ConvNet.plainDescription`).
func plainWords(_ error: Error) -> String { plainDescription(error) }
