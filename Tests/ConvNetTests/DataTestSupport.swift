import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import ConvNet

/// A fresh temporary folder per test.
func makeTemporaryFolder(_ tag: String = #function) throws -> URL {
    let clean = tag.filter { $0.isLetter || $0.isNumber }
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("convnet-data-\(clean)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

func fixtureURL(_ name: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
}

/// Writes IDX files (uncompressed) for tests.
func idxData(magic: Int, dims: [Int], payload: [UInt8]) -> Data {
    var d = Data([UInt8(magic >> 24 & 0xFF), UInt8(magic >> 16 & 0xFF), UInt8(magic >> 8 & 0xFF), UInt8(magic & 0xFF)])
    for n in dims { d.append(contentsOf: [UInt8(n >> 24 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)]) }
    d.append(contentsOf: payload)
    return d
}

/// A minimal HTTP/1.1 server on 127.0.0.1 (ephemeral port) for download tests: GET with optional Range.
final class TestHTTPServer: @unchecked Sendable {
    enum Behavior {
        case serve(Data)
        /// Sends the full Content-Length but closes after `bytes` bytes the first `times` requests.
        case dropAfter(Data, bytes: Int, times: Int)
        /// Ignores Range headers (always 200 with the whole body).
        case ignoreRange(Data)
    }

    private let lock = NSLock()
    private var routes: [String: Behavior] = [:]
    private var drops: [String: Int] = [:]
    private(set) var requests: [(path: String, range: String?)] = []
    private var socketFD: Int32 = -1
    private(set) var port: Int = 0
    private var thread: Thread?

    init() throws {
        socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socketFD >= 0 else { throw DataError.io(path: "socket", problem: "cannot create") }
        var one: Int32 = 1
        setsockopt(socketFD, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(socketFD, 16) == 0 else { throw DataError.io(path: "socket", problem: "cannot bind") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketFD, $0, &len) } }
        port = Int(UInt16(bigEndian: addr.sin_port))
        let fd = socketFD
        let t = Thread { [self] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { break }
                self.handle(client)
                close(client)
            }
        }
        thread = t
        t.start()
    }

    var baseURL: URL { URL(string: "http://127.0.0.1:\(port)/files/")! }

    func set(_ name: String, _ behavior: Behavior) {
        lock.lock(); routes["/files/" + name] = behavior; lock.unlock()
    }

    var requestLog: [(path: String, range: String?)] { lock.lock(); defer { lock.unlock() }; return requests }

    func stop() {
        shutdown(socketFD, Int32(SHUT_RDWR))
        close(socketFD)
    }

    private func sendAll(_ fd: Int32, _ data: Data) {
        data.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n <= 0 { return }
                sent += n
            }
        }
    }

    private func handle(_ fd: Int32) {
        var request = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !request.contains("\r\n\r\n".data(using: .utf8)!) {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return }
            request.append(contentsOf: buffer[0..<n])
        }
        let text = String(decoding: request, as: UTF8.self)
        let lines = text.components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count >= 2 else { return }
        let path = String(parts[1])
        var range: String?
        for line in lines.dropFirst() where line.lowercased().hasPrefix("range:") {
            range = line.dropFirst(6).trimmingCharacters(in: .whitespaces)
        }
        lock.lock()
        requests.append((path, range))
        let behavior = routes[path]
        var dropNow = false
        var dropBytes = 0
        if case .dropAfter(_, let bytes, let times)? = behavior {
            let done = drops[path, default: 0]
            if done < times { dropNow = true; dropBytes = bytes; drops[path] = done + 1 }
        }
        lock.unlock()
        let body: Data
        var honourRange = true
        switch behavior {
        case .serve(let d)?: body = d
        case .dropAfter(let d, _, _)?: body = d
        case .ignoreRange(let d)?: body = d; honourRange = false
        case nil:
            sendAll(fd, Data("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
            return
        }
        var start = 0
        if honourRange, let range, range.hasPrefix("bytes="), let s = Int(range.dropFirst(6).split(separator: "-").first ?? "") {
            start = s
        }
        if start >= body.count && start > 0 {
            sendAll(fd, Data("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */\(body.count)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
            return
        }
        let slice = body.subdata(in: start..<body.count)
        var head = start > 0 ? "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes \(start)-\(body.count - 1)/\(body.count)\r\n" : "HTTP/1.1 200 OK\r\n"
        head += "Content-Length: \(slice.count)\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
        sendAll(fd, Data(head.utf8))
        if dropNow {
            sendAll(fd, slice.prefix(dropBytes))
            return  // closes with bytes missing
        }
        sendAll(fd, slice)
    }
}

/// Trains a fresh `network()` on `data` with `options` to the end, and another one stopped after iteration
/// `stop`, written to a checkpoint, read back and resumed to the end. Returns each run's final weights as bit
/// patterns, and the checkpoint as it was read back.
func trainWholeAndResumed(
    _ data: Dataset, _ options: TrainingOptions, stoppingAfter stop: Int, network: () throws -> Sequential,
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> (whole: [UInt32], resumed: [UInt32], checkpoint: Checkpoint) {
    struct Stop: Error {}
    let uninterrupted = try network()
    try Trainer(network: uninterrupted, options: options).train(on: data)
    let interrupted = try network()
    let first = try Trainer(network: interrupted, options: options)
    #expect(throws: Stop.self, sourceLocation: sourceLocation) {
        try first.train(on: data) { event in
            if case .iteration(let r) = event, r.iteration == stop { throw Stop() }
        }
    }
    let url = try makeTemporaryFolder().appendingPathComponent("checkpoint.npz")
    let archive = ModelArchive(network: interrupted, modelName: "custom", loss: options.loss, classNames: data.classNames, normalization: .identity)
    try Checkpoint(trainer: first, model: archive, settings: "{}").write(to: url)
    let checkpoint = try Checkpoint.read(from: url)
    let resumed = try Trainer(network: checkpoint.model.network, options: options)
    try resumed.restore(from: checkpoint)
    try resumed.train(on: data)
    func bits(_ net: Sequential) -> [UInt32] { net.parameters.flatMap(\.value.scalars).map(\.bitPattern) }
    return (bits(uninterrupted), bits(checkpoint.model.network), checkpoint)
}
