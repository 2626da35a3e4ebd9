import ArgumentParser
import ConvNet
import Foundation

struct DownloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "download",
        abstract: "Download MNIST, Fashion-MNIST or CIFAR-10, checking each file's MD5.")

    @Argument(help: "mnist, fashion-mnist or cifar10")
    var dataset: String

    @Option(name: .customLong("mirror"), help: "Base URL to try before the standard mirrors (repeatable).")
    var mirrors: [String] = []

    @Option(help: "Data directory (default: $CONVNET_DATA or ~/.convnet/data).")
    var dataDir: String?

    func run() throws {
        do {
            var source = try DownloadSource.named(dataset)
            let extra = try mirrors.map { text -> URL in
                guard let url = URL(string: text.hasSuffix("/") ? text : text + "/"), url.scheme != nil else {
                    throw DataError.invalidOption("--mirror \(text): not a URL")
                }
                return url
            }
            source.mirrors = extra + source.mirrors
            let root = dataDir.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? DatasetCatalog.defaultDataDirectory()
            let downloader = Downloader(log: { message in FileHandle.standardError.write(Data((message + "\n").utf8)) })
            let files = try downloader.download(source, into: root)
            print("\(source.dataset): \(files.count) file(s) in \(root.appendingPathComponent(source.folder).path)")
        } catch let error as DataError {
            throw ValidationFailure(message: error.description)
        }
    }
}

/// Prints one line `Error: message` and exits with status 1.
struct ValidationFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
