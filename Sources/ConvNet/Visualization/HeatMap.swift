import Foundation

/// A cell of a matrix: row and column, from the top left.
public struct MatrixCell: Sendable, Hashable {
    public var row: Int
    public var column: Int
    public init(row: Int, column: Int) {
        self.row = row
        self.column = column
    }
}

/// A matrix drawn as coloured cells with the value printed in each, for confusion matrices and the
/// small matrices of the walkthrough.
public struct HeatMap: Sendable {
    public enum ColorScale: Sendable {
        /// White to blue over [0, max]: counts and probabilities.
        case sequential
        /// Orange for negative, white for zero, blue for positive, symmetric around zero.
        case diverging
        /// Sequential when every value is non-negative, diverging otherwise.
        case automatic
    }

    public var title: String
    public var values: [[Double]]
    /// Printed in each cell; nil prints the value with `decimals` decimals.
    public var cellText: [[String]]?
    public var decimals = 2
    public var rowLabels: [String]?
    public var columnLabels: [String]?
    /// Axis captions (for example "true class" and "predicted class").
    public var rowAxisLabel: String?
    public var columnAxisLabel: String?
    /// Cells outlined and marked (for example the max-pool winners).
    public var markers: Set<MatrixCell> = []
    public var markerLegend: String?
    public var colorScale: ColorScale = .automatic
    /// Values the colours span; nil uses the data's extent.
    public var colorRange: ClosedRange<Double>?
    /// An extra labelled column to the right of the matrix (for example per-class accuracy).
    public var extraColumn: (title: String, values: [String])?
    public var cellSize: Double = 46
    public var subtitle: String?

    public init(title: String, values: [[Double]]) {
        self.title = title
        self.values = values
    }

    /// A matrix from a 2-D float tensor (or any tensor, as one row per leading index).
    public init(title: String, tensor: Tensor) {
        let columns = tensor.shape.last ?? 1
        let rows = max(tensor.count / max(columns, 1), tensor.count == 0 ? 0 : 1)
        var v: [[Double]] = []
        for r in 0..<rows { v.append((0..<columns).map { Double(tensor.scalars[r * columns + $0]) }) }
        self.init(title: title, values: v)
    }

    public var rows: Int { values.count }
    public var columns: Int { values.map(\.count).max() ?? 0 }

    /// The text of one cell as drawn.
    public func text(row: Int, column: Int) -> String {
        if let cellText, row < cellText.count, column < cellText[row].count { return cellText[row][column] }
        guard row < values.count, column < values[row].count else { return "" }
        return formatValue(values[row][column], decimals: decimals)
    }

    /// The fill of a value under this map's scale.
    public func fill(_ v: Double) -> RGBColor {
        guard v.isFinite else { return RGBColor(hex: "#bbbbbb") }
        let finite = values.flatMap { $0 }.filter(\.isFinite)
        let lo = colorRange?.lowerBound ?? finite.min() ?? 0
        let hi = colorRange?.upperBound ?? finite.max() ?? 1
        let diverging: Bool
        switch colorScale {
        case .sequential: diverging = false
        case .diverging: diverging = true
        case .automatic: diverging = lo < 0
        }
        let positive = RGBColor(hex: Palette.blue), negative = RGBColor(hex: Palette.vermillion)
        if diverging {
            let m = max(abs(lo), abs(hi), 1e-12)
            return v >= 0 ? RGBColor.white.mixed(with: positive, v / m) : RGBColor.white.mixed(with: negative, -v / m)
        }
        let base = min(lo, 0)
        let span = max(hi - base, 1e-12)
        return RGBColor.white.mixed(with: positive, (v - base) / span)
    }

