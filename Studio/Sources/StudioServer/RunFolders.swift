import ConvNet
import Foundation

/// The run folders the studio may serve and load: the folders directly under its runs directory
/// (where its own trainings go, as `convnet train` lays them out) and the one given with `--run`.
public struct RunFolders: Sendable {
    public let root: URL
    public let extra: URL?

    public init(root: URL, extra: URL? = nil) {
        self.root = root.standardizedFileURL
        self.extra = extra?.standardizedFileURL
    }

    /// Name -> folder of every run folder there is now.
    public func all() -> [String: URL] {
        var out: [String: URL] = [:]
        let fm = FileManager.default
        if let names = try? fm.contentsOfDirectory(atPath: root.path) {
            for name in names where !name.hasPrefix(".") {
                let url = root.appendingPathComponent(name)
                var isDirectory: ObjCBool = false
                if fm.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue { out[name] = url }
            }
        }
        if let extra { out[extra.lastPathComponent] = extra }
        return out
    }

    /// The newest run folder holding a model.npz, by that file's date.
    public func newestModel() -> (name: String, file: URL)? {
        var best: (String, URL, Date)?
        for (name, url) in all() {
            let file = url.appendingPathComponent("model.npz")
            guard let date = (try? FileManager.default.attributesOfItem(atPath: file.path))?[.modificationDate] as? Date else { continue }
            if best == nil || date > best!.2 { best = (name, file, date) }
        }
        return best.map { ($0.0, $0.1) }
    }

    /// The file `components` names inside run `run`, refusing anything that leaves the folder:
    /// `..`, absolute or empty components, and symbolic links that resolve outside it (403); a run or
    /// file that does not exist is 404.
    public func file(run: String, components: [String]) throws -> URL {
        guard let folder = all()[run], isPlainName(run) else { throw StudioError(404, "there is no run folder '\(run)'") }
        guard !components.isEmpty else { throw StudioError(404, "give a file inside the run folder, e.g. /runs/\(run)/report.html") }
        for c in components where !isPlainName(c) {
            throw StudioError(403, "'\(c)' is not allowed in a path: files are served only from inside their run folder")
        }
        var url = folder
        for c in components { url.appendPathComponent(c) }
        let base = folder.resolvingSymlinksInPath().path
        let resolved = url.resolvingSymlinksInPath().path
        guard resolved.hasPrefix(base + "/") else {
            throw StudioError(403, "\(components.joined(separator: "/")) leads outside the run folder '\(run)'")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw StudioError(404, "run '\(run)' has no file \(components.joined(separator: "/"))")
        }
        return URL(fileURLWithPath: resolved)
    }

    private func isPlainName(_ c: String) -> Bool {
        !c.isEmpty && c != "." && c != ".." && !c.contains("/") && !c.contains("\\") && !c.contains("\0")
    }
}

/// The content type of a served file, by extension.
func contentType(for path: String) -> String {
    switch (path as NSString).pathExtension.lowercased() {
    case "html": return "text/html; charset=utf-8"
    case "js": return "text/javascript; charset=utf-8"
    case "css": return "text/css; charset=utf-8"
    case "svg": return "image/svg+xml"
    case "png": return "image/png"
    case "json": return "application/json"
    case "csv": return "text/csv; charset=utf-8"
    case "jsonl", "txt": return "text/plain; charset=utf-8"
    default: return "application/octet-stream"
    }
}
