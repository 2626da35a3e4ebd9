import Foundation
import Testing

@testable import ConvNet

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Parses `svg` as XML; throws when it is not well-formed.
func checkWellFormed(_ svg: String) throws {
    _ = try XMLDocument(xmlString: svg, options: [])
}

func temporaryDirectory(_ name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("convnet-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

func sampleMetrics(epochs: Int = 4, perEpoch: Int = 25, test: Bool = true, offset: Double = 0) -> RunMetrics {
    var m = RunMetrics()
    var iteration = 0
    for e in 1...epochs {
        for _ in 0..<perEpoch {
            iteration += 1
            let loss = 2.3 * exp(-Double(iteration) / 40) + 0.1 + 0.05 * sin(Double(iteration))
            m.iterations.append(IterationMetrics(epoch: e, iteration: iteration, loss: loss, learningRate: 0.01 * pow(0.9, Double(e - 1))))
        }
        let accuracy = min(0.99, 0.5 + 0.1 * Double(e) + offset)
        m.epochs.append(EpochMetrics(
            epoch: e, iteration: iteration, trainLoss: 2.3 * exp(-Double(iteration) / 40) + 0.1, trainAccuracy: accuracy,
            testAccuracy: test ? accuracy - 0.03 : nil, seconds: 1.25))
    }
    return m
}

@Suite("Charts")
struct ChartTests {
    @Test func niceTicks() {
        let s = NiceScale(minimum: 0, maximum: 0.93)
        #expect(s.step == 0.2)
        #expect(s.lower == 0)
        #expect(abs(s.upper - 1.0) < 1e-12)
        #expect(s.ticks.count == 6)
        #expect(s.label(0.4) == "0.4")
        let flat = NiceScale(minimum: 3, maximum: 3)
        #expect(flat.lower < 3 && flat.upper > 3)
        let big = NiceScale(minimum: 0, maximum: 4680)
        #expect(big.step == 1000 && big.upper == 5000)
    }

    @Test func movingAverage() {
        #expect(exponentialMovingAverage([2, 2, 2], smoothing: 0.9) == [2, 2, 2])
        let s = exponentialMovingAverage([1, 3], smoothing: 0.5)
        #expect(s[0] == 1)
        #expect(abs(s[1] - 7.0 / 3.0) < 1e-12)  // (0.25*1 + 0.5*3) / 0.75
    }

    @Test func lineChartHasTitleAxesLegendAndIsWellFormed() throws {
        var chart = LineChart(title: "Loss & <friends>", xLabel: "iteration", yLabel: "loss", series: [
            ChartSeries(name: "raw", points: [ChartPoint(x: 1, y: 2), ChartPoint(x: 2, y: .nan), ChartPoint(x: 3, y: 1)]),
            ChartSeries(name: "band", points: [ChartPoint(x: 1, y: 1), ChartPoint(x: 3, y: 1.5)],
                        band: [ChartBandPoint(x: 1, low: 0.5, high: 1.5), ChartBandPoint(x: 3, low: 1, high: 2)]),
            ChartSeries(name: "dots", points: [ChartPoint(x: 2, y: 1.2)], style: .markers),
        ])
        chart.subtitle = "sub"
        let svg = chart.svg()
        try checkWellFormed(svg)
        #expect(svg.contains("Loss &amp; &lt;friends&gt;"))
        #expect(svg.contains(">iteration</text>") && svg.contains(">loss</text>"))
        #expect(svg.contains("class=\"legend\"") && svg.contains(">raw</text>") && svg.contains("band (mean ± sd)"))
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 2)
        #expect(svg.contains("<polygon class=\"band\""))
        #expect(!svg.lowercased().contains("nan"))
        #expect(svg.contains(Palette.blue) && svg.contains(Palette.orange))
    }

    @Test func emptyChartSaysNoData() throws {
        let svg = LineChart(title: "t", xLabel: "x", yLabel: "y", series: [ChartSeries(name: "s", points: [])]).svg()
        try checkWellFormed(svg)
        #expect(svg.contains("no data"))
    }

    @Test func percentAxis() {
        var chart = LineChart(title: "acc", xLabel: "epoch", yLabel: "accuracy", series: [ChartSeries(name: "a", x: [1, 2], y: [0.5, 0.9])])
        chart.yFormat = .percent
        #expect(chart.svg().contains(">60%</text>"))
    }

    @Test func confusionMatrixShowsCountsAndAccuracy() throws {
        let map = HeatMap.confusionMatrix([[8, 2], [1, 9]], classNames: ["cat", "dog"])
        let svg = map.svg()
        try checkWellFormed(svg)
        for text in [">8</text>", ">2</text>", ">1</text>", ">9</text>", ">80.0%</text>", ">90.0%</text>", ">cat</text>", ">dog</text>", "true class", "predicted class", "85.00%"] {
            #expect(svg.contains(text), "missing \(text)")
        }
    }

    @Test func heatMapTwoDecimalsAndMarkers() throws {
        var map = HeatMap(title: "m", values: [[1.234, -0.5], [0, -0.001]])
        map.markers = [MatrixCell(row: 0, column: 1)]
        map.markerLegend = "max"
        let svg = map.svg()
        try checkWellFormed(svg)
        #expect(map.text(row: 0, column: 0) == "1.23")
        #expect(map.text(row: 1, column: 1) == "0.00")
        #expect(svg.contains(">-0.50</text>"))
        #expect(svg.components(separatedBy: "class=\"marker\"").count - 1 == 1)
        // Diverging colours: negative cells are orange-red, positive blue.
        #expect(map.fill(-0.5) != map.fill(0.5))
        #expect(map.fill(0) == .white)
    }

    @Test func comparisonChartAndStatistics() throws {
        let groups = [
            RunGroup(name: "sgd", runs: [sampleMetrics(offset: 0), sampleMetrics(offset: 0.02)]),
            RunGroup(name: "adam", runs: [sampleMetrics(offset: 0.05)]),
        ]
        let stats = ComparisonCharts.statistics(groups[0].runs) { $0.trainAccuracy }
        #expect(stats.count == 4)
        #expect(abs(stats[0].mean - 0.61) < 1e-12)
        #expect(abs(stats[0].standardDeviation - (0.0002).squareRoot()) < 1e-9)
        let svg = ComparisonCharts.accuracy(groups).svg()
        try checkWellFormed(svg)
        #expect(svg.contains("sgd train (2 runs)") && svg.contains("adam test (1 run)"))
        #expect(svg.components(separatedBy: "<polygon class=\"band\"").count - 1 == 2)
    }

    @Test func tables() {
        let t = TextTable(headers: ["optimizer", "accuracy"], rows: [["sgd", "91.2%"], ["adam", "98.0%"]], alignments: [.left, .right])
        #expect(t.text() == "optimizer  accuracy\n---------  --------\nsgd           91.2%\nadam          98.0%")
        #expect(t.markdown().contains("| --- | ---: |"))
        #expect(t.html().contains("<td class=\"num\">98.0%</td>"))
        #expect(TextTable(headers: ["a"], rows: [["<b>"]]).html().contains("&lt;b&gt;"))
    }
}

@Suite("PNG encoder")
struct PNGTests {
    @Test func checksums() {
        #expect(PNGEncoder.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(PNGEncoder.adler32(Array("Wikipedia".utf8)) == 0x11E6_0398)
        #expect(PNGEncoder.adler32([]) == 1)
    }

    /// Reads chunks back, checks their CRCs, and inflates the stored blocks.
    func decode(_ png: [UInt8]) throws -> (width: Int, height: Int, colorType: UInt8, raw: [UInt8]) {
        #expect(Array(png[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        func be(_ i: Int) -> Int { Int(png[i]) << 24 | Int(png[i + 1]) << 16 | Int(png[i + 2]) << 8 | Int(png[i + 3]) }
        var i = 8
        var width = 0, height = 0, colorType: UInt8 = 0
        var idat: [UInt8] = []
        var types: [String] = []
        while i < png.count {
            let length = be(i)
            let type = String(decoding: png[(i + 4)..<(i + 8)], as: UTF8.self)
            types.append(type)
            let data = Array(png[(i + 8)..<(i + 8 + length)])
            #expect(UInt32(be(i + 8 + length)) == PNGEncoder.crc32(png[(i + 4)..<(i + 8 + length)]), "CRC of \(type)")
            if type == "IHDR" {
                width = Int(data[0]) << 24 | Int(data[1]) << 16 | Int(data[2]) << 8 | Int(data[3])
                height = Int(data[4]) << 24 | Int(data[5]) << 16 | Int(data[6]) << 8 | Int(data[7])
                #expect(data[8] == 8)
                colorType = data[9]
            }
            if type == "IDAT" { idat += data }
            i += 12 + length
        }
        #expect(types == ["IHDR", "IDAT", "IEND"])
        #expect(idat[0] == 0x78 && (Int(idat[0]) * 256 + Int(idat[1])) % 31 == 0)
        var raw: [UInt8] = []
        var p = 2
        while true {
            let header = idat[p]
            #expect(header & 0b110 == 0, "stored block")
            let n = Int(idat[p + 1]) | Int(idat[p + 2]) << 8
            let nn = Int(idat[p + 3]) | Int(idat[p + 4]) << 8
            #expect(n ^ nn == 0xFFFF)
            raw += idat[(p + 5)..<(p + 5 + n)]
            p += 5 + n
            if header & 1 == 1 { break }
        }
        let adler = UInt32(idat[p]) << 24 | UInt32(idat[p + 1]) << 16 | UInt32(idat[p + 2]) << 8 | UInt32(idat[p + 3])
        #expect(adler == PNGEncoder.adler32(raw))
        #expect(p + 4 == idat.count)
        return (width, height, colorType, raw)
    }

    @Test func grayscaleRoundTrip() throws {
        let png = try PNGEncoder.encode(width: 3, height: 2, colorType: .grayscale, pixels: [0, 128, 255, 1, 2, 3])
        let d = try decode(png)
        #expect(d.width == 3 && d.height == 2 && d.colorType == 0)
        #expect(d.raw == [0, 0, 128, 255, 0, 1, 2, 3])
    }

    @Test func largeImageSpansSeveralStoredBlocks() throws {
        let w = 300, h = 300
        let pixels = (0..<(w * h * 3)).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let d = try decode(try PNGEncoder.encode(width: w, height: h, colorType: .rgb, pixels: pixels))
        #expect(d.colorType == 2 && d.raw.count == (w * 3 + 1) * h)
        #expect(Array(d.raw[(w * 3 + 2)..<(w * 3 + 10)]) == Array(pixels[(w * 3)..<(w * 3 + 8)]))
    }

    @Test func rejectsBadSizes() {
        #expect(throws: ValueError.self) { try PNGEncoder.encode(width: 2, height: 2, colorType: .rgb, pixels: [1, 2, 3]) }
        #expect(throws: ValueError.self) { try PNGEncoder.encode(width: 0, height: 2, colorType: .grayscale, pixels: []) }
    }

    @Test func rasterScaling() throws {
        let t = try Tensor(shape: [1, 1, 3], scalars: [-1, 0, 1])
        let d = try decode(try RasterImage(tensor: t).png)
        #expect(d.raw == [0, 0, 128, 255])
        let sym = try decode(try RasterImage(tensor: try Tensor(shape: [1, 2], scalars: [0, 2]), scaling: .symmetric).png)
        #expect(sym.raw == [0, 128, 255])
        #expect(throws: ShapeError.self) { try RasterImage(tensor: Tensor(shape: [2, 2, 2, 2])) }
    }

    @Test func imageGridEmbedsPNGs() throws {
        let tiles = (0..<3).map { i in ImageTile(image: Tensor(shape: [1, 4, 4], repeating: Float(i)), caption: "img \(i)", secondCaption: i == 1 ? "wrong" : nil, highlight: i == 1) }
        let svg = try ImageGrid(title: "grid", tiles: tiles, columns: 2).svg()
        try checkWellFormed(svg)
        #expect(svg.components(separatedBy: "href=\"data:image/png;base64,").count - 1 == 3)
        #expect(svg.contains("image-rendering:pixelated"))
        #expect(!svg.contains("http://") || svg.components(separatedBy: "http://").count - 1 == 1)  // only the xmlns
    }
}

@Suite("Run metrics")
struct RunMetricsTests {
    @Test func writerFlushesPerEpochAndRoundTrips() throws {
        let dir = try temporaryDirectory("metrics")
        defer { try? FileManager.default.removeItem(at: dir) }
        let expected = sampleMetrics(epochs: 2, perEpoch: 3, test: false)
        let writer = try MetricsWriter(directory: dir)
        let csvURL = dir.appendingPathComponent("metrics.csv")
        for r in expected.iterations.prefix(3) { writer.record(r) }
        #expect(try String(contentsOf: csvURL, encoding: .utf8) == RunMetrics.csvHeader + "\n")
        try writer.record(expected.epochs[0])
        #expect(try String(contentsOf: csvURL, encoding: .utf8).split(separator: "\n").count == 5)
        for r in expected.iterations.dropFirst(3) { writer.record(r) }
        try writer.record(expected.epochs[1])
        #expect(writer.metrics == expected)

        let fromCSV = try RunMetrics.load(from: dir)
        #expect(fromCSV == expected)
        let fromJSON = try RunMetrics.load(from: dir.appendingPathComponent("metrics.jsonl"))
        #expect(fromJSON == expected)
        let text = try String(contentsOf: csvURL, encoding: .utf8)
        #expect(text.contains("\nepoch,1,3,,,"))
        #expect(text.contains(",,1.25\n"))  // empty test accuracy, then seconds

        // Appending resumes the run.
        let again = try MetricsWriter(directory: dir, append: true)
        #expect(again.metrics == expected)
        again.record(IterationMetrics(epoch: 3, iteration: 7, loss: 0.5, learningRate: 0.1))
        try again.flush()
        #expect(try RunMetrics.load(from: dir).iterations.count == 7)
    }

    @Test func csvFormat() throws {
        let i = IterationMetrics(epoch: 1, iteration: 12, loss: Double(Float(0.693)), learningRate: 0.01)
        #expect(RunMetrics.csvLine(i) == "iteration,1,12,0.693,0.01,,,,")
        let e = EpochMetrics(epoch: 2, iteration: 24, trainLoss: 0.5, trainAccuracy: 0.875, testAccuracy: 0.9, seconds: 3)
        #expect(RunMetrics.csvLine(e) == "epoch,2,24,,,0.5,0.875,0.9,3")
        #expect(RunMetrics.jsonLine(e) == "{\"type\":\"epoch\",\"epoch\":2,\"iteration\":24,\"train_loss\":0.5,\"train_accuracy\":0.875,\"test_accuracy\":0.9,\"seconds\":3}")
        let m = try RunMetrics.parseCSV(RunMetrics(iterations: [i], epochs: [e]).csv)
        #expect(m.epochs == [e])
        // A value that came from a Float is written in its shortest Float form and reads back as that Float.
        #expect(m.iterations.count == 1 && Float(m.iterations[0].loss) == Float(0.693) && m.iterations[0].loss == 0.693)
        // Columns are found by name; CRLF line ends are fine.
        let shuffled = "epoch,type,iteration,loss,learning_rate,train_loss,train_accuracy,test_accuracy,seconds,extra\r\n1,iteration,5,0.25,0.1,,,,,x\r\n"
        #expect(try RunMetrics.parseCSV(shuffled).iterations == [IterationMetrics(epoch: 1, iteration: 5, loss: 0.25, learningRate: 0.1)])
    }

    @Test func clearErrors() throws {
        let dir = try temporaryDirectory("bad-metrics")
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: MetricsError.missingFile(path: dir.appendingPathComponent("metrics.csv").path)) { try RunMetrics.load(from: dir) }
        let missing = dir.appendingPathComponent("nope")
        let error = #expect(throws: MetricsError.self) { try RunMetrics.load(from: missing) }
        #expect(error?.description.contains("convnet train --out DIR") == true)

        try Data("a,b,c\n".utf8).write(to: dir.appendingPathComponent("metrics.csv"))
        let header = #expect(throws: MetricsError.self) { try RunMetrics.load(from: dir) }
        #expect(header?.description.contains("lacks type, epoch") == true)

        let bad = RunMetrics.csvHeader + "\niteration,1,1,0.5,0.1,,,,\niteration,1,x,0.5,0.1,,,,\n"
        #expect(throws: MetricsError.badRow(path: "m.csv", line: 3, message: "iteration 'x' is not an integer")) { try RunMetrics.parseCSV(bad, source: "m.csv") }
        #expect(throws: MetricsError.self) { try RunMetrics.parseCSV(RunMetrics.csvHeader + "\niteration,1,1\n") }
        #expect(throws: MetricsError.self) { try RunMetrics.parseCSV(RunMetrics.csvHeader + "\nbatch,1,1,0.5,0.1,,,,\n") }
        #expect(throws: MetricsError.self) { try RunMetrics.parseJSONLines("{\"type\":\"epoch\"\n") }
        #expect(try RunMetrics.parseCSV(RunMetrics.csvHeader + "\n").isEmpty)
    }

    @Test func runChartsWriteFourFiles() throws {
        let dir = try temporaryDirectory("charts")
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = try RunCharts.write(sampleMetrics(), to: dir)
        #expect(files.map(\.lastPathComponent) == ["loss.svg", "loss_per_epoch.svg", "accuracy.svg", "learning_rate.svg"])
        for f in files {
            let text = try String(contentsOf: f, encoding: .utf8)
            #expect(text.hasPrefix("<?xml"))
            try checkWellFormed(text)
        }
        let loss = try String(contentsOf: files[0], encoding: .utf8)
        #expect(loss.contains("smoothed (EMA 0.90)") && loss.contains("epoch mean"))
        #expect(try String(contentsOf: files[2], encoding: .utf8).contains("best test accuracy 87.00% (epoch 4)"))
    }
}

@Suite("Chart axes")
struct ChartAxisTests {
    @Test func epochAxisHasWholeNumbersOnly() {
        let svg = RunCharts.accuracy(sampleMetrics(epochs: 4)).svg()
        #expect(svg.contains(">2</text>") && !svg.contains(">1.5</text>"))
    }
}
