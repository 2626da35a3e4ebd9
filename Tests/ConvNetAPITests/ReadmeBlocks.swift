import Foundation
import Testing

/// How the README's Swift examples are kept honest: each is copied, line for line, between the markers
/// `// README example begins` and `// README example ends` into a function of a test file (indented by
/// 8 spaces), which is compiled with the tests and run; a test compares the copy with README.md.
enum ReadmeBlocks {
    /// The ```swift code blocks of README.md, in order.
    static func swiftBlocks() throws -> [String] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        return readme.components(separatedBy: "```swift\n").dropFirst().compactMap { $0.components(separatedBy: "\n```").first }
    }

    /// The one block that contains `marker`.
    static func block(containing marker: String) throws -> String {
        let blocks = try swiftBlocks().filter { $0.contains(marker) }
        try #require(blocks.count == 1, "\(blocks.count) README blocks contain \(marker)")
        return blocks[0]
    }

    /// The code between the markers of the test file at `path` (a `#filePath`), its indentation removed.
    static func markedCode(inFile path: String) throws -> String {
        let source = try String(contentsOf: URL(fileURLWithPath: path), encoding: .utf8)
        let begin = try #require(source.range(of: "// README example begins\n"))
        let end = try #require(source.range(of: "        // README example ends"))
        let lines = source[begin.upperBound..<end.lowerBound].split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        return lines.map { $0.hasPrefix("        ") ? String($0.dropFirst(8)) : String($0) }.joined(separator: "\n")
    }
}
