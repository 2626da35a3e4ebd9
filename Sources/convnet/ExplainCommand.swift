import ArgumentParser
import ConvNet
import Foundation

struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Walk through one forward and backward pass of the 6x6 toy network, step by step.",
        discussion: """
            Runs the toy network (\(ToySquares.spec)) on one class-1 example and prints every matrix: \
            input, kernel, convolution, leaky ReLU, max-pool, dense layer, sigmoid and loss, then the \
            gradients back to the kernel and the parameters after one gradient-descent step.
            """)

    @Option(parsing: .unconditional, help: "Seed for the example and the initial weights.")
    var seed: UInt64 = 0

    @Option(name: .customLong("learning-rate"), parsing: .unconditional, help: "Learning rate of the one update shown at the end.")
    var learningRate: Float = 0.1

    @Option(help: "Also write the walkthrough as an HTML page with heat-map matrices to this file.")
    var html: String?

    @Flag(help: "Never colour the output (colours are used only when stdout is a terminal).")
    var noColor = false

    func validate() throws {
        if !(learningRate.isFinite && learningRate > 0) {
            throw ValidationError("--learning-rate must be a positive number, got \(learningRate)")
        }
        if let html { try checkOutputFile(html, option: "--html", creatingFolder: true) }
    }

    func run() throws {
        let walkthrough = try ToyWalkthrough.make(seed: seed, learningRate: learningRate)
        let colors = !noColor && isatty(STDOUT_FILENO) != 0 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        print(walkthrough.text(colors: colors), terminator: "")
        if let html {
            let url = URL(fileURLWithPath: html)
            try AtomicFile.write(Data(walkthrough.html().utf8), to: url)  // creates the folder; errors name the path
            print("\nwrote \(url.path)")
        }
    }
}
