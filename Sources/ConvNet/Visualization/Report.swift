import Foundation

/// A test image with the first convolution layer's output for it.
public struct FeatureMapSample: Sendable {
    /// The input image, C x H x W.
    public var image: Tensor
    public var caption: String
    /// The first convolution layer's output, C' x H' x W'.
    public var activations: Tensor

    public init(image: Tensor, caption: String, activations: Tensor) {
        self.image = image
        self.caption = caption
        self.activations = activations
    }
}

/// A test image the network got wrong.
public struct MisclassifiedSample: Sendable {
    public var image: Tensor
    public var trueLabel: String
    public var predictedLabel: String
    /// The network's confidence in its prediction, if known (0...1).
    public var confidence: Double?

    public init(image: Tensor, trueLabel: String, predictedLabel: String, confidence: Double? = nil) {
        self.image = image
        self.trueLabel = trueLabel
        self.predictedLabel = predictedLabel
        self.confidence = confidence
    }
}

/// One row of the network table.
public struct NetworkTableRow: Sendable, Equatable {
    public var layer: String
    public var spec: String
    public var outputShape: String
    public var parameters: Int

    public init(layer: String, spec: String, outputShape: String, parameters: Int) {
        self.layer = layer
        self.spec = spec
        self.outputShape = outputShape
        self.parameters = parameters
    }

    /// The table of a built network, starting with its input.
    public static func rows(of network: Sequential) -> [NetworkTableRow] {
        [NetworkTableRow(layer: "input", spec: "", outputShape: formatShape(network.inputShape), parameters: 0)]
            + zip(network.layers, network.outputShapes).map { layer, shape in
                NetworkTableRow(
                    layer: layer.name, spec: layer.specStatement, outputShape: formatShape(shape),
                    parameters: layer.parameters.reduce(0) { $0 + $1.value.count })
            }
    }
}

/// Everything the HTML report of a run shows. Every part is optional: missing parts are left out.
public struct RunReport: Sendable {
    public var title: String
    public var metrics: RunMetrics?
    /// counts[true][predicted].
    public var confusionMatrix: [[Int]]?
    public var classNames: [String]
    /// The first convolution layer's weight, [out, in, kh, kw].
    public var firstLayerFilters: Tensor?
    public var featureMaps: [FeatureMapSample]
    public var misclassified: [MisclassifiedSample]
    /// Test images seen (for "showing N of M wrong").
    public var misclassifiedTotal: Int?
    public var network: [NetworkTableRow]
    public var settings: [(key: String, value: String)]
    /// Shown under the title (for example a date); nil leaves it out.
    public var note: String?

    public init(
        title: String = "Training report", metrics: RunMetrics? = nil, confusionMatrix: [[Int]]? = nil,
        classNames: [String] = [], firstLayerFilters: Tensor? = nil, featureMaps: [FeatureMapSample] = [],
        misclassified: [MisclassifiedSample] = [], misclassifiedTotal: Int? = nil, network: [NetworkTableRow] = [],
        settings: [(key: String, value: String)] = [], note: String? = nil
    ) {
        self.title = title
        self.metrics = metrics
        self.confusionMatrix = confusionMatrix
        self.classNames = classNames
        self.firstLayerFilters = firstLayerFilters
        self.featureMaps = featureMaps
        self.misclassified = misclassified
        self.misclassifiedTotal = misclassifiedTotal
        self.network = network
        self.settings = settings
        self.note = note
    }

