import Foundation

/// A matrix shown in one walkthrough step.
public struct WalkthroughMatrix: Sendable {
    /// Short symbol, for example `x` or `dL/dK`.
    public var name: String
    public var caption: String
    public var values: [[Float]]
    /// Cells to mark (the max-pool winners).
    public var markers: Set<MatrixCell>

    public init(name: String, caption: String, values: [[Float]], markers: Set<MatrixCell> = []) {
        self.name = name
        self.caption = caption
        self.values = values
        self.markers = markers
    }

    /// A tensor's last two dimensions as rows and columns (a vector becomes one row).
    public init(name: String, caption: String, tensor: Tensor, markers: Set<MatrixCell> = []) {
        let columns = tensor.shape.last ?? 1
        let rows = tensor.count / max(columns, 1)
        self.init(
            name: name, caption: caption,
            values: (0..<rows).map { r in Array(tensor.scalars[(r * columns)..<((r + 1) * columns)]) }, markers: markers)
    }

    public var rows: Int { values.count }
    public var columns: Int { values.first?.count ?? 0 }
    /// All values, row by row.
    public var flat: [Float] { values.flatMap { $0 } }
}

/// One step of the walkthrough.
public struct WalkthroughStep: Sendable {
    public enum Phase: String, Sendable { case forward, backward, update }
    /// A stable key (`input`, `conv`, `maxpool`, ...).
    public var id: String
    public var phase: Phase
    public var title: String
    public var explanation: String
    public var matrices: [WalkthroughMatrix]

    public func matrix(_ name: String) -> WalkthroughMatrix? { matrices.first { $0.name == name } }
}

/// A forward and backward pass of a network, step by step, with every intermediate matrix.
public struct Walkthrough: Sendable {
    public var title: String
    public var introduction: String
    public var steps: [WalkthroughStep]

    public func step(_ id: String) -> WalkthroughStep? { steps.first { $0.id == id } }

    // MARK: Terminal

