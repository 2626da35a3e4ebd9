import ArgumentParser
import ConvNet
import Foundation

struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Draw a run's charts (loss, accuracy, learning rate) as SVG files from its metrics.csv.",
        discussion: "Writes DIR/loss.svg, DIR/loss_per_epoch.svg, DIR/accuracy.svg and DIR/learning_rate.svg.")

    @Argument(help: "The run directory (holding metrics.csv), or a metrics.csv / metrics.jsonl file.")
    var directory: String

    @Option(help: "Where to write the charts (default: the run directory).")
    var out: String?

    @Option(parsing: .unconditional, help: "Smoothing of the loss curve's moving average, in [0, 1).")
    var smoothing: Double = 0.9

    func validate() throws {
        guard smoothing >= 0, smoothing < 1 else { throw ValidationError("--smoothing must be in [0, 1), got \(smoothing)") }
        if let out { try checkOutputFolder(out, option: "--out") }
    }

    func run() throws {
        let source = URL(fileURLWithPath: directory)
        let metrics = try RunMetrics.load(from: source)  // MetricsError says which file and what to do
        guard !metrics.isEmpty else {
            throw ValueError.invalidArgument("\(source.path) has no metrics rows yet: train first, or wait for the first epoch to end")
        }
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: source.path, isDirectory: &isDirectory)
        let target = out.map { URL(fileURLWithPath: $0) } ?? (isDirectory.boolValue ? source : source.deletingLastPathComponent())
        var charts = RunCharts.all(metrics)
        charts[0].svg = RunCharts.lossPerIteration(metrics, smoothing: smoothing).svg()
        do {
            try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        } catch {
            throw CommandError("cannot create the folder \(target.path): \(plainWords(error))")
        }
        for chart in charts {
            let url = target.appendingPathComponent(chart.fileName)
            try AtomicFile.write(Data(SVG.document(chart.svg).utf8), to: url)
            print("wrote \(url.path)")
        }
        print("\(counted(metrics.iterations.count, "iteration")), \(counted(metrics.epochs.count, "epoch"))")
    }
}