    /// Builds the report inputs from a trained network and its test set: runs the network in inference
    /// mode over `test` (in batches) to collect predictions, the confusion matrix and misclassified
    /// images, and records the first convolution layer's filters and its output for a few test images
    /// (the first image of each class, up to `featureMapImages`).
    public static func make(
        network: Sequential, test: Dataset?, metrics: RunMetrics?, settings: [(key: String, value: String)],
        title: String = "Training report", featureMapImages: Int = 3, maxMisclassified: Int = 24, batchSize: Int = 128
    ) throws -> RunReport {
        var report = RunReport(title: title, metrics: metrics, network: NetworkTableRow.rows(of: network), settings: settings)
        let firstConv = network.layers.firstIndex { $0 is Conv2D }
        if let index = firstConv, let conv = network.layers[index] as? Conv2D { report.firstLayerFilters = conv.weight.value }
        guard let test, test.count > 0 else { return report }
        guard test.sampleShape == network.inputShape else {
            throw ShapeError.mismatch(
                operation: "report for test set \(test.name)", expected: "images of shape \(formatShape(network.inputShape))",
                got: test.sampleShape)
        }
        report.classNames = test.classNames
        let classes = max(test.classCount, 2)
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        var wrong: [MisclassifiedSample] = []
        var wrongTotal = 0
        // One output: a probability after a sigmoid layer, else a logit; `predictClasses` thresholds either.
        let endsInSigmoid = network.layers.last is Sigmoid
        let outputKind: LossFunction = endsInSigmoid ? .binaryCrossEntropy : .sigmoidBinaryCrossEntropy
        let per = test.sampleShape.reduce(1, *)
        var start = 0
        while start < test.count {
            let end = min(start + max(batchSize, 1), test.count)
            let output = try network.forward(test.images.batch(start..<end), training: false)
            let width = output.count / max(end - start, 1)
            let predictions = predictClasses(output, loss: outputKind)
            for s in 0..<(end - start) {
                let row = Array(output.scalars[(s * width)..<((s + 1) * width)])
                let predicted = predictions[s]
                let confidence: Double?
                if width == 1 {
                    confidence = endsInSigmoid ? Double(predicted == 1 ? row[0] : 1 - row[0]) : nil
                } else {
                    confidence = probability(of: predicted, in: row, lastLayer: network.layers.last)
                }
                let label = test.labels[start + s]
                if label < classes && predicted < classes { confusion[label][predicted] += 1 }
                if predicted != label {
                    wrongTotal += 1
                    if wrong.count < maxMisclassified {
                        let image = try Tensor(shape: test.sampleShape, scalars: Array(test.images.scalars[((start + s) * per)..<((start + s + 1) * per)]))
                        wrong.append(MisclassifiedSample(
                            image: image, trueLabel: name(label, test.classNames), predictedLabel: name(predicted, test.classNames),
                            confidence: confidence))
                    }
                }
            }
            start = end
        }
        report.confusionMatrix = confusion
        report.misclassified = wrong
        report.misclassifiedTotal = wrongTotal
        if let index = firstConv, featureMapImages > 0 {
            var chosen: [Int] = []
            for c in 0..<test.classCount {
                if let i = test.labels.firstIndex(of: c) { chosen.append(i) }
                if chosen.count == featureMapImages { break }
            }
            for i in 0..<test.count where chosen.count < min(featureMapImages, test.count) && !chosen.contains(i) { chosen.append(i) }
            chosen.sort()
            var x = test.images.gather(chosen)
            for layer in network.layers[...index] { x = try layer.forward(x, training: false, context: network.context) }
            let mapShape = Array(x.shape.dropFirst()), mapSize = mapShape.reduce(1, *)
            for (k, i) in chosen.enumerated() {
                let image = try Tensor(shape: test.sampleShape, scalars: Array(test.images.scalars[(i * per)..<((i + 1) * per)]))
                let maps = try Tensor(shape: mapShape, scalars: Array(x.scalars[(k * mapSize)..<((k + 1) * mapSize)]))
                report.featureMaps.append(FeatureMapSample(image: image, caption: "test #\(i) (\(name(test.labels[i], test.classNames)))", activations: maps))
            }
        }
        return report
    }

    private static func name(_ label: Int, _ names: [String]) -> String { label < names.count ? names[label] : String(label) }

    /// Softmax probability of `index` when the output is logits or log-probabilities.
    private static func probability(of index: Int, in row: [Float], lastLayer: (any Layer)?) -> Double? {
        guard let m = row.max(), m.isFinite else { return nil }
        if lastLayer is LogSoftmax { return Double(expf(row[index])) }
        let sum = row.reduce(Float(0)) { $0 + expf($1 - m) }
        return Double(expf(row[index] - m) / sum)
    }
}

