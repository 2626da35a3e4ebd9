import Foundation

/// A text spec that does not parse: which statement, and why.
public struct SpecError: Error, Equatable, CustomStringConvertible {
    /// 1-based statement number (0 when the problem is the spec as a whole).
    public var line: Int
    public var statement: String
    public var message: String

    public var description: String {
        line == 0 ? "network spec: \(message)" : "network spec, statement \(line) '\(statement)': \(message)"
    }
}

/// The compact text form of a network, for example
/// `conv 50 3x3 pad 1; relu; maxpool 2; conv 100 3x3 pad 1; relu; maxpool 2; flatten; dense 10`.
///
/// Statements are separated by `;` or new lines; `#` starts a comment. Keywords:
/// - `input 1x28x28` (optional: the per-sample input shape)
/// - `conv FILTERS KHxKW [stride S|SHxSW] [pad P|same|T,L,B,R]`
/// - `maxpool K|KHxKW [stride S|SHxSW]`, `avgpool ...` (stride defaults to the kernel)
/// - `gap` (also `avgpool global`, `globalavgpool`): global average pooling, C x H x W -> C x 1 x 1
/// - `dense UNITS`, `flatten`, `relu`, `leakyrelu [SLOPE]`, `sigmoid`, `tanh`, `logsoftmax`,
///   `batchnorm`, `dropout [P]`
public enum NetworkSpec {
    public struct Parsed {
        public var inputShape: [Int]?
        public var layers: [any Layer]
    }

    /// The largest number a spec takes (filters, units, sizes, strides, padding): 65536.
    public static let maximumNumber = 1 << 16
    /// The most weights a network may have before it is refused as absurd: 2^30 (4 GiB of float32).
    public static let maximumParameters = 1 << 30
    /// The most values one layer's output may hold per sample: 2^28.
    public static let maximumActivations = 1 << 28

    /// Walks the layers' shapes from `inputShape` without creating any weights and throws a `SpecError`
    /// naming the statement when a layer does not fit its input, when one layer's output per sample holds
    /// more than `activationLimit` values, or when the weights add up to more than `parameterLimit`
    /// (overflow-checked). Building the network afterwards allocates only what this accepted.
    /// `parsed.layers` are used for the walk: build the network from fresh layers (or the spec) afterwards.
    public static func checkSize(
        _ parsed: Parsed, inputShape: [Int], parameterLimit: Int = maximumParameters, activationLimit: Int = maximumActivations
    ) throws {
        func product(_ values: [Int]) -> Int? {
            var p = 1
            for v in values {
                let (q, overflow) = p.multipliedReportingOverflow(by: v)
                guard !overflow, v >= 0 else { return nil }
                p = q
            }
            return p
        }
        guard !inputShape.isEmpty, inputShape.count <= 3, inputShape.allSatisfy({ $0 > 0 && $0 <= maximumNumber }),
              let inputCount = product(inputShape), inputCount <= activationLimit else {
            throw SpecError(line: 0, statement: "", message: "input shape \(formatShape(inputShape)) must have 1 to 3 sizes from 1 to \(maximumNumber), at most \(activationLimit) values")
        }
        var shape = inputShape
        var total = 0
        var context = BuildContext()
        for (index, layer) in parsed.layers.enumerated() {
            let statement = layer.specStatement
            func refuse(_ message: String) -> SpecError { SpecError(line: index + 1, statement: statement, message: message) }
            var weights = 0
            if let conv = layer as? Conv2D {
                guard shape.count == 3 else { throw refuse("needs a C x H x W input, got \(formatShape(shape))") }
                let g: ConvGeometry
                do {
                    g = try ConvGeometry(
                        inChannels: shape[0], inHeight: shape[1], inWidth: shape[2], outChannels: conv.filters,
                        kernelHeight: conv.kernel.height, kernelWidth: conv.kernel.width, strideH: conv.stride.height,
                        strideW: conv.stride.width, padding: conv.padding, operation: "conv")
                } catch {
                    throw refuse("input \(formatShape(shape)): \(error)")
                }
                guard let w = product([conv.filters, shape[0], conv.kernel.height, conv.kernel.width]) else {
                    throw refuse("needs more weights than can be counted")
                }
                weights = w &+ conv.filters
                shape = [conv.filters, g.outHeight, g.outWidth]
            } else if let dense = layer as? Dense {
                guard let features = product(shape), let w = product([dense.units, features]) else {
                    throw refuse("needs more weights than can be counted")
                }
                weights = w &+ dense.units
                shape = [dense.units]
            } else {
                // The other built-in layers create at most one value per channel when built.
                do { shape = try layer.build(inputShape: shape, context: &context) } catch { throw refuse("\(error)") }
            }
            guard let values = product(shape), values <= activationLimit else {
                throw refuse("its output \(formatShape(shape)) holds more than \(activationLimit) values per sample")
            }
            total = total > parameterLimit ? total : total &+ weights
            guard weights <= parameterLimit, total <= parameterLimit else {
                throw refuse("the network would need more than \(parameterLimit) weights")
            }
        }
    }

