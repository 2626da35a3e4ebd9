import Foundation

/// One point of a chart series.
public struct ChartPoint: Sendable, Equatable {
    public var x: Double
    public var y: Double
    public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }
}

/// A shaded band around a series (for example mean ± standard deviation over runs).
public struct ChartBandPoint: Sendable, Equatable {
    public var x: Double
    public var low: Double
    public var high: Double
    public init(x: Double, low: Double, high: Double) {
        self.x = x
        self.low = low
        self.high = high
    }
}

/// A named line in a `LineChart`.
public struct ChartSeries: Sendable {
    public enum Style: Sendable { case line, markers, lineAndMarkers }

    public var name: String
    public var points: [ChartPoint]
    /// A colour such as `Palette.blue`; nil takes the next palette colour.
    public var color: String?
    public var style: Style
    public var dashed: Bool
    public var lineWidth: Double
    public var opacity: Double
    public var band: [ChartBandPoint]?
    /// False hides the series from the legend.
    public var inLegend: Bool

    public init(
        name: String, points: [ChartPoint], color: String? = nil, style: Style = .line, dashed: Bool = false,
        lineWidth: Double = 2, opacity: Double = 1, band: [ChartBandPoint]? = nil, inLegend: Bool = true
    ) {
        self.name = name
        self.points = points
        self.color = color
        self.style = style
        self.dashed = dashed
        self.lineWidth = lineWidth
        self.opacity = opacity
        self.band = band
        self.inLegend = inLegend
    }

    /// A series from parallel x and y arrays.
    public init(name: String, x: [Double], y: [Double], color: String? = nil, style: Style = .line) {
        self.init(name: name, points: zip(x, y).map { ChartPoint(x: $0, y: $1) }, color: color, style: style)
    }
}

/// A line chart with several series, optional bands, a title, axis labels with nice ticks and a legend,
/// rendered as standalone SVG.
public struct LineChart: Sendable {
    public enum ValueFormat: Sendable { case number, percent }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [ChartSeries]
    public var width: Double = 720
    public var height: Double = 400
    /// Fixed y range; nil fits the data (always including `yIncludes`).
    public var yRange: ClosedRange<Double>?
    public var yIncludes: [Double] = []
    /// `.percent` prints y ticks of fractions as percentages (0.5 -> 50%).
    public var yFormat: ValueFormat = .number
    public var subtitle: String?
    /// Ticks only at whole numbers on the x axis (epochs, iterations).
    public var integerX = false

    public init(title: String, xLabel: String, yLabel: String, series: [ChartSeries] = []) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    /// True when no series has a finite point.
    public var isEmpty: Bool { !series.contains { s in s.points.contains { $0.x.isFinite && $0.y.isFinite } } }