/// Writes a run report as one self-contained HTML page plus each chart as its own SVG file.
public enum ReportWriter {
    public static let fileName = "report.html"

    /// The report's charts (file name, section, SVG), in page order.
    public static func charts(_ report: RunReport) throws -> [RunCharts.Chart] {
        var charts: [RunCharts.Chart] = []
        if let m = report.metrics, !m.isEmpty { charts += RunCharts.all(m) }
        if let counts = report.confusionMatrix {
            let map = HeatMap.confusionMatrix(counts, classNames: report.classNames.count == counts.count ? report.classNames : counts.indices.map(String.init))
            charts.append(.init(fileName: "confusion_matrix.svg", title: map.title, svg: map.svg()))
        }
        if let filters = report.firstLayerFilters, filters.rank == 4 {
            let (o, i, kh, kw) = (filters.shape[0], filters.shape[1], filters.shape[2], filters.shape[3])
            let shown = min(o, 64)
            let tiles = try (0..<shown).map { f -> ImageTile in
                let slice = Array(filters.scalars[(f * i * kh * kw)..<((f + 1) * i * kh * kw)])
                return ImageTile(image: try Tensor(shape: [i, kh, kw], scalars: slice), caption: "\(f + 1)")
            }
            var grid = ImageGrid(title: "First-layer filters", tiles: tiles, columns: min(shown, 12))
            grid.tileSize = 48
            grid.subtitle = "\(o) filters of \(i)x\(kh)x\(kw)" + (shown < o ? ", first \(shown) shown" : "")
                + (i == 3 ? ", as RGB" : i > 1 ? ", averaged over input channels" : "") + "; each scaled to its own range (dark = low)"
            charts.append(.init(fileName: "filters.svg", title: grid.title, svg: try grid.svg()))
        }
        if !report.featureMaps.isEmpty {
            let channels = report.featureMaps.map { $0.activations.shape.first ?? 1 }.max() ?? 1
            let shownChannels = min(channels, 15)
            var tiles: [ImageTile] = []
            for sample in report.featureMaps {
                tiles.append(ImageTile(image: sample.image, caption: "input", highlight: false))
                let a = sample.activations
                let c = a.rank == 3 ? a.shape[0] : 1, plane = a.count / max(c, 1)
                let (h, w) = a.rank == 3 ? (a.shape[1], a.shape[2]) : (1, a.count)
                for k in 0..<shownChannels {
                    if k < c {
                        tiles.append(ImageTile(image: try Tensor(shape: [h, w], scalars: Array(a.scalars[(k * plane)..<((k + 1) * plane)])), caption: "map \(k + 1)"))
                    } else {
                        tiles.append(ImageTile(image: Tensor(shape: [h, w]), caption: ""))
                    }
                }
            }
            var grid = ImageGrid(title: "Feature maps of the first convolution layer", tiles: tiles, columns: 1 + shownChannels)
            grid.tileSize = 64
            grid.rowLabels = report.featureMaps.map(\.caption)
            grid.subtitle = "each row: a test image, then the layer's output channels (before the activation)"
                + (shownChannels < channels ? "; first \(shownChannels) of \(channels) shown" : "") + "; each map scaled to its own range"
            charts.append(.init(fileName: "feature_maps.svg", title: grid.title, svg: try grid.svg()))
        }
        if !report.misclassified.isEmpty {
            let tiles = report.misclassified.map { s in
                ImageTile(
                    image: s.image, caption: "true: \(s.trueLabel)",
                    secondCaption: "pred: \(s.predictedLabel)" + (s.confidence.map { String(format: " %.0f%%", $0 * 100) } ?? ""),
                    highlight: true)
            }
            var grid = ImageGrid(title: "Misclassified test images", tiles: tiles, columns: 8)
            grid.subtitle = report.misclassifiedTotal.map { "\(report.misclassified.count) of \($0) shown" }
            charts.append(.init(fileName: "misclassified.svg", title: grid.title, svg: try grid.svg()))
        }
        return charts
    }

