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
        }
    }
}

/// Files are read whole: data sets are tens of megabytes.
enum FileBytes {
    static func read(_ url: URL, hint: String = "") throws -> Data {
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DataError.fileNotFound(path: path, hint: hint)
        }
        if isDirectory.boolValue { throw DataError.io(path: path, problem: "is a directory, expected a file") }
        do {
            return try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw DataError.io(path: path, problem: "cannot read: \(error.localizedDescription)")
        }
    }

    /// Reads a file and inflates it when it is gzip-compressed (by content, not by name).
    static func readMaybeGzipped(_ url: URL, hint: String = "") throws -> Data {
        let data = try read(url, hint: hint)
        return Gzip.isGzip(data) ? try Gzip.decompress(data, source: url.path) : data
    }

    /// Writes through a temporary file in the same folder and a rename: the final name never holds half a file.
    static func writeAtomically(_ data: Data, to url: URL) throws {
        try atomicWrite(to: url) { temporary in
            do { try data.write(to: temporary) } catch {
                throw DataError.io(path: url.path, problem: "cannot write: \(error.localizedDescription)")
            }
        }
    }

    /// Calls `body` with a temporary URL in `url`'s folder, then renames it to `url`; removes it on failure.
    static func atomicWrite(to url: URL, _ body: (URL) throws -> Void) throws {
        let folder = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw DataError.io(path: folder.path, problem: "cannot create folder: \(error.localizedDescription)")
        }
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(UInt32.random(in: 0...UInt32.max)).tmp")
        do {
            try body(temporary)
            try rename(temporary, to: url)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }

    /// POSIX rename: atomic, replaces an existing file.
    static func rename(_ from: URL, to: URL) throws {
        if Foundation.rename(from.path, to.path) != 0 {
            let message = String(cString: strerror(errno))
            throw DataError.io(path: to.path, problem: "cannot rename \(from.lastPathComponent) into place: \(message)")
        }
    }
}