    public func svg() -> String {
        let rowLabelWidth = rowLabels.map { labels in 12 + Double(labels.map(\.count).max() ?? 0) * 7 } ?? 0
        let rowAxisWidth = rowAxisLabel == nil ? 0.0 : 22
        let columnLabelHeight = columnLabels == nil ? 0.0 : 22
        let columnAxisHeight = columnAxisLabel == nil ? 0.0 : 20
        let extraWidth = extraColumn.map { 16 + max(Double($0.title.count) * 7, 50) } ?? 0
        let titleHeight = subtitle == nil ? 30.0 : 46
        let left = 10 + rowAxisWidth + rowLabelWidth
        let top = titleHeight + columnAxisHeight + columnLabelHeight + 4
        let gridW = Double(columns) * cellSize, gridH = Double(rows) * cellSize
        let legendHeight = markers.isEmpty || markerLegend == nil ? 0.0 : 22
        let titleWidth = max(Double(title.count) * 8.5, Double(subtitle?.count ?? 0) * 6.2) + 20
        let width = max(left + gridW + extraWidth + 12, titleWidth, 120)
        let height = top + gridH + 12 + legendHeight
        let fontSize = min(13, cellSize * 0.3)

        var out = SVG.open(width: width, height: height, title: title, className: "chart heat-map")
        out += SVG.text(title, x: 10, y: 20, size: 14, weight: "600", extra: "class=\"chart-title\"")
        if let subtitle { out += SVG.text(subtitle, x: 10, y: 37, size: 11, fill: "#555555") }
        if let columnAxisLabel {
            out += SVG.text(columnAxisLabel, x: left + gridW / 2, y: titleHeight + 14, size: 12, anchor: "middle", weight: "600", fill: "#444444")
        }
        if let rowAxisLabel {
            out += SVG.text(rowAxisLabel, x: 10 + 12, y: top + gridH / 2, size: 12, anchor: "middle", weight: "600", fill: "#444444", rotate: -90)
        }
        if let columnLabels {
            for (c, label) in columnLabels.enumerated() where c < columns {
                out += SVG.text(label, x: left + (Double(c) + 0.5) * cellSize, y: top - 8, size: 11, anchor: "middle", fill: "#444444")
            }
        }
        if let rowLabels {
            for (r, label) in rowLabels.enumerated() where r < rows {
                out += SVG.text(label, x: left - 6, y: top + (Double(r) + 0.5) * cellSize + 4, size: 11, anchor: "end", fill: "#444444")
            }
        }
        out += "<g class=\"cells\">"
        for r in 0..<rows {
            for c in 0..<values[r].count {
                let v = values[r][c]
                let color = fill(v)
                let x = left + Double(c) * cellSize, y = top + Double(r) * cellSize
                out += "<rect class=\"cell\" x=\"\(SVG.coordinate(x))\" y=\"\(SVG.coordinate(y))\" width=\"\(SVG.coordinate(cellSize))\" height=\"\(SVG.coordinate(cellSize))\" fill=\"\(color.hex)\" stroke=\"#ffffff\" stroke-width=\"1\"><title>\(SVG.escape("row \(r), column \(c): \(v)"))</title></rect>"
                out += SVG.text(text(row: r, column: c), x: x + cellSize / 2, y: y + cellSize / 2 + fontSize * 0.36, size: fontSize, anchor: "middle", fill: color.textColor)
            }
        }
        out += "</g>"
        out += "<rect x=\"\(SVG.coordinate(left))\" y=\"\(SVG.coordinate(top))\" width=\"\(SVG.coordinate(gridW))\" height=\"\(SVG.coordinate(gridH))\" fill=\"none\" stroke=\"#888888\"/>"
        if !markers.isEmpty {
            out += "<g class=\"markers\" fill=\"none\" stroke=\"#000000\" stroke-width=\"3\">"
            for m in markers.sorted(by: { ($0.row, $0.column) < ($1.row, $1.column) }) where m.row < rows && m.column < columns {
                let x = left + Double(m.column) * cellSize + 2.5, y = top + Double(m.row) * cellSize + 2.5
                out += "<rect class=\"marker\" x=\"\(SVG.coordinate(x))\" y=\"\(SVG.coordinate(y))\" width=\"\(SVG.coordinate(cellSize - 5))\" height=\"\(SVG.coordinate(cellSize - 5))\"/>"
            }
            out += "</g>"
            if let markerLegend {
                let y = top + gridH + 24
                out += "<rect x=\"\(SVG.coordinate(left))\" y=\"\(SVG.coordinate(y - 11))\" width=\"12\" height=\"12\" fill=\"none\" stroke=\"#000000\" stroke-width=\"2.5\"/>"
                out += SVG.text(markerLegend, x: left + 18, y: y, size: 11, fill: "#444444")
            }
        }
        if let extraColumn {
            let x = left + gridW + 12
            out += SVG.text(extraColumn.title, x: x, y: top - 8, size: 11, weight: "600", fill: "#444444")
            for (r, value) in extraColumn.values.enumerated() where r < rows {
                out += SVG.text(value, x: x, y: top + (Double(r) + 0.5) * cellSize + 4, size: 12, fill: "#222222")
            }
        }
        out += "</svg>"
        return out
    }

    /// A confusion matrix: rows are true classes, columns predicted classes, the count in each cell,
    /// colours by the fraction of the row, and each class's accuracy (recall) at the right.
    public static func confusionMatrix(_ counts: [[Int]], classNames: [String], title: String = "Confusion matrix (test set)") -> HeatMap {
        let fractions = counts.map { row -> [Double] in
            let total = row.reduce(0, +)
            return row.map { total > 0 ? Double($0) / Double(total) : 0 }
        }
        var map = HeatMap(title: title, values: fractions)
        map.cellText = counts.map { $0.map(String.init) }
        map.rowLabels = classNames
        map.columnLabels = classNames
        map.rowAxisLabel = "true class"
        map.columnAxisLabel = "predicted class"
        map.colorScale = .sequential
        map.colorRange = 0...1
        let total = counts.reduce(0) { $0 + $1.reduce(0, +) }
        let correct = counts.indices.reduce(0) { $0 + ($1 < counts[$1].count ? counts[$1][$1] : 0) }
        map.subtitle = total > 0
            ? "overall accuracy \(String(format: "%.2f", 100 * Double(correct) / Double(total)))% of \(total) images; colour = share of the true class"
            : "no predictions"
        map.extraColumn = (
            "accuracy",
            counts.enumerated().map { i, row in
                let t = row.reduce(0, +)
                return t > 0 && i < row.count ? String(format: "%.1f%%", 100 * Double(row[i]) / Double(t)) : "–"
            }
        )
        let longest = classNames.map(\.count).max() ?? 1
        map.cellSize = max(34, min(60, Double(longest) * 7 + 8))
        return map
    }
}

/// A value with `decimals` decimals; negative zero prints as zero.
public func formatValue(_ v: Double, decimals: Int = 2) -> String {
    guard v.isFinite else { return v.isNaN ? "nan" : (v > 0 ? "inf" : "-inf") }
    let s = String(format: "%.\(decimals)f", v)
    if s.hasPrefix("-") && s.dropFirst().allSatisfy({ $0 == "0" || $0 == "." }) { return String(s.dropFirst()) }
    return s
}