    public static func parse(_ text: String) throws -> Parsed {
        var inputShape: [Int]?
        var layers: [any Layer] = []
        let statements = text.split(whereSeparator: { $0 == "\n" || $0 == ";" }).map { line -> String in
            let noComment = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            return noComment.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
        for (index, statement) in statements.enumerated() {
            var words = Words(statement: statement, number: index + 1)
            let keyword = try words.next("a layer keyword").lowercased()
            switch keyword {
            case "input":
                guard inputShape == nil, layers.isEmpty else { throw words.error("'input' must come first, once") }
                inputShape = try words.shape()
            case "conv", "conv2d":
                let filters = try words.positiveInt("the number of filters")
                let kernel = try words.pair("the kernel size (e.g. 3x3)")
                var stride = (1, 1)
                var padding = Padding.valid
                while let option = words.peek() {
                    switch option.lowercased() {
                    case "stride":
                        _ = words.pop()
                        stride = try words.pair("the stride")
                    case "pad", "padding":
                        _ = words.pop()
                        padding = try words.padding()
                    default: throw words.error("unexpected '\(option)'; conv takes 'stride' and 'pad'")
                    }
                }
                layers.append(Conv2D(filters: filters, kernel: kernel, stride: stride, padding: padding))
            case "gap", "globalavgpool":
                layers.append(GlobalAvgPool())
            case "avgpool" where words.peek()?.lowercased() == "global":
                _ = words.pop()
                layers.append(GlobalAvgPool())
            case "maxpool", "avgpool":
                let kernel = try words.pair("the pool size (e.g. 2)")
                var stride: (Int, Int)?
                if let option = words.peek() {
                    guard option.lowercased() == "stride" else { throw words.error("unexpected '\(option)'; \(keyword) takes 'stride'") }
                    _ = words.pop()
                    stride = try words.pair("the stride")
                }
                layers.append(keyword == "maxpool" ? MaxPool2D(kernel: kernel, stride: stride) : AvgPool2D(kernel: kernel, stride: stride))
            case "dense", "fc", "linear": layers.append(Dense(units: try words.positiveInt("the number of units")))
            case "flatten": layers.append(Flatten())
            case "relu": layers.append(ReLU())
            case "leakyrelu", "leaky_relu", "leaky-relu":
                layers.append(LeakyReLU(slope: try words.optionalFloat("the slope") ?? 0.01))
            case "sigmoid": layers.append(Sigmoid())
            case "tanh": layers.append(Tanh())
            case "logsoftmax", "log_softmax", "log-softmax": layers.append(LogSoftmax())
            case "batchnorm", "bn": layers.append(BatchNorm())
            case "dropout":
                let p = try words.optionalFloat("the drop probability") ?? 0.5
                guard p >= 0, p < 1 else { throw words.error("drop probability \(p) must be in [0, 1)") }
                layers.append(Dropout(probability: p))
            default:
                guard let factory = customFactory(keyword) else {
                    let custom = registeredKeywords.map { ", \($0)" }.joined()
                    throw words.error(
                        "unknown layer '\(keyword)'; known: input, conv, maxpool, avgpool, gap, dense, flatten, relu, leakyrelu, "
                            + "sigmoid, tanh, logsoftmax, batchnorm, dropout\(custom) (a custom layer needs NetworkSpec.registerLayer)")
                }
                do { layers.append(try factory(words.tokens)) } catch { throw words.error("\(error)") }
                words.tokens.removeAll()
            }
            try words.finish()
        }
        guard !layers.isEmpty else { throw SpecError(line: 0, statement: text, message: "the spec names no layers") }
        return Parsed(inputShape: inputShape, layers: layers)
    }
}

/// Tokens of one spec statement.
private struct Words {
    var tokens: [String]
    let statement: String
    let number: Int

    init(statement: String, number: Int) {
        self.statement = statement
        self.number = number
        tokens = statement.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
    }

    func error(_ message: String) -> SpecError { SpecError(line: number, statement: statement, message: message) }
    func peek() -> String? { tokens.first }
    mutating func pop() -> String? { tokens.isEmpty ? nil : tokens.removeFirst() }

    mutating func next(_ what: String) throws -> String {
        guard let t = pop() else { throw error("missing \(what)") }
        return t
    }

    mutating func positiveInt(_ what: String) throws -> Int {
        let t = try next(what)
        guard let v = Int(t), v > 0 else { throw error("\(what) must be a positive integer, got '\(t)'") }
        return try bounded(v, what)
    }

    func bounded(_ v: Int, _ what: String) throws -> Int {
        guard v <= NetworkSpec.maximumNumber else { throw error("\(what) \(v) is too large (at most \(NetworkSpec.maximumNumber))") }
        return v
    }

    /// `3` or `3x5`.
    mutating func pair(_ what: String) throws -> (Int, Int) {
        let t = try next(what)
        let parts = t.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard (parts.count == 1 || parts.count == 2), parts.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw error("\(what) must be a positive size like 3 or 3x3, got '\(t)'")
        }
        let values = try parts.map { try bounded($0 ?? 0, what) }
        return (values[0], values.count == 2 ? values[1] : values[0])
    }

    mutating func shape() throws -> [Int] {
        let t = try next("the input shape (e.g. 1x28x28)")
        let parts = t.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard !parts.isEmpty, parts.count <= 3, parts.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw error("input shape must be F or CxHxW with positive sizes, got '\(t)'")
        }
        return try parts.map { try bounded($0 ?? 0, "the input size") }
    }

    mutating func padding() throws -> Padding {
        let t = try next("the padding (a number, T,L,B,R or 'same')")
        if t.lowercased() == "same" { return .same }
        let parts = t.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 1 || parts.count == 4, parts.allSatisfy({ ($0 ?? -1) >= 0 }) else {
            throw error("padding must be a non-negative number, T,L,B,R or 'same', got '\(t)'")
        }
        let p = try parts.map { try bounded($0 ?? 0, "the padding") }
        if p.count == 1 { return .symmetric(p[0]) }
        return .explicit(top: p[0], left: p[1], bottom: p[2], right: p[3])
    }

    mutating func optionalFloat(_ what: String) throws -> Float? {
        guard let t = pop() else { return nil }
        guard let v = Float(t), v.isFinite else { throw error("\(what) must be a number, got '\(t)'") }
        return v
    }

    func finish() throws {
        if let extra = tokens.first { throw error("unexpected '\(extra)'") }
    }
}
