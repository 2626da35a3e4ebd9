import ConvNet
import Foundation

/// Writing to the terminal: stderr for progress, stdout for results.
enum Terminal {
    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) != 0 }

    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Writes one line to stdout at once, unbuffered (a reader sees it while the command runs).
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Writes `text` to stderr without a newline (for a bar redrawn with \r).
    static func status(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// `text` safe to print on a terminal: control characters (escape sequences could retitle or clear the
    /// user's terminal) are shown as `\u{1B}` and the like.
    static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        return text.unicodeScalars.map { isControl($0) ? "\\u{\(String($0.value, radix: 16, uppercase: true))}" : String($0) }.joined()
    }

    private static func isControl(_ s: Unicode.Scalar) -> Bool { s.value < 0x20 || (0x7F...0x9F).contains(s.value) }

    /// One line of compact JSON with stable key order and unescaped slashes.
    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

/// A progress bar per epoch on a terminal; one plain line per epoch otherwise.
struct ProgressDisplay {
    let epochs: Int
    let live = Terminal.stderrIsTerminal
    private var lastDraw = Date.distantPast

    init(epochs: Int) { self.epochs = epochs }

    mutating func show(_ event: TrainingEvent) {
        switch event {
        case .iteration(let r):
            guard live else { return }
            let now = Date()
            guard r.batch == r.batches || now.timeIntervalSince(lastDraw) > 0.1 else { return }
            lastDraw = now
            let width = 28
            let filled = Int(Double(width) * Double(r.batch) / Double(r.batches))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            let remaining = r.seconds / Double(r.batch) * Double(r.batches - r.batch)
            Terminal.status(String(
                format: "\r\u{1B}[2Kepoch %d/%d %@ %d/%d  loss %.4f  %.0f img/s  %@ left",
                r.epoch, epochs, bar, r.batch, r.batches, r.loss, r.imagesPerSecond, formatDuration(remaining)))
        case .epoch(let e):
            var line = String(format: "epoch %d/%d  loss %.4f  train acc %.2f%%", e.epoch, epochs, e.trainLoss, 100 * e.trainAccuracy)
            if let v = e.validationAccuracy { line += String(format: "  val acc %.2f%%", 100 * v) }
            if let t = e.testAccuracy { line += String(format: "  test acc %.2f%%", 100 * t) }
            line += String(format: "  %.1fs  %.0f img/s", e.seconds, e.imagesPerSecond)
            Terminal.status((live ? "\r\u{1B}[2K" : "") + line + "\n")
        }
    }

}

func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
}

/// A problem found while a command runs (not a usage mistake): printed as one line, exit status 1.
struct CommandError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}
