import ArgumentParser
import ConvNet
import Foundation

@main
struct ConvNetTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convnet",
        abstract: "Build, train, inspect and explain convolutional neural networks on the CPU.",
        subcommands: [GradCheckCommand.self, PlotCommand.self, ExplainCommand.self]
    )
}
