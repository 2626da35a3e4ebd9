import Foundation

/// Problems with data files, data sets and downloads. Each message is one line that names the file (or data
/// set) and says what is wrong and, where possible, what to do about it.
public enum DataError: Error, Equatable, CustomStringConvertible {
    /// A file that should be there is not.
    case fileNotFound(path: String, hint: String)
    /// A file ends before its header says it should.
    case truncated(path: String, expectedBytes: Int, actualBytes: Int)
    /// A file does not start with the magic number of its format.
    case badMagic(path: String, expected: String, found: String)
    /// The file's content does not follow its format.
    case malformed(path: String, problem: String)
    /// Images and labels disagree on how many samples there are.
    case countMismatch(images: String, imageCount: Int, labels: String, labelCount: Int)
    /// A label outside 0..<classes.
    case labelOutOfRange(path: String, index: Int, label: Int, classes: Int)
    /// A NumPy array whose dtype ConvNet does not read.
    case unsupportedDType(path: String, array: String, dtype: String)
    /// A named array is missing from an .npz archive.
    case missingArray(path: String, name: String, available: [String])
    /// An array of the right name has a shape that cannot be used.
    case badArrayShape(path: String, array: String, shape: [Int], expected: String)
    /// No data set of that name.
    case unknownDataset(name: String, known: [String])
    /// No preprocessing turns the data's sample shape into the network's input shape.
    case noTransform(data: [Int], network: [Int])
    /// A downloaded file does not match its known checksum.
    case checksumMismatch(path: String, expected: String, actual: String)
    /// Every mirror failed for one file.
    case downloadFailed(file: String, attempts: [String])
    /// Reading or writing a file failed at the operating-system level.
    case io(path: String, problem: String)
    /// An option or argument that makes no sense.
    case invalidOption(String)
    /// A path that holds something other than a regular file (a folder, a named pipe, a device) where a
    /// file is read or written.
    case notAFile(path: String, kind: CheckedFile.Kind)

    public var description: String {
        switch self {
        case .fileNotFound(let path, let hint):
            return "\(path): file not found" + (hint.isEmpty ? "" : " (\(hint))")
        case .truncated(let path, let expected, let actual):
            return "\(path): file is truncated: expected \(expected) bytes, found \(actual); delete it and download it again"
        case .badMagic(let path, let expected, let found):
            return "\(path): wrong magic number \(found), expected \(expected): not a file of the expected format"
        case .malformed(let path, let problem):
            return "\(path): \(problem)"
        case .countMismatch(let images, let n, let labels, let m):
            return "\(images) holds \(n) images but \(labels) holds \(m) labels: the counts must agree"
        case .labelOutOfRange(let path, let index, let label, let classes):
            return "\(path): label \(label) of sample \(index) is out of range for \(classes) classes (expected 0...\(classes - 1))"
        case .unsupportedDType(let path, let array, let dtype):
            return "\(path): array '\(array)' has unsupported dtype '\(dtype)' (supported: float32, float64, uint8, int64, int32)"
        case .missingArray(let path, let name, let available):
            return "\(path): no array named '\(name)' (arrays in the file: \(available.isEmpty ? "none" : available.joined(separator: ", ")))"
        case .badArrayShape(let path, let array, let shape, let expected):
            return "\(path): array '\(array)' has shape (\(shape.map(String.init).joined(separator: ", "))), expected \(expected)"
        case .unknownDataset(let name, let known):
            return "unknown data set '\(name)': expected one of \(known.joined(separator: ", ")) or a path to an .npz file"
        case .noTransform(let data, let network):
            return "no preprocessing turns \(formatShape(data)) images into the network's \(formatShape(network)) input"
                + " (supported: 2x2 average downsampling, zero padding, grayscale to 3 channels)"
        case .checksumMismatch(let path, let expected, let actual):
            return "\(path): checksum mismatch: MD5 \(actual), expected \(expected); the file was deleted"
        case .downloadFailed(let file, let attempts):
            return "could not download \(file): " + attempts.joined(separator: "; ")
        case .io(let path, let problem):
            return "\(path): \(problem)"
        case .invalidOption(let message):
            return message
        case .notAFile(let path, let kind):
            return "\(path) is \(kind.notAFileWords)"
        }
    }
}

