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

    /// Runs the command like ArgumentParser's `main()`, but an error that Foundation raised (a file that
    /// cannot be read, bad JSON) is printed in plain words, without its domain and internals.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: isFoundationError(error) ? CommandError(plainWords(error)) : error)
        }
    }
}
