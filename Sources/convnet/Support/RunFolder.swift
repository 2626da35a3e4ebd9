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
        if others.isEmpty && names.contains(RunMetrics.csvFileName) { return .restartable }
        return .foreign(others.isEmpty ? names : others)
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

/// An error in plain words: Foundation's and the JSON decoder's errors without their domains and
/// coding paths' internals.
func plainWords(_ error: Error) -> String {
    switch error {
    case let error as DecodingError:
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }
            return keys.isEmpty ? "the top level" : "'\(keys.joined(separator: "."))'"
        }
        switch error {
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "it is not valid JSON" : "\(path(context)) has a value that does not fit"
        case .keyNotFound(let key, let context):
            return "'\(key.stringValue)' is missing at \(path(context))"
        case .typeMismatch(let type, let context):
            return "\(path(context)) is not a \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context)) is empty where a \(type) belongs"
        @unknown default:
            return "it is not the expected JSON"
        }
    case let described as CustomStringConvertible where !isFoundationError(error):
        return described.description
    default:
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        return ns.localizedDescription
    }
}

/// True for errors that Foundation raised (file and URL errors), whose descriptions show raw domains.
func isFoundationError(_ error: Error) -> Bool {
    if error is DecodingError || error is EncodingError || error is CocoaError { return true }
    let domain = (error as NSError).domain
    return domain == NSCocoaErrorDomain || domain == NSPOSIXErrorDomain || domain == NSURLErrorDomain
}