/// Files are read whole: data sets are tens of megabytes.
enum FileBytes {
    static func read(_ url: URL, hint: String = "") throws -> Data {
        try CheckedFile.read(url, hint: hint)
    }

    /// Reads a file and inflates it when it is gzip-compressed (by content, not by name).
    static func readMaybeGzipped(_ url: URL, hint: String = "") throws -> Data {
        let data = try read(url, hint: hint)
        return Gzip.isGzip(data) ? try Gzip.decompress(data, source: url.path) : data
    }

    /// Writes crash-safely (see `AtomicFile.write`); errors are `DataError.io` naming the file and the cause.
    static func writeAtomically(_ data: Data, to url: URL) throws {
        try AtomicFile.write(data, to: url)
    }

    /// POSIX rename: atomic, replaces an existing file.
    static func rename(_ from: URL, to: URL) throws {
        if Foundation.rename(from.path, to.path) != 0 {
            let message = String(cString: strerror(errno))
            throw DataError.io(path: to.path, problem: "cannot rename \(from.lastPathComponent) into place: \(message)")
        }
    }
}

/// Crash-safe file writes, used for every file ConvNet produces (`model.npz`, `checkpoint.npz`, metrics,
/// reports, charts, exports, unpacked downloads).
///
/// The bytes go to a temporary file in the target's folder (`.NAME.RANDOM.tmp`), which is flushed to disk
/// (`fsync`), renamed over the target (atomic on POSIX file systems) and the folder is flushed too. A
/// process killed at any moment leaves either the old file or the new one, never half of one; a failed
/// write (disk full, the file-size limit, no permission) removes the temporary file, leaves the old file
/// as it was and throws `DataError.io` with the operating system's reason.
public enum AtomicFile {
    /// Writes `data` to `url` as described above, creating the folder when needed (unless `creatingFolder`
    /// is false: then a missing folder is an error that says so, as for a file a user named). A path that
    /// holds a folder, a named pipe or a device is refused (`DataError.notAFile`), never replaced.
    public static func write(_ data: Data, to url: URL, creatingFolder: Bool = true) throws {
        _ = ignoreFileSizeSignal
        try CheckedFile.checkWritable(url, creatingFolder: creatingFolder)
        let folder = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw DataError.io(path: folder.path, problem: "cannot create the folder: \(plainDescription(error))")
        }
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(UInt32.random(in: 0...UInt32.max)).tmp")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw DataError.io(path: url.path, problem: "cannot write: cannot create a temporary file in \(folder.path): \(String(cString: strerror(errno)))")
        }
        func fail(_ what: String, _ code: Int32) -> DataError {
            unlink(temporary.path)
            let kept = FileManager.default.fileExists(atPath: url.path) ? "; the existing file is unchanged" : ""
            return DataError.io(path: url.path, problem: "cannot write: \(what) failed: \(String(cString: strerror(code)))\(kept)")
        }
        var written = 0
        let writeError: Int32 = data.withUnsafeBytes { raw in
            while written < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                if n == 0 { return EIO }
                written += n
            }
            return 0
        }
        if writeError != 0 { close(fd); throw fail("writing \(data.count) bytes (\(written) written)", writeError) }
        if fsync(fd) != 0 { let e = errno; close(fd); throw fail("flushing to disk (fsync)", e) }
        if close(fd) != 0 { throw fail("closing", errno) }
        if rename(temporary.path, url.path) != 0 { throw fail("renaming \(temporary.lastPathComponent) into place", errno) }
        // The rename itself is durable once the folder is flushed; a folder that cannot be opened is not an error.
        let dir = open(folder.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 { _ = fsync(dir); close(dir) }
    }

    /// Writes UTF-8 text crash-safely.
    public static func write(_ text: String, to url: URL, creatingFolder: Bool = true) throws {
        try write(Data(text.utf8), to: url, creatingFolder: creatingFolder)
    }

    /// Beyond the file-size limit (`ulimit -f`) the kernel sends SIGXFSZ, which kills the process before
    /// `write` can report EFBIG: ignore it (once) so the write fails with an error like any other.
    private static let ignoreFileSizeSignal: Void = {
        var old = sigaction()
        if sigaction(SIGXFSZ, nil, &old) == 0, old.__sigaction_handler.sa_handler == nil {
            signal(SIGXFSZ, SIG_IGN)
        }
    }()
}
