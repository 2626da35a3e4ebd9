import Foundation

/// Per-channel normalisation `(x - mean[c]) / std[c]`, fitted on the training set and applied unchanged to
/// every other set. Stored with the weights through `arrays` / `init(arrays:)`.
public struct Normalization: Sendable, Equatable, Codable {
    public var mean: [Float]
    public var std: [Float]

    /// One mean and standard deviation per channel (or one for all channels). Throws unless both have the
    /// same, non-zero length, every mean is finite and every standard deviation finite and positive.
    public init(mean: [Float], std: [Float]) throws {
        guard !mean.isEmpty, mean.count == std.count else {
            throw ValueError.invalidArgument(
                "normalization needs one mean and one standard deviation per channel, got \(mean.count) means and \(std.count) standard deviations")
        }
        if let bad = mean.firstIndex(where: { !$0.isFinite }) {
            throw ValueError.invalidArgument("normalization mean of channel \(bad) is \(mean[bad]), not a finite number")
        }
        if let bad = std.firstIndex(where: { !($0.isFinite && $0 > 0) }) {
            throw ValueError.invalidArgument("normalization standard deviation of channel \(bad) is \(std[bad]); it must be finite and positive")
        }
        self.init(checkedMean: mean, std: std)
    }

    /// One mean and std for all channels.
    public init(mean: Float, std: Float) throws { try self.init(mean: [mean], std: [std]) }

    /// Values already known to be valid.
    private init(checkedMean mean: [Float], std: [Float]) {
        self.mean = mean
        self.std = std
    }

    /// Leaves values unchanged.
    public static let identity = Normalization(checkedMean: [0], std: [1])

    /// Mean and standard deviation of each channel of N x C x H x W images (one channel for other ranks).
    /// A standard deviation below 1e-6 is replaced by 1.
    public static func fit(_ images: Tensor, perChannel: Bool = true) -> Normalization {
        let n = images.batchSize
        let channels = perChannel && images.rank == 4 ? images.shape[1] : 1
        let plane = n == 0 ? 0 : images.count / (n * channels)
        var sums = [Double](repeating: 0, count: channels), squares = [Double](repeating: 0, count: channels)
        images.withUnsafeBufferPointer { src in
            let p = src.baseAddress!
            for i in 0..<n {
                for c in 0..<channels {
                    let base = p + (i &* channels &+ c) &* plane
                    var s: Float = 0, q: Float = 0   // per plane in Float, accumulated in Double
                    for k in 0..<plane { let x = base[k]; s += x; q += x * x }
                    sums[c] += Double(s); squares[c] += Double(q)
                }
            }
        }
        let total = Double(max(n * plane, 1))
        var mean: [Float] = [], std: [Float] = []
        for c in 0..<channels {
            let m = sums[c] / total
            let v = max(squares[c] / total - m * m, 0)
            let s = v.squareRoot()
            mean.append(Float(m)); std.append(s < 1e-6 ? 1 : Float(s))
        }
        return Normalization(checkedMean: mean, std: std)
    }

    /// Normalises N x C x H x W images in place (any rank when there is one channel). Throws when the
    /// images do not have one channel per mean.
    public func apply(to images: inout Tensor) throws {
        let channels = mean.count
        let n = images.batchSize
        guard channels == 1 || (images.rank == 4 && images.shape[1] == channels) else {
            throw ShapeError.mismatch(
                operation: "normalization with \(channels) channels", expected: "N x \(channels) x H x W images", got: images.shape)
        }
        let plane = n == 0 ? 0 : images.count / (n * channels)
        let mean = self.mean, inv = self.std.map { 1 / $0 }
        images.withUnsafeMutableBufferPointer { buffer in
            guard let p = buffer.baseAddress else { return }
            for i in 0..<n {
                for c in 0..<channels {
                    let base = p + (i &* channels &+ c) &* plane
                    let m = mean[c], s = inv[c]
                    for k in 0..<plane { base[k] = (base[k] - m) * s }
                }
            }
        }
    }

    public func applied(to images: Tensor) throws -> Tensor {
        var copy = images
        try apply(to: &copy)
        return copy
    }

    /// As NumPy arrays to store next to the weights: `norm_mean` and `norm_std`, float32, one value per channel.
    public var arrays: [(name: String, array: NumPyArray)] {
        [("norm_mean", NumPyArray(tensor: try! Tensor(shape: [mean.count], scalars: mean))),
         ("norm_std", NumPyArray(tensor: try! Tensor(shape: [std.count], scalars: std)))]
    }

