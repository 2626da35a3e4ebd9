import ArgumentParser
import ConvNet
import Foundation

/// The `convnet` command; `Sources/ConvNetMain` runs it.
public struct ConvNetTool: ParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "convnet",
        abstract: "Build, train, inspect and explain convolutional neural networks on the CPU.",
        subcommands: [
            TrainCommand.self, EvalCommand.self, PredictCommand.self, ModelsCommand.self, DatasetsCommand.self,
            DownloadCommand.self, ReportCommand.self, PlotCommand.self, ExplainCommand.self, CompareCommand.self,
            GradCheckCommand.self, BenchCommand.self, ExportCommand.self, StudioCommand.self,
            RecipesCommand.self,
        ]
    )

    /// Runs the command like ArgumentParser's `main()`, but in plain words: an error that Foundation or the
    /// JSON coders raised (a file that cannot be read, bad JSON) is printed without its domain and
    /// internals, and a `ValidationError` thrown from a subcommand's `run()` shows that subcommand's usage.
    /// `Sources/ConvNetMain/main.swift` calls this; a plain `ConvNetTool.main()` from another module would
    /// be ArgumentParser's, without any of it.
    public static func mainWithPlainErrors(_ arguments: [String]? = nil) -> Never {
        var command: ParsableCommand
        do {
            command = try parseAsRoot(arguments)
        } catch {
            exit(withError: PlainErrors.translate(error))
        }
        do {
            try command.run()
        } catch {
            let report = PlainErrors.report(error, root: self, command: command)
            if !report.text.isEmpty {
                FileHandle(fileDescriptor: report.code == 0 ? STDOUT_FILENO : STDERR_FILENO).write(Data((report.text + "\n").utf8))
            }
            Foundation.exit(report.code)
        }
        Foundation.exit(0)
    }
}
