import Foundation

/// The standard charts of one training run, built from its metrics.
public enum RunCharts {
    /// A chart and the file name it is saved under.
    public struct Chart: Sendable {
        public var fileName: String
        public var title: String
        public var svg: String
    }

    /// Loss per iteration: the raw mini-batch loss (faint), its exponential moving average, and the
    /// mean training loss of each epoch (markers at the epoch's last iteration).
    public static func lossPerIteration(_ m: RunMetrics, smoothing: Double = 0.9) -> LineChart {
        let x = m.iterations.map { Double($0.iteration) }
        let loss = m.iterations.map(\.loss)
        var series = [
            ChartSeries(name: "loss (per iteration)", points: zip(x, loss).map { ChartPoint(x: $0, y: $1) }, color: Palette.skyBlue, lineWidth: 1, opacity: 0.55),
            ChartSeries(name: "smoothed (EMA \(formatValue(smoothing, decimals: 2)))", points: zip(x, exponentialMovingAverage(loss, smoothing: smoothing)).map { ChartPoint(x: $0, y: $1) }, color: Palette.blue, lineWidth: 2.5),
        ]
        if !m.epochs.isEmpty {
            series.append(ChartSeries(
                name: "epoch mean", points: m.epochs.map { ChartPoint(x: Double($0.iteration), y: $0.trainLoss) },
                color: Palette.vermillion, style: .markers))
        }
        var chart = LineChart(title: "Training loss per iteration", xLabel: "iteration", yLabel: "loss", series: series)
        chart.yIncludes = [0]
        chart.integerX = true
        return chart
    }

    /// Mean training loss per epoch.
    public static func lossPerEpoch(_ m: RunMetrics) -> LineChart {
        var chart = LineChart(
            title: "Training loss per epoch", xLabel: "epoch", yLabel: "mean loss",
            series: [ChartSeries(name: "train loss", points: m.epochs.map { ChartPoint(x: Double($0.epoch), y: $0.trainLoss) }, color: Palette.blue, style: .lineAndMarkers)])
        chart.yIncludes = [0]
        chart.integerX = true
        return chart
    }

    /// Train and test accuracy per epoch.
    public static func accuracy(_ m: RunMetrics) -> LineChart {
        var series = [
            ChartSeries(name: "train", points: m.epochs.map { ChartPoint(x: Double($0.epoch), y: $0.trainAccuracy) }, color: Palette.blue, style: .lineAndMarkers)
        ]
        let test = m.epochs.compactMap { e in e.testAccuracy.map { ChartPoint(x: Double(e.epoch), y: $0) } }
        if !test.isEmpty {
            series.append(ChartSeries(name: "test", points: test, color: Palette.orange, style: .lineAndMarkers, dashed: true))
        }
        var chart = LineChart(title: "Accuracy per epoch", xLabel: "epoch", yLabel: "accuracy", series: series)
        chart.yFormat = .percent
        chart.integerX = true
        if let best = test.max(by: { $0.y < $1.y }) {
            chart.subtitle = "best test accuracy \(String(format: "%.2f", best.y * 100))% (epoch \(String(format: "%.0f", best.x)))"
        }
        return chart
    }

    /// Learning rate per iteration.
    public static func learningRate(_ m: RunMetrics) -> LineChart {
        var chart = LineChart(
            title: "Learning rate", xLabel: "iteration", yLabel: "learning rate",
            series: [ChartSeries(name: "learning rate", points: m.iterations.map { ChartPoint(x: Double($0.iteration), y: $0.learningRate) }, color: Palette.bluishGreen)])
        // Room above the highest rate: a constant rate would otherwise be drawn on the plot's top border.
        let peak = m.iterations.map(\.learningRate).filter(\.isFinite).max() ?? 0
        chart.yIncludes = [0, peak * 1.1]
        chart.integerX = true
        return chart
    }

    /// Every chart of a run, in report order.
    public static func all(_ m: RunMetrics) -> [Chart] {
        [
            ("loss.svg", lossPerIteration(m)), ("loss_per_epoch.svg", lossPerEpoch(m)), ("accuracy.svg", accuracy(m)),
            ("learning_rate.svg", learningRate(m)),
        ].map { Chart(fileName: $0.0, title: $0.1.title, svg: $0.1.svg()) }
    }

    /// Writes every chart of `metrics` into `directory`; returns the files written.
    @discardableResult
    public static func write(_ metrics: RunMetrics, to directory: URL) throws -> [URL] {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return try all(metrics).map { chart in
            let url = directory.appendingPathComponent(chart.fileName)
            try AtomicFile.write(Data(SVG.document(chart.svg).utf8), to: url)
            return url
        }
    }
}