    public func svg() -> String {
        // Legend layout first: its rows sit between the title and the plot.
        let entries = series.enumerated().filter { $0.element.inLegend }
        var legendItems: [(index: Int, series: ChartSeries, label: String, x: Double, row: Int)] = []
        do {
            var x = 78.0, row = 0
            for (index, s) in entries {
                let label = s.band != nil ? s.name + " (mean ± sd)" : s.name
                let w = 30 + Double(label.count) * 6.6 + 16
                if x + w > width - 24 && x > 78 {
                    x = 78
                    row += 1
                }
                legendItems.append((index, s, label, x, row))
                x += w
            }
        }
        let legendRows = legendItems.isEmpty ? 0 : (legendItems.map(\.row).max()! + 1)
        let titleBlock = subtitle == nil ? 34.0 : 50.0
        let margin = (top: titleBlock + Double(legendRows) * 18 + 10, right: 24.0, bottom: 58.0, left: 78.0)
        let plotW = width - margin.left - margin.right, plotH = height - margin.top - margin.bottom
        let tx: (Double) -> Double = { $0 }
        let ty: (Double) -> Double = { $0 }
        func usable(_ p: ChartPoint) -> Bool { p.x.isFinite && p.y.isFinite }

        var xs: [Double] = [], ys: [Double] = []
        for s in series {
            for p in s.points where usable(p) {
                xs.append(tx(p.x))
                ys.append(ty(p.y))
            }
            for b in s.band ?? [] where b.x.isFinite && b.low.isFinite && b.high.isFinite {
                ys.append(ty(b.low))
                ys.append(ty(b.high))
            }
        }
        ys += yIncludes.map(ty)
        var xScale = NiceScale(minimum: xs.min() ?? 0, maximum: xs.max() ?? 1, targetTicks: 7)
        if integerX && xScale.step < 1 {
            xScale.step = 1
            xScale.lower = xScale.lower.rounded(.down)
            xScale.upper = xScale.upper.rounded(.up)
        }
        var yScale = NiceScale(minimum: ys.min() ?? 0, maximum: ys.max() ?? 1, targetTicks: 6)
        if let r = yRange {
            let lo = ty(r.lowerBound), hi = ty(r.upperBound)
            yScale = NiceScale(minimum: lo, maximum: hi, targetTicks: 6)
            yScale.lower = lo
            yScale.upper = hi
        }
        // When x data is sparse (few epochs), do not extend the axis far beyond it.
        var xLo = xScale.lower, xHi = xScale.upper
        if let mn = xs.min(), let mx = xs.max(), mx > mn { xLo = mn; xHi = mx }
        let yLo = yScale.lower, yHi = yScale.upper
        func px(_ x: Double) -> Double { margin.left + (xHi > xLo ? (x - xLo) / (xHi - xLo) : 0.5) * plotW }
        func py(_ y: Double) -> Double { margin.top + plotH - (yHi > yLo ? (y - yLo) / (yHi - yLo) : 0.5) * plotH }

        var out = SVG.open(width: width, height: height, title: title, className: "chart line-chart")
        out += SVG.text(title, x: margin.left, y: 22, size: 16, weight: "600", extra: "class=\"chart-title\"")
        if let subtitle { out += SVG.text(subtitle, x: margin.left, y: 40, size: 12, fill: "#555555") }

        // Grid and ticks.
        out += "<g class=\"axes\" font-size=\"11\" fill=\"#444444\">"
        for t in yScale.ticks where t >= yLo - 1e-9 && t <= yHi + 1e-9 {
            let y = py(t)
            out += "<line x1=\"\(SVG.coordinate(margin.left))\" x2=\"\(SVG.coordinate(margin.left + plotW))\" y1=\"\(SVG.coordinate(y))\" y2=\"\(SVG.coordinate(y))\" stroke=\"#e3e3e3\" stroke-width=\"1\"/>"
            out += SVG.text(yTickLabel(t, scale: yScale), x: margin.left - 8, y: y + 4, size: 11, anchor: "end", fill: "#444444")
        }
        for t in xTicks(xScale, lo: xLo, hi: xHi) {
            let x = px(t)
            out += "<line x1=\"\(SVG.coordinate(x))\" x2=\"\(SVG.coordinate(x))\" y1=\"\(SVG.coordinate(margin.top + plotH))\" y2=\"\(SVG.coordinate(margin.top + plotH + 5))\" stroke=\"#666666\"/>"
            out += SVG.text(xScale.label(t), x: x, y: margin.top + plotH + 19, size: 11, anchor: "middle", fill: "#444444")
        }
        out += "<rect x=\"\(SVG.coordinate(margin.left))\" y=\"\(SVG.coordinate(margin.top))\" width=\"\(SVG.coordinate(plotW))\" height=\"\(SVG.coordinate(plotH))\" fill=\"none\" stroke=\"#888888\" stroke-width=\"1\"/>"
        out += "</g>"
        out += SVG.text(xLabel, x: margin.left + plotW / 2, y: height - 14, size: 13, anchor: "middle", extra: "class=\"x-label\"")
        out += SVG.text(yLabel, x: 18, y: margin.top + plotH / 2, size: 13, anchor: "middle", rotate: -90, extra: "class=\"y-label\"")

        // Data, clipped to the plot area.
        let clipID = "clip-" + stableID(title + "|" + series.map(\.name).joined(separator: "|") + "|\(width)x\(height)")
        out += "<defs><clipPath id=\"\(clipID)\"><rect x=\"\(SVG.coordinate(margin.left))\" y=\"\(SVG.coordinate(margin.top))\" width=\"\(SVG.coordinate(plotW))\" height=\"\(SVG.coordinate(plotH))\"/></clipPath></defs>"
        out += "<g class=\"data\" clip-path=\"url(#\(clipID))\">"
        for (index, s) in series.enumerated() {
            let color = s.color ?? Palette.color(index)
            if let band = s.band?.filter({ $0.x.isFinite && $0.low.isFinite && $0.high.isFinite }), !band.isEmpty {
                let upper = band.map { "\(SVG.coordinate(px(tx($0.x)))),\(SVG.coordinate(py(ty($0.high))))" }
                let lower = band.reversed().map { "\(SVG.coordinate(px(tx($0.x)))),\(SVG.coordinate(py(ty($0.low))))" }
                out += "<polygon class=\"band\" points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(color)\" fill-opacity=\"0.18\" stroke=\"none\"/>"
            }
            let pts = s.points.filter(usable)
            guard !pts.isEmpty else { continue }
            let coords = pts.map { "\(SVG.coordinate(px(tx($0.x)))),\(SVG.coordinate(py(ty($0.y))))" }
            if s.style != .markers && pts.count > 1 {
                out += "<polyline class=\"series\" data-series=\"\(SVG.escape(s.name))\" points=\"\(coords.joined(separator: " "))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(SVG.coordinate(s.lineWidth))\" stroke-opacity=\"\(SVG.coordinate(s.opacity))\" stroke-linejoin=\"round\" stroke-linecap=\"round\"\(s.dashed ? " stroke-dasharray=\"6 4\"" : "")/>"
            }
            if s.style != .line || pts.count == 1 {
                out += "<g class=\"markers\" data-series=\"\(SVG.escape(s.name))\" fill=\"\(color)\" fill-opacity=\"\(SVG.coordinate(s.opacity))\">"
                for p in pts {
                    out += "<circle cx=\"\(SVG.coordinate(px(tx(p.x))))\" cy=\"\(SVG.coordinate(py(ty(p.y))))\" r=\"3.5\"/>"
                }
                out += "</g>"
            }
        }
        out += "</g>"
        if isEmpty {
            out += SVG.text("no data", x: margin.left + plotW / 2, y: margin.top + plotH / 2, size: 14, anchor: "middle", fill: "#777777")
        }