    /// Reads `norm_mean` / `norm_std` back: nil when the archive has neither; throws when it has only one,
    /// or when they do not make a normalisation (lengths differ, a value is not finite, a std is not positive).
    public init?(arrays: [String: NumPyArray]) throws {
        let m = arrays["norm_mean"], s = arrays["norm_std"]
        if m == nil && s == nil { return nil }
        guard let m, let s else {
            throw ValueError.invalidArgument(m == nil ? "it has 'norm_std' but no 'norm_mean'" : "it has 'norm_mean' but no 'norm_std'")
        }
        try self.init(mean: m.floats(), std: s.floats())
    }
}

/// A fixed chain of image transforms that turns the data's C x H x W into the network's input shape.
public struct InputTransform: Sendable, Equatable, CustomStringConvertible {
    public enum Step: Sendable, Equatable, CustomStringConvertible {
        /// 2x2 average pooling, stride 2 (28 -> 14).
        case downsample2x2
        /// Zero padding on each side (28 -> 32 with 2).
        case pad(top: Int, left: Int, bottom: Int, right: Int)
        /// One channel repeated into three.
        case grayscaleToRGB

        public var description: String {
            switch self {
            case .downsample2x2: return "2x2 average downsample"
            case .pad(let t, let l, let b, let r): return t == b && l == r && t == l ? "zero pad \(t)" : "zero pad \(t),\(l),\(b),\(r)"
            case .grayscaleToRGB: return "grayscale to 3 channels"
            }
        }
    }

    public let input: [Int]
    public let output: [Int]
    public let steps: [Step]

    public var isIdentity: Bool { steps.isEmpty }
    public var description: String {
        isIdentity ? "none" : "\(formatShape(input)) -> \(formatShape(output)): " + steps.map(\.description).joined(separator: ", ")
    }

    /// The transform from `data` (C x H x W) to `network` (C x H x W, or a flat [C*H*W] for dense-only networks).
    /// Throws `DataError.noTransform` naming both shapes when nothing fits.
    public static func choose(from data: [Int], to network: [Int]) throws -> InputTransform {
        guard data.count == 3 else { throw DataError.noTransform(data: data, network: network) }
        if network.count == 1 {
            // A flat input: find the image shape with that many values.
            let (c, h, w) = (data[0], data[1], data[2])
            var candidates: [[Int]] = [[c, h, w], [c, h / 2, w / 2]]
            var side = h
            while side % 2 == 0 && side > 1 { side /= 2; candidates.append([c, side, w * side / h]) }
            candidates += [[3, h, w], [c, h + 4, w + 4], [3, h / 2, w / 2]]
            for candidate in candidates where candidate.reduce(1, *) == network[0] && candidate.allSatisfy({ $0 > 0 }) {
                if let t = try? choose(from: data, to: candidate) { return InputTransform(input: data, output: network, steps: t.steps) }
            }
            throw DataError.noTransform(data: data, network: network)
        }
        guard network.count == 3, network.allSatisfy({ $0 > 0 }) else { throw DataError.noTransform(data: data, network: network) }
        var steps: [Step] = []
        var (h, w) = (data[1], data[2])
        // Halve while the data is at least twice the target.
        while h >= 2 * network[1] && w >= 2 * network[2] && h % 2 == 0 && w % 2 == 0 {
            steps.append(.downsample2x2); h /= 2; w /= 2
        }
        if h != network[1] || w != network[2] {
            let dh = network[1] - h, dw = network[2] - w
            guard dh >= 0, dw >= 0 else { throw DataError.noTransform(data: data, network: network) }
            steps.append(.pad(top: dh / 2, left: dw / 2, bottom: dh - dh / 2, right: dw - dw / 2))
        }
        if data[0] != network[0] {
            guard data[0] == 1 && network[0] == 3 else { throw DataError.noTransform(data: data, network: network) }
            steps.append(.grayscaleToRGB)
        }
        return InputTransform(input: data, output: network, steps: steps)
    }

    /// Applies the steps to N x C x H x W images.
    public func apply(_ images: Tensor) throws -> Tensor {
        guard images.sampleShape == input else {
            throw ShapeError.mismatch(operation: "input transform", expected: "N x \(formatShape(input))", got: images.shape)
        }
        var x = images
        for step in steps { x = Self.apply(step, x) }
        if output.count == 1 { try x.reshape([x.batchSize] + output) }
        return x
    }

