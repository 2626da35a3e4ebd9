import Foundation

/// Reading the files a user names, safely: what a path is (a file, a folder, a named pipe, a device) is
/// checked with `stat` before anything is opened (a named pipe would block the open, a device such as
/// /dev/zero never ends), sizes are capped where the caller says, and every failure is a `DataError`
/// that names the path in plain words.
///
/// Every file reader of the library goes through `read`: data sets, `.npy`/`.npz` (so `model.npz` and
/// checkpoints), metrics, images.
public enum CheckedFile {
    /// What a path holds.
    public enum Kind: Sendable, Equatable {
        case regularFile, folder, namedPipe, device, socket, other

        /// The phrase after "PATH is": "a folder", "a named pipe (FIFO)".
        public var phrase: String {
            switch self {
            case .regularFile: return "a regular file"
            case .folder: return "a folder"
            case .namedPipe: return "a named pipe (FIFO)"
            case .device: return "a device"
            case .socket: return "a socket"
            case .other: return "something other than a file or folder"
            }
        }

        /// "a folder, not a file", "a named pipe (FIFO), not a regular file": what a path is where a file
        /// was expected.
        public var notAFileWords: String {
            switch self {
            case .folder: return "a folder, not a file"
            case .other: return "something other than a regular file"
            default: return "\(phrase), not a regular file"
            }
        }

        init(mode: mode_t) {
            switch mode & S_IFMT {
            case S_IFREG: self = .regularFile
            case S_IFDIR: self = .folder
            case S_IFIFO: self = .namedPipe
            case S_IFCHR, S_IFBLK: self = .device
            case S_IFSOCK: self = .socket
            default: self = .other
            }
        }
    }

    /// What `path` is (symbolic links followed), nil when nothing is there. Other failures of `stat` (no
    /// permission to look into a folder, a file used as a folder) throw `DataError.io` with the reason.
    public static func kind(atPath path: String) throws -> Kind? {
        var info = stat()
        if stat(path, &info) == 0 { return Kind(mode: info.st_mode) }
        let code = errno
        // ENOTDIR: a file stands where a folder of the path should be, so nothing is at the path itself.
        if code == ENOENT || code == ENOTDIR { return nil }
        throw DataError.io(path: path, problem: reason(code))
    }

    /// The error for a path of kind `kind` where a regular file is expected.
    static func notAFile(_ path: String, _ kind: Kind) -> DataError {
        .notAFile(path: path, kind: kind)
    }

    /// Reads the regular file at `url` whole. A path that is missing, a folder, a named pipe, a device or a
    /// socket is refused before it is opened; a file larger than `limit` bytes is refused. Files in /proc
    /// (whose size says 0) are read to their end.
    public static func read(_ url: URL, limit: Int = Int.max, hint: String = "") throws -> Data {
        let path = url.path
        guard let kind = try kind(atPath: path) else { throw DataError.fileNotFound(path: path, hint: hint) }
        guard kind == .regularFile else { throw notAFile(path, kind) }
        // O_NONBLOCK: should the path become a named pipe after the check, the open does not wait for a writer.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw DataError.io(path: path, problem: "cannot open: \(reason(errno))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw DataError.io(path: path, problem: "cannot read: \(reason(errno))") }
        let opened = Kind(mode: info.st_mode)
        guard opened == .regularFile else { throw notAFile(path, opened) }
        let size = Int(info.st_size)
        if size > limit { throw tooLarge(path, limit) }
        var data = Data(count: max(size, 0))
        var count = 0
        let chunk = 1 << 16
        while true {
            if count == data.count {
                // Past the size `stat` gave (a /proc file, a growing file): read on in chunks, up to the limit.
                if count >= limit {
                    // One byte more tells a file of exactly `limit` bytes from a longer one.
                    var extra: UInt8 = 0
                    let n = readRetrying(fd, &extra, 1)
                    if n < 0 { throw DataError.io(path: path, problem: "cannot read: \(reason(errno))") }
                    if n > 0 { throw tooLarge(path, limit) }
                    break
                }
                data.count = count + min(chunk, limit - count)
            }
            let wanted = data.count - count
            let n = data.withUnsafeMutableBytes { raw in readRetrying(fd, raw.baseAddress! + count, wanted) }
            if n < 0 { throw DataError.io(path: path, problem: "cannot read: \(reason(errno))") }
            if n == 0 { break }
            count += n
        }
        data.count = count
        return data
    }

    /// Reads a UTF-8 text file that a user named (a spec, a settings file): as `read`, at most `limit`
    /// bytes (1 MiB unless said otherwise), and text that is not UTF-8 is refused.
    public static func readText(_ url: URL, limit: Int = 1 << 20) throws -> String {
        let data = try read(url, limit: limit)
        guard let text = String(data: data, encoding: .utf8) else {
            throw DataError.malformed(path: url.path, problem: "is not UTF-8 text")
        }
        return text
    }

    /// Checks that a file can be written at `url` (through `AtomicFile`): whatever is there must be a
    /// regular file (a folder, a named pipe or a device is refused), and unless `creatingFolder` its folder
    /// must exist.
    public static func checkWritable(_ url: URL, creatingFolder: Bool = true) throws {
        let path = url.path
        if let kind = try kind(atPath: path), kind != .regularFile { throw notAFile(path, kind) }
        let folder = url.deletingLastPathComponent().path
        switch try kind(atPath: folder) {
        case nil:
            if !creatingFolder {
                throw DataError.io(path: path, problem: "cannot write: the folder \(folder) does not exist")
            }
        case .folder?:
            break
        case let other?:
            throw DataError.io(path: path, problem: "cannot write: \(folder) is \(other.phrase), not a folder")
        }
    }

    /// Human sizes for limits: "1 MiB", "512 bytes".
    static func sizeWords(_ bytes: Int) -> String {
        if bytes >= 1 << 30, bytes % (1 << 30) == 0 { return "\(bytes >> 30) GiB" }
        if bytes >= 1 << 20, bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 10, bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
        return "\(bytes) bytes"
    }

    private static func tooLarge(_ path: String, _ limit: Int) -> DataError {
        DataError.io(path: path, problem: "is larger than \(sizeWords(limit)), the most read from such a file")
    }

    private static func readRetrying(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        while true {
            let n = Foundation.read(fd, buffer, count)
            if n < 0 && errno == EINTR { continue }
            return n
        }
    }

    static func reason(_ code: Int32) -> String { String(cString: strerror(code)) }
}
