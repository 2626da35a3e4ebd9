import ArgumentParser
import ConvNet
import Foundation

struct DownloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "download",
        abstract: "Download MNIST, Fashion-MNIST or CIFAR-10, checking each file's MD5.",
        discussion: """
            A set that `convnet datasets` already finds (in the data directory, or Fashion-MNIST where Debian's \
            dataset-fashion-mnist installs it) is not downloaded again; --force downloads it into the data directory anyway. \
            After a failure nothing empty is left behind; a partly downloaded file is kept and the next run resumes it.
            """)

    @Argument(help: "mnist, fashion-mnist or cifar10")
    var dataset: String

    @Option(name: .customLong("mirror"), help: "Base URL to try before the standard mirrors (repeatable).")
    var mirrors: [String] = []

    @Flag(help: "Try only the --mirror URLs, not the standard mirrors.")
    var noStandardMirrors = false

    @Option(help: "Data directory (default: $CONVNET_DATA or ~/.convnet/data).")
    var dataDir: String?

    @Flag(help: "Download even when the set is already installed.")
    var force = false

    func validate() throws {
        if noStandardMirrors && mirrors.isEmpty {
            throw ValidationError("--no-standard-mirrors leaves no mirror to try; give one with --mirror URL")
        }
        for text in mirrors where URL(string: text)?.scheme == nil {
            throw ValidationError("--mirror '\(text)' is not a URL; give one such as https://example.org/mnist/")
        }
        if (try? DownloadSource.named(dataset)) == nil {
            throw ValidationError("unknown data set '\(dataset)' to download; use mnist, fashion-mnist or cifar10")
        }
    }

    func run() throws {
        do {
            var source = try DownloadSource.named(dataset)
            let extra = try mirrors.map { text -> URL in
                guard let url = URL(string: text.hasSuffix("/") ? text : text + "/"), url.scheme != nil else {
                    throw DataError.invalidOption("--mirror \(text): not a URL")
                }
                return url
            }
            source.mirrors = extra + (noStandardMirrors ? [] : source.mirrors)
            let root = dataDir.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? DatasetCatalog.defaultDataDirectory()
            var options = DatasetOptions()
            options.dataDirectory = root
            if !force, let location = DatasetCatalog.describeAll(options: options).first(where: { $0.name == source.dataset })?.location {
                print("\(source.dataset) is already installed in \(location) (convnet datasets finds it there): nothing to download; "
                    + "--force downloads it into \(root.appendingPathComponent(source.folder).path) anyway")
                return
            }
            let downloader = Downloader(log: { message in FileHandle.standardError.write(Data((message + "\n").utf8)) })
            do {
                let files = try downloader.download(source, into: root)
                print("\(source.dataset): \(files.count) \(files.count == 1 ? "file" : "files") in \(root.appendingPathComponent(source.folder).path)")
            } catch let error as DataError {
                throw ValidationFailure(message: Self.failureMessage(error, source: source, dataset: dataset, root: root))
            }
        } catch let error as DataError {
            throw ValidationFailure(message: error.description)
        }
    }

    /// The error, what was kept to resume, and the two ways around a failed download: another mirror,
    /// or the files put in place by hand.
    static func failureMessage(_ error: DataError, source: DownloadSource, dataset: String, root: URL) -> String {
        var lines = [error.description]
        let partial = Downloader.partialFiles(of: source, in: root)
        if !partial.isEmpty {
            lines.append("kept for resuming: " + partial.map { "\($0.url.path) (\($0.bytes) bytes)" }.joined(separator: ", ")
                + "; run the same command again to go on")
        }
        lines.append("to download from elsewhere: convnet download \(dataset) --mirror URL (a URL of a folder that holds the files)")
        var byHand = "to install by hand: \(source.byHand(dataDirectory: root))"
        if source.dataset == "fashion-mnist" { byHand += " (or apt-get install dataset-fashion-mnist)" }
        lines.append(byHand)
        return lines.joined(separator: "\n")
    }
}

/// Prints one line `Error: message` and exits with status 1.
struct ValidationFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
