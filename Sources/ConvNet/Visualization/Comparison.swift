import Foundation

/// Runs of one configuration (for example one optimizer) to compare against others.
public struct RunGroup: Sendable {
    public var name: String
    public var runs: [RunMetrics]
    public init(name: String, runs: [RunMetrics]) {
        self.name = name
        self.runs = runs
    }
}

/// Mean and standard deviation of a quantity over runs, per epoch.
public struct EpochStatistics: Sendable, Equatable {
    public var epoch: Int
    public var mean: Double
    public var standardDeviation: Double
    public var runs: Int
}

public enum ComparisonCharts {
    /// Per-epoch mean and sample standard deviation (0 for one run) of `value` over the runs that have it.
    public static func statistics(_ runs: [RunMetrics], _ value: (EpochMetrics) -> Double?) -> [EpochStatistics] {
        var byEpoch: [Int: [Double]] = [:]
        for run in runs {
            for e in run.epochs {
                if let v = value(e), v.isFinite { byEpoch[e.epoch, default: []].append(v) }
            }
        }
        return byEpoch.keys.sorted().map { epoch in
            let values = byEpoch[epoch]!
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.count > 1 ? values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1) : 0
            return EpochStatistics(epoch: epoch, mean: mean, standardDeviation: variance.squareRoot(), runs: values.count)
        }
    }

    /// Train (solid) and test (dashed) accuracy per epoch for each group: the mean over its runs with a
    /// band of ± one standard deviation. Groups keep one colour each.
    public static func accuracy(_ groups: [RunGroup], title: String = "Accuracy per epoch (mean ± sd over runs)") -> LineChart {
        var series: [ChartSeries] = []
        for (index, group) in groups.enumerated() {
            let color = Palette.color(index)
            for (split, dashed, value) in [
                ("train", false, { (e: EpochMetrics) -> Double? in e.trainAccuracy }),
                ("test", true, { (e: EpochMetrics) -> Double? in e.testAccuracy }),
            ] {
                let stats = statistics(group.runs, value)
                guard !stats.isEmpty else { continue }
                let runs = stats.map(\.runs).max() ?? 0
                series.append(ChartSeries(
                    name: "\(group.name) \(split) (\(runs) run\(runs == 1 ? "" : "s"))",
                    points: stats.map { ChartPoint(x: Double($0.epoch), y: $0.mean) }, color: color,
                    style: .lineAndMarkers, dashed: dashed,
                    band: runs > 1 ? stats.map { ChartBandPoint(x: Double($0.epoch), low: $0.mean - $0.standardDeviation, high: $0.mean + $0.standardDeviation) } : nil))
            }
        }
        var chart = LineChart(title: title, xLabel: "epoch", yLabel: "accuracy", series: series)
        chart.yFormat = .percent
        chart.integerX = true
        chart.subtitle = "solid: train, dashed: test; shaded: ± one standard deviation"
        return chart
    }
}

/// A table rendered as aligned text, Markdown or HTML.
public struct TextTable: Sendable {
    public enum Alignment: Sendable { case left, right }
    public var headers: [String]
    public var rows: [[String]]
    /// Per column; missing entries are left-aligned.
    public var alignments: [Alignment]

    public init(headers: [String], rows: [[String]], alignments: [Alignment] = []) {
        self.headers = headers
        self.rows = rows
        self.alignments = alignments
    }

    private func alignment(_ c: Int) -> Alignment { c < alignments.count ? alignments[c] : .left }
    private var columnCount: Int { max(headers.count, rows.map(\.count).max() ?? 0) }
    private func cell(_ row: [String], _ c: Int) -> String { c < row.count ? row[c] : "" }

    /// Aligned plain text with a rule under the header.
    public func text() -> String {
        let n = columnCount
        let widths = (0..<n).map { c in ([headers] + rows).map { cell($0, c).count }.max() ?? 0 }
        func line(_ row: [String]) -> String {
            (0..<n).map { c -> String in
                let s = cell(row, c), pad = String(repeating: " ", count: widths[c] - s.count)
                return alignment(c) == .right ? pad + s : s + pad
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(headers), rule] + rows.map(line)).joined(separator: "\n")
    }

    public func markdown() -> String {
        let n = columnCount
        func line(_ row: [String]) -> String {
            "| " + (0..<n).map { cell(row, $0).replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |"
        }
        let rule = "|" + (0..<n).map { alignment($0) == .right ? " ---: " : " --- " }.joined(separator: "|") + "|"
        return ([line(headers), rule] + rows.map(line)).joined(separator: "\n")
    }

    /// An HTML `<table>` (cells escaped); right-aligned columns get class `num`.
    public func html(className: String = "table") -> String {
        let n = columnCount
        func cls(_ c: Int) -> String { alignment(c) == .right ? " class=\"num\"" : "" }
        var out = "<table class=\"\(className)\"><thead><tr>"
        for c in 0..<n { out += "<th\(cls(c))>\(SVG.escape(cell(headers, c)))</th>" }
        out += "</tr></thead><tbody>"
        for row in rows {
            out += "<tr>"
            for c in 0..<n { out += "<td\(cls(c))>\(SVG.escape(cell(row, c)))</td>" }
            out += "</tr>"
        }
        return out + "</tbody></table>"
    }
}
