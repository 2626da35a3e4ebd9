import Foundation
import Testing

@testable import ConvNet

/// Headless Chromium, when installed (Debian package `chromium`); the browser tests skip otherwise.
enum HeadlessChromium {
    static let path: String? = {
        if let p = ProcessInfo.processInfo.environment["CHROMIUM"], FileManager.default.isExecutableFile(atPath: p) { return p }
        return ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/usr/local/bin/chromium"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// Collects load errors (capture phase: failed resources too), rejections and console errors, waits
    /// for every embedded image to decode, then records what it found as attributes of <body>.
    static let probe = """
        <script>
        (function () {
          var errors = [];
          window.addEventListener('error', function (e) {
            var t = e.target, what = e.message || (t && t.tagName ? t.tagName + ' failed to load' : 'error');
            errors.push(String(what));
          }, true);
          window.addEventListener('unhandledrejection', function (e) { errors.push('unhandled rejection: ' + e.reason); });
          var original = console.error;
          console.error = function () { errors.push('console.error: ' + Array.prototype.join.call(arguments, ' ')); original.apply(console, arguments); };
          window.addEventListener('load', function () {
            var images = Array.prototype.slice.call(document.querySelectorAll('svg image'));
            var decodes = images.map(function (el) {
              var img = new Image();
              img.src = el.getAttribute('href');
              return img.decode().then(function () { return img.naturalWidth > 0; }, function () { errors.push('image does not decode'); return false; });
            });
            Promise.all(decodes).then(function (ok) {
              var svgs = Array.prototype.slice.call(document.querySelectorAll('svg'));
              var drawn = svgs.filter(function (s) { var r = s.getBoundingClientRect(); return r.width > 20 && r.height > 20 && s.querySelectorAll('text').length > 0; });
              var b = document.body;
              b.setAttribute('data-errors', JSON.stringify(errors));
              b.setAttribute('data-svg-count', String(svgs.length));
              b.setAttribute('data-svg-drawn', String(drawn.length));
              b.setAttribute('data-lines', String(document.querySelectorAll('polyline.series').length));
              b.setAttribute('data-images', String(ok.filter(Boolean).length) + '/' + String(images.length));
              b.setAttribute('data-probe', 'done');
            });
          });
        })();
        </script>
        """

    struct PageResult {
        var errors: [String]
        var svgCount: Int
        var svgDrawn: Int
        var lines: Int
        var images: String
    }

    /// Loads `page` with the probe injected and returns what the probe saw.
    static func load(_ page: URL) throws -> PageResult {
        let html = try String(contentsOf: page, encoding: .utf8)
        let probed = page.deletingLastPathComponent().appendingPathComponent("probed-" + page.lastPathComponent)
        try Data(html.replacingOccurrences(of: "<head>", with: "<head>\n" + probe).utf8).write(to: probed)
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-profile-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        // Chromium dumps the DOM when its virtual time budget runs out; on a loaded machine the probe's
        // image decodes can still be pending then. Retry with a larger budget before calling it a failure.
        var dom = ""
        for budget in [5_000, 20_000, 60_000] {
            dom = try run([
                "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile.path)", "--virtual-time-budget=\(budget)",
                "--dump-dom", probed.absoluteString,
            ])
            if dom.contains("data-probe=\"done\"") { break }
        }
        func attribute(_ name: String) -> String? {
            guard let range = dom.range(of: "\(name)=\"") else { return nil }
            let rest = dom[range.upperBound...]
            return String(rest[..<(rest.firstIndex(of: "\"") ?? rest.endIndex)])
        }
        guard attribute("data-probe") == "done" else {
            throw ValueError.invalidArgument("the page did not finish loading in Chromium (no probe result); DOM starts: \(dom.prefix(300))")
        }
        let errorsJSON = (attribute("data-errors") ?? "[]").replacingOccurrences(of: "&quot;", with: "\"")
        let errors = (try? JSONSerialization.jsonObject(with: Data(errorsJSON.utf8)) as? [String]) ?? [errorsJSON]
        return PageResult(
            errors: errors, svgCount: Int(attribute("data-svg-count") ?? "") ?? 0, svgDrawn: Int(attribute("data-svg-drawn") ?? "") ?? 0,
            lines: Int(attribute("data-lines") ?? "") ?? 0, images: attribute("data-images") ?? "")
    }

    /// Runs Chromium and returns its stdout (stderr, mostly harmless noise, goes to a file).
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path!)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let err = try FileHandle(forWritingTo: errURL)
        defer { try? FileManager.default.removeItem(at: errURL) }
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try? err.close()
        let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        if stderr.contains("Page load failed") { throw ValueError.invalidArgument("Chromium: page load failed") }
        return String(decoding: data, as: UTF8.self)
    }
}

@Suite("Pages in headless Chromium", .serialized, .enabled(if: HeadlessChromium.path != nil, "chromium is not installed (apt-get install chromium)"))
struct BrowserTests {
    @Test func reportLoadsWithoutErrorsAndDrawsCharts() throws {
        let dir = try temporaryDirectory("browser-report")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (report, _, _) = try toyReport(testCount: 60)
        let url = try ReportWriter.write(report, to: dir)
        let result = try HeadlessChromium.load(url)
        #expect(result.errors.isEmpty, "\(result.errors)")
        #expect(result.svgCount == 8)
        #expect(result.svgDrawn == 8)
        #expect(result.lines >= 4)  // raw and smoothed loss, loss per epoch, train and test accuracy, learning rate
        let parts = result.images.split(separator: "/")
        #expect(parts.count == 2 && parts[0] == parts[1] && Int(parts[1]) ?? 0 > 0, "decoded images: \(result.images)")
    }

    @Test func walkthroughPageLoads() throws {
        let dir = try temporaryDirectory("browser-explain")
        defer { try? FileManager.default.removeItem(at: dir) }
        let w = try ToyWalkthrough.make(seed: 0)
        let url = dir.appendingPathComponent("explain.html")
        try Data(w.html().utf8).write(to: url)
        let result = try HeadlessChromium.load(url)
        #expect(result.errors.isEmpty, "\(result.errors)")
        let matrices = w.steps.reduce(0) { $0 + $1.matrices.count }
        #expect(result.svgCount == matrices && result.svgDrawn == matrices)
    }
}
