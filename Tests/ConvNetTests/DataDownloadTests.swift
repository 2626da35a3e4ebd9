import Foundation
import Testing
@testable import ConvNet

@Suite(.serialized) struct DataDownloadTests {
    let payload = Data((0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) })

    @Test func downloadsVerifiesAndSkipsPresentFiles() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        server.set("a.bin", .serve(payload))
        let dir = try makeTemporaryFolder()
        let source = DownloadSource(dataset: "t", mirrors: [server.baseURL], files: [RemoteFile(name: "a.bin", md5: MD5.hex(payload))], folder: "t")
        let urls = try Downloader(timeout: 10).download(source, into: dir)
        #expect(try Data(contentsOf: urls[0]) == payload)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("t").path) == ["a.bin"])
        _ = try Downloader(timeout: 10).download(source, into: dir)
        #expect(server.requestLog.count == 1)   // already present and valid: no second request
    }

    @Test func corruptFileLeavesNothingUnderFinalName() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        var corrupt = payload
        corrupt[100] ^= 0xFF
        server.set("a.bin", .serve(corrupt))
        let dir = try makeTemporaryFolder()
        let file = RemoteFile(name: "a.bin", md5: MD5.hex(payload))
        do {
            _ = try Downloader(timeout: 10).fetch(file, mirrors: [server.baseURL], into: dir)
            Issue.record("no error")
        } catch let e as DataError {
            guard case .checksumMismatch = e else { Issue.record("\(e)"); return }
            #expect(e.description.contains("a.bin") && e.description.contains(file.md5))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test func fallsBackToTheNextMirror() throws {
        let bad = try TestHTTPServer(), good = try TestHTTPServer()
        defer { bad.stop(); good.stop() }
        var corrupt = payload
        corrupt[0] ^= 1
        bad.set("a.bin", .serve(corrupt))
        good.set("a.bin", .serve(payload))
        let dir = try makeTemporaryFolder()
        let missing = URL(string: "http://127.0.0.1:\(good.port)/nothing-here/")!
        let url = try Downloader(timeout: 10).fetch(RemoteFile(name: "a.bin", md5: MD5.hex(payload)), mirrors: [missing, bad.baseURL, good.baseURL], into: dir)
        #expect(try Data(contentsOf: url) == payload)
        // Every mirror failing: one error listing each attempt.
        let dir2 = try makeTemporaryFolder()
        do {
            _ = try Downloader(timeout: 10).fetch(RemoteFile(name: "a.bin", md5: MD5.hex(payload)), mirrors: [missing, bad.baseURL], into: dir2)
            Issue.record("no error")
        } catch let e as DataError {
            #expect(e.description.contains("HTTP 404") && e.description.contains("checksum mismatch"), "\(e)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir2.path).isEmpty)
    }

    @Test func resumesAfterConnectionDropsHalfWay() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        server.set("a.bin", .dropAfter(payload, bytes: 70_000, times: 1))
        let dir = try makeTemporaryFolder()
        let url = try Downloader(timeout: 10).fetch(RemoteFile(name: "a.bin", md5: MD5.hex(payload)), mirrors: [server.baseURL], into: dir)
        #expect(try Data(contentsOf: url) == payload)
        let log = server.requestLog
        #expect(log.count == 2)
        #expect(log.last?.range?.hasPrefix("bytes=") == true && log.last?.range != "bytes=0-", "\(log)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("a.bin.part").path))
    }

    @Test func restartsWhenServerIgnoresRange() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        server.set("a.bin", .ignoreRange(payload))
        let dir = try makeTemporaryFolder()
        // A stale partial file from an earlier run.
        try Data(repeating: 9, count: 1234).write(to: dir.appendingPathComponent("a.bin.part"))
        let url = try Downloader(timeout: 10).fetch(RemoteFile(name: "a.bin", md5: MD5.hex(payload)), mirrors: [server.baseURL], into: dir)
        #expect(try Data(contentsOf: url) == payload)
        #expect(server.requestLog.first?.range == "bytes=1234-")
    }

    @Test func standardSourcesAreComplete() throws {
        for name in ["mnist", "fashion-mnist", "cifar10"] {
            let source = try DownloadSource.named(name)
            #expect(!source.mirrors.isEmpty && source.files.allSatisfy { $0.md5.count == 32 })
        }
        #expect(try DownloadSource.named("mnist").mirrors.count >= 3)
        #expect(throws: DataError.self) { try DownloadSource.named("imagenet") }
    }
}