    /// The walkthrough as terminal text: each matrix a grid of two-decimal values; `colors` adds ANSI
    /// colours (blue positive, orange negative, marked cells inverted).
    public func text(colors: Bool = false, width: Int = 100) -> String {
        var out: [String] = []
        let bold = colors ? "\u{1B}[1m" : "", reset = colors ? "\u{1B}[0m" : "", dim = colors ? "\u{1B}[2m" : ""
        out.append("\(bold)\(title)\(reset)")
        out += wrap(introduction, width: width)
        var phase: WalkthroughStep.Phase?
        for (index, step) in steps.enumerated() {
            if step.phase != phase {
                phase = step.phase
                let name = step.phase == .forward ? "FORWARD PASS" : step.phase == .backward ? "BACKWARD PASS" : "UPDATE"
                out.append("")
                out.append("\(bold)══ \(name) \(String(repeating: "═", count: max(0, min(width, 60) - name.count - 4)))\(reset)")
            }
            out.append("")
            out.append("\(bold)Step \(index + 1). \(step.title)\(reset)")
            out += wrap(step.explanation, width: width).map { dim + $0 + reset }
            // Matrices side by side while they fit in the width.
            var row: [[(text: String, width: Int)]] = []
            var used = 0
            func flush() {
                guard !row.isEmpty else { return }
                let height = row.map(\.count).max()!
                for line in 0..<height {
                    var s = ""
                    for (k, block) in row.enumerated() {
                        let blockWidth = block.map(\.width).max() ?? 0
                        let cell: (text: String, width: Int) = line < block.count ? block[line] : ("", 0)
                        s += cell.text + String(repeating: " ", count: blockWidth - cell.width)
                        if k < row.count - 1 { s += "    " }
                    }
                    out.append("  " + s.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression))
                }
                row = []
                used = 0
            }
            for matrix in step.matrices {
                let block = Self.grid(matrix, colors: colors)
                let w = block.map(\.width).max() ?? 0
                if used > 0 && used + 4 + w > width - 2 { flush() }
                row.append(block)
                used += (used > 0 ? 4 : 0) + w
            }
            flush()
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// One matrix as lines of a box-drawing grid (with their visible widths): caption, then cells with
    /// two-decimal values; marked cells are bracketed.
    public static func grid(_ m: WalkthroughMatrix, colors: Bool = false) -> [(text: String, width: Int)] {
        let texts = m.values.map { $0.map { formatValue(Double($0), decimals: 2) } }
        let cellWidth = (texts.flatMap { $0 }.map(\.count).max() ?? 4) + 2
        let header = "\(m.name) (\(m.rows)x\(m.columns))"
        var lines: [(String, Int)] = []
        let gridWidth = m.columns * (cellWidth + 1) + 1
        lines.append((header, header.count))
        func rule(_ l: String, _ mid: String, _ r: String) -> (String, Int) {
            let s = l + Array(repeating: String(repeating: "─", count: cellWidth), count: m.columns).joined(separator: mid) + r
            return (s, gridWidth)
        }
        lines.append(rule("┌", "┬", "┐"))
        for (r, row) in texts.enumerated() {
            var s = "│"
            for (c, t) in row.enumerated() {
                let marked = m.markers.contains(MatrixCell(row: r, column: c))
                let padded = String(repeating: " ", count: cellWidth - 2 - t.count) + t
                var cell = marked ? "[" + padded + "]" : " " + padded + " "
                if colors {
                    let v = m.values[r][c]
                    let color = v > 0 ? "\u{1B}[38;5;33m" : v < 0 ? "\u{1B}[38;5;208m" : "\u{1B}[2m"
                    cell = (marked ? "\u{1B}[7m\u{1B}[1m" : "") + color + cell + "\u{1B}[0m"
                }
                s += cell + "│"
            }
            lines.append((s, gridWidth))
            if r < texts.count - 1 { lines.append(rule("├", "┼", "┤")) }
        }
        lines.append(rule("└", "┴", "┘"))
        if !m.caption.isEmpty {
            for line in wrapText(m.caption, width: max(gridWidth, 24)) { lines.append((line, line.count)) }
        }
        return lines
    }

    private func wrap(_ text: String, width: Int) -> [String] { wrapText(text, width: width) }

    // MARK: HTML

    /// The walkthrough as one self-contained page with heat-map matrices.
    public func html() -> String {
        var body = "<header><h1>\(SVG.escape(title))</h1><p class=\"explain\">\(SVG.escape(introduction))</p></header>"
        var phase: WalkthroughStep.Phase?
        var open = false
        for (index, step) in steps.enumerated() {
            if step.phase != phase {
                if open { body += "</section>" }
                phase = step.phase
                let name = step.phase == .forward ? "Forward pass" : step.phase == .backward ? "Backward pass" : "One gradient-descent update"
                body += "<section><h2>\(name)</h2>"
                open = true
            }
            body += "<div class=\"step\" id=\"step-\(SVG.escape(step.id))\"><h3>Step \(index + 1). \(SVG.escape(step.title))</h3>"
            body += "<p class=\"explain\">\(SVG.escape(step.explanation))</p><div class=\"matrices\">"
            for m in step.matrices {
                var map = HeatMap(title: "\(m.name) (\(m.rows)x\(m.columns))", values: m.values.map { $0.map(Double.init) })
                map.colorScale = .diverging
                map.cellSize = m.columns > 5 ? 46 : 52
                map.markers = m.markers
                if !m.markers.isEmpty { map.markerLegend = "chosen by the max-pool" }
                map.subtitle = m.caption.isEmpty ? nil : m.caption
                body += map.svg()
            }
            body += "</div></div>"
        }
        if open { body += "</section>" }
        return ReportWriter.page(title: title, body: body)
    }
}

func wrapText(_ text: String, width: Int) -> [String] {
    var lines: [String] = []
    for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
        var line = ""
        for word in paragraph.split(separator: " ") {
            if !line.isEmpty && line.count + 1 + word.count > width {
                lines.append(line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        lines.append(line)
    }
    return lines
}

/// The course's 6x6 toy network (`ToySquares.spec`) on one class-1 example, computed with the
/// library's own layers, loss and optimizer.
public enum ToyWalkthrough {
    /// Runs one forward pass, one backward pass and one SGD update with `learningRate`, recording
    /// every intermediate matrix. The network's weights and the example come from `seed`.
    public static func make(seed: UInt64 = 0, learningRate: Float = 0.1) throws -> Walkthrough {
        guard learningRate.isFinite, learningRate > 0 else {
            throw ValueError.invalidArgument("explain: the learning rate must be a positive number, got \(learningRate)")
        }
        let data = try ToySquares.make(count: 2, seed: seed)
        guard let index = data.labels.firstIndex(of: 1) else { throw ValueError.invalidArgument("toy data has no class-1 example") }
        let x = data.images.batch(index..<(index + 1))
        let net = try Sequential(spec: ToySquares.spec, inputShape: [1, ToySquares.side, ToySquares.side], seed: seed)
        guard net.layers.count == 6, let conv = net.layers[0] as? Conv2D, let leaky = net.layers[1] as? LeakyReLU,
            let pool = net.layers[2] as? MaxPool2D, let dense = net.layers[4] as? Dense
        else { throw SpecError(line: 0, statement: ToySquares.spec, message: "the toy spec no longer has the layers the walkthrough explains") }

        // Forward, layer by layer.
        var outputs: [Tensor] = []
        var h = x
        for layer in net.layers {
            h = try layer.forward(h, training: true, context: net.context)
            outputs.append(h)
        }
        let (z1, a1, p, f, z2, yHat) = (outputs[0], outputs[1], outputs[2], outputs[3], outputs[4], outputs[5])
        let target = try Tensor(shape: yHat.shape, scalars: [1])
        let loss = try binaryCrossEntropy(probabilities: yHat, targets: target)
        let kernel = conv.weight.value, convBias = conv.bias.value, weight = dense.weight.value, denseBias = dense.bias.value
        let winners = Set(pool.argmax.map { MatrixCell(row: Int($0) / z1.shape[3], column: Int($0) % z1.shape[3]) })

        // Backward, layer by layer.
        var gradients: [Tensor] = []  // dL/d(input of layer k), from the last layer back
        var g = loss.gradient
        for layer in net.layers.reversed() {
            g = try layer.backward(g, context: net.context)
            gradients.append(g)
        }
        let dz2 = gradients[0], df = gradients[1], dp = gradients[2], da1 = gradients[3], dz1 = gradients[4]
        let dW = dense.weight.gradient, dc = dense.bias.gradient, dK = conv.weight.gradient, db = conv.bias.gradient

        // One SGD step.
        let sgd = SGD(learningRate: learningRate)
        sgd.step(net.parameters, context: net.context)
        let newYHat = try net.forward(x, training: false)
        let newLoss = try binaryCrossEntropy(probabilities: newYHat, targets: target)

        func s(_ v: Float) -> String { formatValue(Double(v), decimals: 2) }
        func s4(_ v: Float) -> String { formatValue(Double(v), decimals: 4) }
        let slope = leaky.slope
        var steps: [WalkthroughStep] = []
        func add(_ id: String, _ phase: WalkthroughStep.Phase, _ title: String, _ text: String, _ matrices: [WalkthroughMatrix]) {
            steps.append(WalkthroughStep(id: id, phase: phase, title: title, explanation: text, matrices: matrices))
        }
        add("input", .forward, "The input",
            "A 6x6 image of class 1 (\"square\"): uniform noise in [-1, 1] with a 3x3 square of 5.00 somewhere. The network should output a probability close to 1.",
            [WalkthroughMatrix(name: "x", caption: "example \(index) of toy-squares, seed \(seed)", tensor: x)])
        add("kernel", .forward, "The convolution kernel",
            "One 3x3 filter K and its bias b, drawn at random from the seed (PyTorch's default initialisation). Training will shape K into a detector for the square.",
            [WalkthroughMatrix(name: "K", caption: "conv1.weight", tensor: kernel), WalkthroughMatrix(name: "b", caption: "conv1.bias", tensor: convBias)])
        add("conv", .forward, "Convolution",
            "Slide K over x without padding: each output z1[i,j] = b + sum over the 3x3 window of x[i+u, j+v] * K[u,v]. A 6x6 input and a 3x3 kernel give 4x4. Top-left: z1[0,0] = \(s4(z1[0])).",
            [WalkthroughMatrix(name: "z1", caption: "conv1 output", tensor: z1)])
        add("leakyrelu", .forward, "Leaky ReLU",
            "a1 = z1 where z1 > 0, else \(formatValue(Double(slope), decimals: 2)) * z1: positive values pass, negative ones shrink to almost zero.",
            [WalkthroughMatrix(name: "a1", caption: "leakyrelu1 output", tensor: a1)])
        add("maxpool", .forward, "Max pooling",
            "Split a1 into four 2x2 blocks and keep the largest value of each. The marked cells are the winners; the backward pass will send gradient only to them.",
            [WalkthroughMatrix(name: "a1", caption: "winners marked", tensor: a1, markers: winners),
             WalkthroughMatrix(name: "p", caption: "maxpool1 output", tensor: p)])
        add("flatten", .forward, "Flatten",
            "The 2x2 pooled map becomes a vector of 4 features, row by row.",
            [WalkthroughMatrix(name: "f", caption: "flatten1 output", tensor: f)])
        add("dense-weights", .forward, "Dense layer weights",
            "The dense layer has one weight per feature (W, 1x4) and a bias c.",
            [WalkthroughMatrix(name: "W", caption: "dense1.weight", tensor: weight), WalkthroughMatrix(name: "c", caption: "dense1.bias", tensor: denseBias)])
        add("pre-activation", .forward, "Pre-activation",
            "z2 = W · f + c = " + (0..<f.count).map { "\(s(weight[$0]))*\(s(f[$0]))" }.joined(separator: " + ") + " + \(s(denseBias[0])) = \(s4(z2[0])).",
            [WalkthroughMatrix(name: "z2", caption: "dense1 output", tensor: z2)])
        add("sigmoid", .forward, "Sigmoid",
            "ŷ = 1 / (1 + e^(-z2)) = \(s4(yHat[0])): the network's probability that the image shows a square.",
            [WalkthroughMatrix(name: "ŷ", caption: "sigmoid1 output", tensor: yHat)])
        add("loss", .forward, "Loss",
            "Binary cross-entropy with target y = 1: L = -(y ln ŷ + (1 - y) ln(1 - ŷ)) = -ln(\(s4(yHat[0]))) = \(s4(loss.value)).",
            [WalkthroughMatrix(name: "L", caption: "binary cross-entropy", values: [[loss.value]])])

        add("dl-dz", .backward, "Gradient at the output",
            "dL/dŷ = (ŷ - y) / (ŷ (1 - ŷ)) = \(s4(loss.gradient[0])). Through the sigmoid (dŷ/dz2 = ŷ (1 - ŷ)) this simplifies to dL/dz2 = ŷ - y = \(s4(dz2[0])).",
            [WalkthroughMatrix(name: "dL/dŷ", caption: "from the loss", tensor: loss.gradient),
             WalkthroughMatrix(name: "dL/dz2", caption: "through the sigmoid", tensor: dz2)])
        add("dense-gradients", .backward, "Dense weight and bias gradients",
            "dL/dW = dL/dz2 * f (each weight's gradient is its input feature times dL/dz2); dL/dc = dL/dz2.",
            [WalkthroughMatrix(name: "dL/dW", caption: "dense1.weight gradient", tensor: dW),
             WalkthroughMatrix(name: "dL/dc", caption: "dense1.bias gradient", tensor: dc)])
        add("dl-df", .backward, "Gradient of the features",
            "dL/df = dL/dz2 * W, then un-flattened back to the 2x2 shape of the pooled map.",
            [WalkthroughMatrix(name: "dL/df", caption: "dense1 input gradient", tensor: df),
             WalkthroughMatrix(name: "dL/dp", caption: "reshaped to 2x2", tensor: dp)])
        add("maxpool-backward", .backward, "Through the max-pool",
            "Each pooled value came from one cell, so its gradient goes back to that cell only; every other cell gets zero.",
            [WalkthroughMatrix(name: "dL/da1", caption: "maxpool1 input gradient", tensor: da1, markers: winners),
             WalkthroughMatrix(name: "dL/dp", caption: "from the step before", tensor: dp)])
        add("leakyrelu-backward", .backward, "Through the leaky ReLU",
            "Multiply by the slope of the activation: 1 where z1 > 0, \(formatValue(Double(slope), decimals: 2)) elsewhere.",
            [WalkthroughMatrix(name: "dL/dz1", caption: "leakyrelu1 input gradient", tensor: dz1)])
        add("kernel-gradients", .backward, "Kernel and bias gradients",
            "dL/dK[u,v] = sum over i,j of dL/dz1[i,j] * x[i+u, j+v] (the input correlated with the output gradient); dL/db = sum of dL/dz1 = \(s4(db[0])).",
            [WalkthroughMatrix(name: "dL/dK", caption: "conv1.weight gradient", tensor: dK),
             WalkthroughMatrix(name: "dL/db", caption: "conv1.bias gradient", tensor: db)])

        add("update", .update, "Parameters after one update",
            "Plain gradient descent with learning rate \(learningRate): every parameter moves against its gradient, θ ← θ - \(learningRate) * dL/dθ. On this example the loss drops from \(s4(loss.value)) to \(s4(newLoss.value)) (ŷ \(s4(yHat[0])) → \(s4(newYHat[0]))).",
            [WalkthroughMatrix(name: "K'", caption: "conv1.weight", tensor: conv.weight.value),
             WalkthroughMatrix(name: "b'", caption: "conv1.bias", tensor: conv.bias.value),
             WalkthroughMatrix(name: "W'", caption: "dense1.weight", tensor: dense.weight.value),
             WalkthroughMatrix(name: "c'", caption: "dense1.bias", tensor: dense.bias.value),
             WalkthroughMatrix(name: "L'", caption: "loss after the update", values: [[newLoss.value]])])

        return Walkthrough(
            title: "How the toy CNN learns: one forward and backward pass",
            introduction: "Network: \(net.spec). Every number below is computed by ConvNet's own layers, loss and optimizer (seed \(seed), learning rate \(learningRate)).",
            steps: steps)
    }
}