    /// The page as one HTML string (inline SVG and CSS; no external resources).
    public static func html(_ report: RunReport) throws -> String {
        let charts = try charts(report)
        func chart(_ file: String) -> String? {
            charts.first { $0.fileName == file }.map { "<figure class=\"chart\" id=\"\($0.fileName.replacingOccurrences(of: ".svg", with: ""))\">\($0.svg)<figcaption><a href=\"\($0.fileName)\">\($0.fileName)</a></figcaption></figure>" }
        }
        var body = "<header><h1>\(SVG.escape(report.title))</h1>"
        if let note = report.note { body += "<p class=\"note\">\(SVG.escape(note))</p>" }
        body += summary(report) + "</header>"

        let trainingCharts = ["loss.svg", "loss_per_epoch.svg", "accuracy.svg", "learning_rate.svg"].compactMap(chart)
        if !trainingCharts.isEmpty {
            body += "<section><h2>Training</h2><div class=\"grid\">\(trainingCharts.joined())</div></section>"
        }
        if let c = chart("confusion_matrix.svg") {
            body += "<section><h2>Test results</h2><p>Rows are the true classes, columns the predicted ones; the diagonal holds the correct predictions.</p>\(c)</section>"
        }
        let inside = ["filters.svg", "feature_maps.svg"].compactMap(chart)
        if !inside.isEmpty { body += "<section><h2>Inside the network</h2>\(inside.joined())</section>" }
        if let c = chart("misclassified.svg") { body += "<section><h2>Mistakes</h2>\(c)</section>" }
        if !report.network.isEmpty {
            let total = report.network.reduce(0) { $0 + $1.parameters }
            let table = TextTable(
                headers: ["layer", "spec", "output shape", "parameters"],
                rows: report.network.map { [$0.layer, $0.spec, $0.outputShape, grouped($0.parameters)] } + [["total", "", "", grouped(total)]],
                alignments: [.left, .left, .left, .right])
            body += "<section><h2>Network</h2>\(table.html(className: "table network"))</section>"
        }
        if !report.settings.isEmpty {
            let table = TextTable(headers: ["setting", "value"], rows: report.settings.map { [$0.key, $0.value] })
            body += "<section><h2>Settings</h2>\(table.html(className: "table settings"))</section>"
        }
        return page(title: report.title, body: body)
    }

    /// Writes `report.html` and every chart's `.svg` into `directory`; returns the page's URL.
    @discardableResult
    public static func write(_ report: RunReport, to directory: URL) throws -> URL {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for chart in try charts(report) {
            try AtomicFile.write(Data(SVG.document(chart.svg).utf8), to: directory.appendingPathComponent(chart.fileName))
        }
        let url = directory.appendingPathComponent(fileName)
        try AtomicFile.write(Data(try html(report).utf8), to: url)
        return url
    }

    /// Key numbers at the top of the page.
    static func summary(_ report: RunReport) -> String {
        var items: [(String, String)] = []
        if let last = report.metrics?.epochs.last {
            if let t = last.testAccuracy { items.append(("test accuracy", String(format: "%.2f%%", t * 100))) }
            items.append(("train accuracy", String(format: "%.2f%%", last.trainAccuracy * 100)))
            items.append(("epochs", String(report.metrics!.epochs.count)))
            items.append(("iterations", grouped(last.iteration)))
            let seconds = report.metrics!.epochs.reduce(0) { $0 + $1.seconds }
            items.append(("training time", seconds >= 120 ? String(format: "%.1f min", seconds / 60) : String(format: "%.1f s", seconds)))
        } else if let counts = report.confusionMatrix {
            let total = counts.reduce(0) { $0 + $1.reduce(0, +) }
            let correct = counts.indices.reduce(0) { $0 + ($1 < counts[$1].count ? counts[$1][$1] : 0) }
            if total > 0 { items.append(("test accuracy", String(format: "%.2f%%", 100 * Double(correct) / Double(total)))) }
        }
        if !report.network.isEmpty { items.append(("parameters", grouped(report.network.reduce(0) { $0 + $1.parameters }))) }
        guard !items.isEmpty else { return "" }
        return "<dl class=\"summary\">" + items.map { "<div><dt>\(SVG.escape($0.0))</dt><dd>\(SVG.escape($0.1))</dd></div>" }.joined() + "</dl>"
    }