        // Legend rows under the title.
        if !legendItems.isEmpty {
            out += "<g class=\"legend\" font-size=\"12\">"
            for item in legendItems {
                let color = item.series.color ?? Palette.color(item.index)
                let y = titleBlock + 12 + Double(item.row) * 18
                let x = item.x
                if item.series.style == .markers {
                    out += "<circle cx=\"\(SVG.coordinate(x + 11))\" cy=\"\(SVG.coordinate(y - 4))\" r=\"4\" fill=\"\(color)\"/>"
                } else {
                    out += "<line x1=\"\(SVG.coordinate(x))\" x2=\"\(SVG.coordinate(x + 22))\" y1=\"\(SVG.coordinate(y - 4))\" y2=\"\(SVG.coordinate(y - 4))\" stroke=\"\(color)\" stroke-width=\"3\" stroke-opacity=\"\(SVG.coordinate(max(item.series.opacity, 0.5)))\"\(item.series.dashed ? " stroke-dasharray=\"6 4\"" : "")/>"
                    if item.series.style == .lineAndMarkers {
                        out += "<circle cx=\"\(SVG.coordinate(x + 11))\" cy=\"\(SVG.coordinate(y - 4))\" r=\"3.5\" fill=\"\(color)\"/>"
                    }
                }
                out += SVG.text(item.label, x: x + 28, y: y, size: 12, fill: "#222222")
            }
            out += "</g>"
        }
        out += "</svg>"
        return out
    }

    private func xTicks(_ scale: NiceScale, lo: Double, hi: Double) -> [Double] {
        scale.ticks.filter { $0 >= lo - 1e-9 * max(1, abs(lo)) && $0 <= hi + 1e-9 * max(1, abs(hi)) }
    }

    private func yTickLabel(_ t: Double, scale: NiceScale) -> String {
        switch yFormat {
        case .number: return scale.label(t)
        case .percent:
            let d = max(scale.decimals - 2, 0)
            return String(format: "%.\(d)f%%", t * 100)
        }
    }
}
