import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One file of a downloadable data set and its published MD5.
public struct RemoteFile: Sendable, Equatable {
    public var name: String
    public var md5: String
    public init(name: String, md5: String) { self.name = name; self.md5 = md5 }
}

/// A downloadable data set: files, mirrors tried in turn, the folder under the data directory.
public struct DownloadSource: Sendable {
    public var dataset: String
    public var mirrors: [URL]
    public var files: [RemoteFile]
    public var folder: String
    /// CIFAR-10 ships as a .tar.gz whose content is unpacked next to it.
    public var extractTarGz: Bool

    public init(dataset: String, mirrors: [URL], files: [RemoteFile], folder: String, extractTarGz: Bool = false) {
        self.dataset = dataset; self.mirrors = mirrors; self.files = files; self.folder = folder; self.extractTarGz = extractTarGz
    }

    /// The standard sources (checksums as published by torchvision and the CIFAR page).
    public static func named(_ name: String) throws -> DownloadSource {
        switch name.lowercased() {
        case "mnist":
            return DownloadSource(dataset: "mnist", mirrors: [
                URL(string: "https://ossci-datasets.s3.amazonaws.com/mnist/")!,
                URL(string: "https://storage.googleapis.com/cvdf-datasets/mnist/")!,
                URL(string: "http://yann.lecun.com/exdb/mnist/")!,
            ], files: [
                RemoteFile(name: "train-images-idx3-ubyte.gz", md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                RemoteFile(name: "train-labels-idx1-ubyte.gz", md5: "d53e105ee54ea40749a09fcbcd1e9432"),
                RemoteFile(name: "t10k-images-idx3-ubyte.gz", md5: "9fb629c4189551a2d022fa330f9573f3"),
                RemoteFile(name: "t10k-labels-idx1-ubyte.gz", md5: "ec29112dd5afa0611ce80d1b7f02629c"),
            ], folder: "mnist")
        case "fashion-mnist", "fashion":
            return DownloadSource(dataset: "fashion-mnist", mirrors: [
                URL(string: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")!,
                URL(string: "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/")!,
            ], files: [
                RemoteFile(name: "train-images-idx3-ubyte.gz", md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                RemoteFile(name: "train-labels-idx1-ubyte.gz", md5: "25c81989df183df01b3e8a0aad5dffbe"),
                RemoteFile(name: "t10k-images-idx3-ubyte.gz", md5: "bef4ecab320f06d8554ea6380940ec79"),
                RemoteFile(name: "t10k-labels-idx1-ubyte.gz", md5: "bb300cfdad3c16e7a12a480ee83cd310"),
            ], folder: "fashion-mnist")
        case "cifar10", "cifar-10":
            return DownloadSource(dataset: "cifar10", mirrors: [URL(string: "https://www.cs.toronto.edu/~kriz/")!],
                                  files: [RemoteFile(name: "cifar-10-binary.tar.gz", md5: "c32a1d4ab5d03f1284b67883e8d87530")],
                                  folder: "cifar10", extractTarGz: true)
        default:
            throw DataError.unknownDataset(name: name, known: ["mnist", "fashion-mnist", "cifar10"])
        }
    }

    /// How to install the set without this download: the folder and the file names to put there.
    public func byHand(dataDirectory: URL) -> String {
        let folder = dataDirectory.appendingPathComponent(folder, isDirectory: true).path
        let names = files.map(\.name).joined(separator: ", ")
        if extractTarGz {
            return "put \(names) in \(folder) and run this command again (it checks and unpacks it), "
                + "or unpack it there yourself"
        }
        return "put \(names) in \(folder)"
    }
}

/// Downloads files over HTTP(S) into `<file>.part`, resuming with a Range request after a dropped connection
/// (or restarting when the server ignores the range), checks the MD5, then renames into place. A file under
/// its final name is always complete and verified.
public struct Downloader: Sendable {
    /// Attempts per mirror (a dropped connection resumes on the next attempt).
    public var attemptsPerMirror: Int
    public var timeout: TimeInterval
    public var log: @Sendable (String) -> Void

    public init(attemptsPerMirror: Int = 3, timeout: TimeInterval = 60, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.attemptsPerMirror = attemptsPerMirror
        self.timeout = timeout
        self.log = log
    }

    /// Fetches every file of `source` into `dataDirectory/source.folder` and returns the final paths.
    ///
    /// After a failure nothing empty is left behind: empty `.part` files are deleted, and so are the
    /// folders this call created when nothing is left in them. A `.part` file holding bytes is kept, so
    /// that the next call resumes it, and so are files already verified.
    @discardableResult
    public func download(_ source: DownloadSource, into dataDirectory: URL) throws -> [URL] {
        let folder = dataDirectory.appendingPathComponent(source.folder, isDirectory: true)
        // The folders that do not exist yet, innermost first: the ones a failure may remove again.
        var created: [URL] = []
        var missing = folder
        while !FileManager.default.fileExists(atPath: missing.path), missing.pathComponents.count > 1 {
            created.append(missing)
            missing = missing.deletingLastPathComponent()
        }
        do { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) } catch {
            throw DataError.io(path: folder.path, problem: "cannot create folder: \(plainDescription(error))")
        }
        var results: [URL] = []
        do {
            for file in source.files {
                let url = try fetch(file, mirrors: source.mirrors, into: folder)
                if source.extractTarGz { try extract(url, into: folder) }
                results.append(url)
            }
        } catch {
            Downloader.cleanUp(folder, files: source.files, created: created)
            throw error
        }
        return results
    }

    /// After a failed download: deletes the empty `.part` files of `files` in `folder`, then each folder
    /// of `created` (innermost first) that is empty.
    static func cleanUp(_ folder: URL, files: [RemoteFile], created: [URL]) {
        let manager = FileManager.default
        for file in files {
            let part = folder.appendingPathComponent(file.name + ".part")
            if let size = (try? manager.attributesOfItem(atPath: part.path))?[.size] as? Int, size == 0 {
                try? manager.removeItem(at: part)
            }
        }
        for directory in created {
            guard let content = try? manager.contentsOfDirectory(atPath: directory.path), content.isEmpty else { break }
            try? manager.removeItem(at: directory)
        }
    }

    /// The `.part` files of `source` that hold bytes in `dataDirectory/source.folder`: what a failed
    /// download kept for the next attempt to resume.
    public static func partialFiles(of source: DownloadSource, in dataDirectory: URL) -> [(url: URL, bytes: Int)] {
        let folder = dataDirectory.appendingPathComponent(source.folder, isDirectory: true)
        return source.files.compactMap { file in
            let part = folder.appendingPathComponent(file.name + ".part")
            guard let size = (try? FileManager.default.attributesOfItem(atPath: part.path))?[.size] as? Int, size > 0 else { return nil }
            return (part, size)
        }
    }

    /// One file: kept when already present and valid, else tried on each mirror in turn.
    public func fetch(_ file: RemoteFile, mirrors: [URL], into folder: URL) throws -> URL {
        let final = folder.appendingPathComponent(file.name)
        let part = folder.appendingPathComponent(file.name + ".part")
        if FileManager.default.fileExists(atPath: final.path) {
            if try MD5.hex(ofFile: final) == file.md5.lowercased() {
                log("\(file.name): already present, checksum OK")
                return final
            }
            log("\(file.name): present but its checksum is wrong, downloading again")
            try? FileManager.default.removeItem(at: final)
        }
        var failures: [String] = []
        for mirror in mirrors {
            let remote = mirror.appendingPathComponent(file.name)
            for attempt in 1...max(1, attemptsPerMirror) {
                do {
                    try transfer(remote, to: part)
                } catch let error as TransferError {
                    failures.append("\(remote.absoluteString): \(error.message)")
                    log("\(file.name): \(remote.absoluteString) attempt \(attempt): \(error.message)")
                    if error.retry { continue } else { break }
                }
                let digest = try MD5.hex(ofFile: part)
                if digest == file.md5.lowercased() {
                    try FileBytes.rename(part, to: final)
                    log("\(file.name): downloaded from \(mirror.absoluteString), checksum OK")
                    return final
                }
                try? FileManager.default.removeItem(at: part)
                let mismatch = DataError.checksumMismatch(path: part.path, expected: file.md5, actual: digest)
                log("\(file.name): \(mismatch)")
                if mirrors.count == 1 { throw mismatch }
                failures.append("\(remote.absoluteString): checksum mismatch (MD5 \(digest), expected \(file.md5))")
                break
            }
        }
        throw DataError.downloadFailed(file: file.name, attempts: failures)
    }

    struct TransferError: Error {
        var message: String
        /// Worth another attempt on the same mirror (the connection dropped after some bytes arrived).
        var retry: Bool
    }

    /// One HTTP request into `part`, appending from its current size with a Range header.
    func transfer(_ remote: URL, to part: URL) throws {
        let existing = (try? FileManager.default.attributesOfItem(atPath: part.path)[.size] as? Int) ?? 0
        if existing == 0 { _ = FileManager.default.createFile(atPath: part.path, contents: nil) }
        guard let handle = try? FileHandle(forWritingTo: part) else {
            throw DataError.io(path: part.path, problem: "cannot open for writing")
        }
        defer { try? handle.close() }
        var request = URLRequest(url: remote, timeoutInterval: timeout)
        if existing > 0 { request.setValue("bytes=\(existing)-", forHTTPHeaderField: "Range") }
        let sink = TransferSink(handle: handle, offset: existing)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.connectionProxyDictionary = [:]
        let session = URLSession(configuration: configuration, delegate: sink, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        session.dataTask(with: request).resume()
        sink.done.wait()
        if let failure = sink.failure { throw failure }
    }

    /// Unpacks a .tar.gz next to itself (each file written atomically).
    func extract(_ archive: URL, into folder: URL) throws {
        log("\(archive.lastPathComponent): extracting")
        let tar = try Gzip.decompress(FileBytes.read(archive), source: archive.path)
        for (path, content) in try TarArchive.files(in: tar, source: archive.path) {
            let parts = path.split(separator: "/").filter { $0 != "." && !$0.isEmpty }
            guard !parts.contains("..") else { continue }
            try FileBytes.writeAtomically(content, to: folder.appendingPathComponent(parts.joined(separator: "/")))
        }
    }
}

/// Receives one response and writes its body to the `.part` file.
private final class TransferSink: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let handle: FileHandle
    let offset: Int
    let done = DispatchSemaphore(value: 0)
    var failure: Downloader.TransferError?
    var received = 0
    var writeError: String?

    init(handle: FileHandle, offset: Int) {
        self.handle = handle
        self.offset = offset
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        guard let http = response as? HTTPURLResponse else { completionHandler(.allow); return }
        do {
            switch http.statusCode {
            case 206 where offset > 0:
                let range = http.value(forHTTPHeaderField: "Content-Range") ?? ""
                if range.hasPrefix("bytes \(offset)-") {
                    try handle.seekToEnd()
                } else {  // not the range we asked for: start again
                    try handle.truncate(atOffset: 0)
                }
            case 200:
                try handle.truncate(atOffset: 0)  // the server ignored the range: restart
            case 416 where offset > 0:
                // Nothing more to send: the part file is complete (the checksum decides).
                completionHandler(.cancel)
                return
            default:
                failure = Downloader.TransferError(message: "HTTP \(http.statusCode)", retry: false)
                completionHandler(.cancel)
                return
            }
        } catch {
            failure = Downloader.TransferError(message: "cannot write the .part file: \(plainDescription(error))", retry: false)
            completionHandler(.cancel)
            return
        }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard writeError == nil else { return }
        do { try handle.write(contentsOf: data); received += data.count } catch {
            writeError = plainDescription(error)
            dataTask.cancel()
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if failure == nil {
            if let writeError {
                failure = Downloader.TransferError(message: "cannot write the .part file: \(writeError)", retry: false)
            } else if let error, (error as? URLError)?.code != .cancelled {
                failure = Downloader.TransferError(
                    message: received > 0 ? "\(error.localizedDescription) after \(received) bytes" : error.localizedDescription, retry: received > 0)
            }
        }
        done.signal()
    }
}