    static func grouped(_ n: Int) -> String {
        let s = String(abs(n))
        var out = ""
        for (i, ch) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out += "," }
            out.append(ch)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// A complete page with the shared stylesheet.
    public static func page(title: String, body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(SVG.escape(title))</title>
        <style>
        \(stylesheet)
        </style>
        </head>
        <body>
        <main>
        \(body)
        </main>
        </body>
        </html>

        """
    }

    static let stylesheet = """
        :root { color-scheme: light; }
        * { box-sizing: border-box; }
        body { margin: 0; background: #f6f6f4; color: #1d1d1d; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; }
        main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
        h1 { font-size: 26px; margin: 0 0 4px; }
        h2 { font-size: 19px; margin: 0 0 12px; padding-bottom: 4px; border-bottom: 1px solid #ddd; }
        h3 { font-size: 16px; margin: 18px 0 6px; }
        section, header { background: #fff; border: 1px solid #e2e2de; border-radius: 8px; padding: 18px 22px; margin: 0 0 20px; }
        .note { color: #555; margin: 0 0 8px; }
        .summary { display: flex; flex-wrap: wrap; gap: 10px 28px; margin: 12px 0 0; }
        .summary div { min-width: 110px; }
        .summary dt { font-size: 12px; color: #666; text-transform: uppercase; letter-spacing: .04em; }
        .summary dd { margin: 0; font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
        .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 16px; }
        figure.chart { margin: 0 0 12px; overflow-x: auto; }
        figure.chart svg { max-width: 100%; height: auto; display: block; }
        figcaption { font-size: 12px; color: #777; }
        figcaption a { color: #0060a0; }
        table.table { border-collapse: collapse; font-variant-numeric: tabular-nums; min-width: 50%; }
        table.table th, table.table td { text-align: left; padding: 4px 14px 4px 0; border-bottom: 1px solid #eee; vertical-align: top; }
        table.table th { font-size: 12px; color: #555; text-transform: uppercase; letter-spacing: .04em; border-bottom: 1px solid #ccc; }
        table.table .num { text-align: right; }
        table.network tr:last-child td { font-weight: 600; border-top: 1px solid #ccc; }
        table.table td { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }
        .step { break-inside: avoid; page-break-inside: avoid; }
        .matrices { display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: flex-start; }
        .matrices svg { max-width: 100%; height: auto; }
        .explain { max-width: 820px; }
        .formula { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; background: #f3f3f0; padding: 2px 6px; border-radius: 4px; }
        @media (max-width: 700px) { main { padding: 12px; } .grid { grid-template-columns: 1fr; } }
        @media print {
          body { background: #fff; font-size: 11pt; }
          main { max-width: none; padding: 0; }
          section, header { border: none; border-radius: 0; padding: 0; margin: 0 0 14pt; }
          section { break-inside: auto; }
          h2 { break-after: avoid; page-break-after: avoid; }
          figure.chart, .step, table.table tr { break-inside: avoid; page-break-inside: avoid; }
          .grid { display: block; }
          figure.chart { overflow: visible; }
          figcaption { display: none; }
          a { color: inherit; text-decoration: none; }
        }
        """
}

/// Builds the report of a trained network (see `RunReport.make`) and writes `directory/report.html`
/// with every chart as its own SVG beside it. Returns the page's URL.
@discardableResult
public func writeReport(
    directory: URL, network: Sequential, test: Dataset?, metrics: RunMetrics?,
    settings: [(key: String, value: String)], title: String = "Training report"
) throws -> URL {
    let report = try RunReport.make(network: network, test: test, metrics: metrics, settings: settings, title: title)
    return try ReportWriter.write(report, to: directory)
}