    static func apply(_ step: Step, _ x: Tensor) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        switch step {
        case .downsample2x2:
            let (oh, ow) = (h / 2, w / 2)
            return Tensor(shape: [n, c, oh, ow]) { dst in
                x.withUnsafeBufferPointer { src in
                    let s = src.baseAddress!, d = dst.baseAddress!
                    for plane in 0..<(n &* c) {
                        let sp = s + plane &* h &* w, dp = d + plane &* oh &* ow
                        for y in 0..<oh {
                            let r0 = sp + (2 &* y) &* w, r1 = r0 + w, o = dp + y &* ow
                            for xx in 0..<ow {
                                let k = 2 &* xx
                                o[xx] = (r0[k] + r0[k &+ 1] + r1[k] + r1[k &+ 1]) * 0.25
                            }
                        }
                    }
                }
            }
        case .pad(let top, let left, let bottom, let right):
            let (oh, ow) = (h + top + bottom, w + left + right)
            return Tensor(shape: [n, c, oh, ow]) { dst in
                dst.initialize(repeating: 0)
                x.withUnsafeBufferPointer { src in
                    let s = src.baseAddress!, d = dst.baseAddress!
                    for plane in 0..<(n &* c) {
                        for y in 0..<h {
                            (d + plane &* oh &* ow + (y &+ top) &* ow + left).update(from: s + plane &* h &* w + y &* w, count: w)
                        }
                    }
                }
            }
        case .grayscaleToRGB:
            let plane = h * w
            return Tensor(shape: [n, 3 * c, h, w]) { dst in
                x.withUnsafeBufferPointer { src in
                    let s = src.baseAddress!, d = dst.baseAddress!
                    for i in 0..<(n &* c) {
                        for k in 0..<3 { (d + (i &* 3 &+ k) &* plane).initialize(from: s + i &* plane, count: plane) }
                    }
                }
            }
        }
    }
}

/// Data made ready for a network: transformed to its input shape, normalised by the training statistics.
public struct PreparedData: Sendable {
    public var split: DataSplit
    public var validation: Dataset?
    public var transform: InputTransform
    public var normalization: Normalization

    /// The bytes its images take (32-bit floats).
    public var bytes: Int { split.bytes &+ (validation?.images.count ?? 0) &* 4 }
}

extension DataSplit {
    /// Fitting the images to a network's input (padding 28x28 to 32x32, or repeating channels) makes a copy
    /// of them in that shape, beside the loaded ones: throws `MemoryBudgetError` when both do not fit `memoryBudget`.
    public func checkFitting(to inputShape: [Int], name: String, memoryBudget: MemoryBudget) throws(MemoryBudgetError) {
        let images = CheckedSize.sum([train.count, test.count])
        try memoryBudget.check(CheckedSize.sum([bytes, images.flatMap { CheckedSize.product([$0] + inputShape + [4]) }]),
                               for: "the data set '\(name)' fitted to the network's \(formatShape(inputShape)) input",
                               advice: "use a smaller data set (--train-limit)")
    }

    /// Transforms both sets to `inputShape` (chosen automatically), holds out `validationFraction` of the
    /// training set (stratified, seeded), fits the normalisation on what is left for training and applies it
    /// unchanged to the validation and test sets. Pass `normalization` to reuse stored statistics instead.
    public func prepared(for inputShape: [Int], normalize: Bool = true, normalization: Normalization? = nil,
                         validationFraction: Double = 0, seed: UInt64 = 0) throws -> PreparedData {
        let transform = try InputTransform.choose(from: train.sampleShape, to: inputShape)
        var train = self.train, test = self.test
        if !transform.isIdentity {
            train = try Dataset(name: train.name, images: transform.apply(train.images), labels: train.labels, classNames: train.classNames)
            test = try Dataset(name: test.name, images: transform.apply(test.images), labels: test.labels, classNames: test.classNames)
        }
        var validation: Dataset?
        if validationFraction > 0 {
            (train, validation) = try train.holdOut(fraction: validationFraction, seed: seed)
        }
        let norm = normalization ?? (normalize ? Normalization.fit(train.images, perChannel: inputShape.count == 3) : .identity)
        if norm.mean.count == 1 || train.images.rank == 4 {
            try norm.apply(to: &train.images)
            try norm.apply(to: &test.images)
            if validation != nil { try norm.apply(to: &validation!.images) }
        }
        return PreparedData(split: DataSplit(train: train, test: test), validation: validation, transform: transform, normalization: norm)
    }
}
