import ArgumentParser
import ConvNet
import Foundation

/// Errors as a user reads them, shared by `convnet` and `convnet-mpi`.
public enum PlainErrors {
    /// `error`, or for an error that Foundation or the JSON coders raised (whose descriptions show domains,
    /// codes and Swift type names) one that says the same in plain words.
    public static func translate(_ error: Error) -> Error {
        isFoundationError(error) ? CommandError(plainDescription(error)) : error
    }

    /// The message to print for `error` thrown by `command`'s `run()` (`command` parsed by `root`), and the
    /// exit status: as ArgumentParser's `exit(withError:)` would print it, with Foundation's errors in plain
    /// words, and a `ValidationError` followed by the usage of the subcommand that threw it (not the root's).
    /// Status 0 (a clean exit, such as help) is printed on stdout, others on stderr.
    public static func report(_ error: Error, root: ParsableCommand.Type, command: ParsableCommand?) -> (text: String, code: Int32) {
        let plain = translate(error)
        if let validation = plain as? ValidationError, let command, ObjectIdentifier(type(of: command)) != ObjectIdentifier(root) {
            let sub = type(of: command)
            let names = commandPath(to: sub, from: root) ?? [name(of: root), name(of: sub)]
            let usage = root.usageString(for: sub)
            return ("Error: \(validation.message)\nUsage: \(usage)\n  See '\(names.joined(separator: " ")) --help' for more information.",
                    ExitCode.validationFailure.rawValue)
        }
        return (root.fullMessage(for: plain), root.exitCode(for: plain).rawValue)
    }

    /// The command names from `root` down to `target` ("convnet", "bench", "gemm"), nil when `target` is
    /// not among `root`'s subcommands.
    static func commandPath(to target: ParsableCommand.Type, from root: ParsableCommand.Type) -> [String]? {
        if ObjectIdentifier(root) == ObjectIdentifier(target) { return [name(of: root)] }
        for sub in root.configuration.subcommands {
            if let rest = commandPath(to: target, from: sub) { return [name(of: root)] + rest }
        }
        return nil
    }

    /// A command's name as typed.
    static func name(of command: ParsableCommand.Type) -> String {
        command.configuration.commandName ?? String(describing: command).lowercased()
    }
}

// MARK: - Paths that a user names

/// Checks a file that an option names before anything runs: it must exist and be a regular file (not a
/// folder, a named pipe or a device, which would block or never end). Throws a `ValidationError` naming
/// the option and the path, so the command exits 64.
func checkInputFile(_ path: String, option: String) throws {
    let kind: CheckedFile.Kind?
    do { kind = try CheckedFile.kind(atPath: path) } catch { throw ValidationError("\(option): \(plainWords(error))") }
    guard let kind else { throw ValidationError("\(option): \(path) does not exist") }
    guard kind == .regularFile else { throw ValidationError("\(option): \(DataError.notAFile(path: path, kind: kind))") }
}

/// Checks a file that an option names as an output: what is there must be a regular file (replaced
/// atomically), and its folder must exist unless the command creates it (`creatingFolder`). Throws a
/// `ValidationError` naming the option and the path.
func checkOutputFile(_ path: String, option: String, creatingFolder: Bool = false) throws {
    do {
        try CheckedFile.checkWritable(URL(fileURLWithPath: path), creatingFolder: creatingFolder)
    } catch {
        throw ValidationError("\(option): \(plainWords(error))")
    }
}

/// Checks a folder that an option names as an output (created when missing): what is there must be a
/// folder. Throws a `ValidationError` naming the option and the path.
func checkOutputFolder(_ path: String, option: String) throws {
    let kind: CheckedFile.Kind?
    do { kind = try CheckedFile.kind(atPath: path) } catch { throw ValidationError("\(option): \(plainWords(error))") }
    if let kind, kind != .folder {
        throw ValidationError("\(option): \(path) is \(kind == .regularFile ? "a file" : kind.phrase), not a folder")
    }
}

/// Reads a text file that a user named (a network spec with `--spec FILE`): at most `limit` bytes (1 MiB),
/// a regular file (a folder, a named pipe, a device or /proc/self/mem gives an error naming the path, never
/// a hang or a crash), UTF-8. Errors are `DataError`s in plain words.
func readUserTextFile(_ path: String, limit: Int = 1 << 20) throws -> String {
    try CheckedFile.readText(URL(fileURLWithPath: path), limit: limit)
}
