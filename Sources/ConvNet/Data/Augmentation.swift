import Foundation

/// On-the-fly data augmentation of training batches (`convnet train --augment shift=2,flip,erase=0.25`).
///
/// Each training image of each step is changed anew, in this order (torchvision's usual
/// `RandomCrop(padding=N)`, `RandomHorizontalFlip()`, `RandomErasing(p)`):
/// - **shift=N**: translated by (dx, dy), each uniform in [-N, N] (the same as padding by N and cropping
///   at a uniformly random offset). The pixels shifted in take each channel's darkest value in the
///   training set: the black background of the normalised MNIST family and of photos, as torchvision's
///   zero padding before `Normalize` gives.
/// - **flip**: mirrored left to right with probability 0.5.
///   **flip=alternate** (airbench's alternating flips): each training image is mirrored or not by a seeded coin
///   of its own in the first epoch (0-based epoch 0), and the other way in every odd epoch, the same way in every
///   even one: over any two epochs running each image is seen once as it is and once mirrored. The coin depends
///   only on the seed and the image's index in the training set (`alternatingFlip`), not on the batch.
/// - **erase=P**: with probability P one rectangle is set to 0 in every channel, which after
///   normalisation is the data set's mean (torchvision's `RandomErasing(p=P, value=0)` applied after
///   `Normalize`). Its area is uniform in [0.02, 0.33] of the image and its aspect ratio (height/width)
///   log-uniform in [0.3, 3.3], rounded to pixels; a draw that does not fit inside the image is drawn
///   again, up to 10 times, then the image stays as it is (torchvision's rule).
///
/// The draws for an image depend only on the run's seed, the epoch, the batch and the image's row in the
/// (global) batch (`imageSeed`), so the result does not depend on the thread count or the number of
/// data-parallel ranks, and a run resumed from a checkpoint, also mid-epoch, sees the same images as the
/// uninterrupted run. Evaluation never augments.
public struct Augmentation: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The largest translation in pixels, in each direction (0: none).
    public var shift: Int
    /// Mirror left to right with probability 0.5.
    public var flip: Bool
    /// Probability of erasing one rectangle (0: never).
    public var erase: Float
    /// With `flip`: alternate each image's mirror from epoch to epoch instead of a new coin every epoch.
    public var alternateFlips: Bool

    /// Random erasing's area fraction range and aspect-ratio range (torchvision's defaults).
    public static let eraseScale: ClosedRange<Double> = 0.02...0.33
    public static let eraseRatio: ClosedRange<Double> = 0.3...3.3
    /// Draws of a rectangle before giving up on erasing an image.
    public static let eraseAttempts = 10

    /// The accepted forms, for messages.
    public static let forms = "a comma-separated list of shift=N (pixels, N >= 1), flip (or flip=alternate), erase=P (0 < P <= 1; erase alone is P = 0.5), or none"

    public init(shift: Int = 0, flip: Bool = false, erase: Float = 0, alternateFlips: Bool = false) {
        self.shift = shift
        self.flip = flip || alternateFlips
        self.erase = erase
        self.alternateFlips = alternateFlips
    }

    enum CodingKeys: String, CodingKey { case shift, flip, erase, alternateFlips }

    /// Settings saved before alternating flips existed have no `alternateFlips`: they read as false.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        shift = try c.decode(Int.self, forKey: .shift)
        flip = try c.decode(Bool.self, forKey: .flip)
        erase = try c.decode(Float.self, forKey: .erase)
        alternateFlips = try c.decodeIfPresent(Bool.self, forKey: .alternateFlips) ?? false
    }

    /// Parses `shift=2,flip,erase=0.25` (any order, each at most once); `none` is no augmentation.
    /// The message of a bad text names `--augment` and the accepted forms.
    public init(parsing text: String) throws(ValueError) {
        self.init()
        func fail(_ problem: String) -> ValueError { .invalidArgument("--augment: \(problem); it takes \(Augmentation.forms)") }
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        if trimmed == "none" || trimmed == "off" { return }
        guard !trimmed.isEmpty else { throw fail("the list is empty") }
        var seen: Set<String> = []
        for item in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            let key = parts[0], value = parts.count == 2 ? parts[1] : nil
            guard !key.isEmpty else { throw fail("'\(item)' is not an augmentation") }
            guard seen.insert(key).inserted else { throw fail("'\(key)' is given twice") }
            switch key {
            case "shift", "translate":
                guard let value, let n = Int(value), n >= 1 else {
                    throw fail("shift takes a whole number of pixels >= 1 (shift=2), got '\(item)'")
                }
                shift = n
            case "flip", "hflip":
                switch value {
                case nil: flip = true
                case "alternate", "alternating":
                    flip = true
                    alternateFlips = true
                default:
                    throw fail("flip takes no value (it mirrors with probability 0.5) or flip=alternate (each image mirrored every other epoch), got '\(item)'")
                }
            case "erase", "cutout":
                guard let value else { erase = 0.5; continue }
                guard let p = Float(value), p > 0, p <= 1 else {
                    throw fail("erase takes a probability in (0, 1] (erase=0.25), got '\(item)'")
                }
                erase = p
            default:
                throw fail("unknown augmentation '\(key)'")
            }
        }
    }

    /// True when nothing changes an image.
    public var isIdentity: Bool { shift == 0 && !flip && erase == 0 }

    /// The `--augment` text that gives these settings (`none` when nothing is on).
    public var description: String {
        var items: [String] = []
        if shift > 0 { items.append("shift=\(shift)") }
        if flip { items.append(alternateFlips ? "flip=alternate" : "flip") }
        if erase > 0 { items.append("erase=\(erase)") }
        return items.isEmpty ? "none" : items.joined(separator: ",")
    }

    /// Checks the values (for settings read back from a checkpoint); the message names `--augment`.
    public func validate() throws(ValueError) {
        guard shift >= 0 else { throw .invalidArgument("--augment shift must be a whole number of pixels >= 1, got \(shift)") }
        guard flip || !alternateFlips else { throw .invalidArgument("--augment: alternating flips need flip (flip=alternate)") }
        guard erase.isFinite, erase >= 0, erase <= 1 else {
            throw .invalidArgument("--augment erase must be a probability in (0, 1], got \(erase)")
        }
    }

    // MARK: - Random draws

    /// What happens to one image: the translation, the mirror, the rectangle set to 0.
    public struct Draw: Sendable, Equatable {
        public var dx = 0, dy = 0
        public var flip = false
        public var erase: Rectangle?
        public init(dx: Int = 0, dy: Int = 0, flip: Bool = false, erase: Rectangle? = nil) {
            self.dx = dx
            self.dy = dy
            self.flip = flip
            self.erase = erase
        }
    }

    /// A rectangle of pixels: top row `y`, left column `x`.
    public struct Rectangle: Sendable, Equatable {
        public var y, x, height, width: Int
        public init(y: Int, x: Int, height: Int, width: Int) {
            self.y = y
            self.x = x
            self.height = height
            self.width = width
        }
    }

    /// The seed of the generator for image `row` of batch `batch` (0-based) in epoch `epoch` (0-based):
    /// a hash of the run's seed and the three numbers, apart from the seeds of the shuffles and weights.
    public static func imageSeed(seed: UInt64, epoch: Int, batch: Int, row: Int) -> UInt64 {
        func mix(_ value: UInt64) -> UInt64 {
            var z = value
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var h = mix(seed ^ 0x6175_676D_656E_7421)  // "augment!"
        h = mix(h ^ (UInt64(truncatingIfNeeded: epoch) &* 0x9E37_79B9_7F4A_7C15))
        h = mix(h ^ (UInt64(truncatingIfNeeded: batch) &* 0xC2B2_AE3D_27D4_EB4F))
        return mix(h ^ (UInt64(truncatingIfNeeded: row) &* 0x1656_67B1_9E37_79F9))
    }

    /// The draws for one image of `height` x `width` pixels from its generator. Only what is on draws:
    /// the shift (dx, then dy), the mirror, then erasing's coin and rectangle.
    public func draw(_ random: inout SeededGenerator, height: Int, width: Int) -> Draw {
        var d = Draw()
        if shift > 0 {
            d.dx = random.below(2 * shift + 1) - shift
            d.dy = random.below(2 * shift + 1) - shift
        }
        // Alternating flips draw nothing here: `BatchAugmenter` decides them from the image's index.
        if flip && !alternateFlips { d.flip = random.next() >> 63 == 1 }
        if erase > 0, random.nextUnitFloat() < erase {
            let area = Double(height * width)
            let logRatio = Foundation.log(Augmentation.eraseRatio.lowerBound)...Foundation.log(Augmentation.eraseRatio.upperBound)
            for _ in 0..<Augmentation.eraseAttempts {
                let target = area * (Augmentation.eraseScale.lowerBound
                    + (Augmentation.eraseScale.upperBound - Augmentation.eraseScale.lowerBound) * random.nextUnitDouble())
                let ratio = Foundation.exp(logRatio.lowerBound + (logRatio.upperBound - logRatio.lowerBound) * random.nextUnitDouble())
                let h = Int((target * ratio).squareRoot().rounded()), w = Int((target / ratio).squareRoot().rounded())
                guard h >= 1, w >= 1, h < height, w < width else { continue }
                d.erase = Rectangle(y: random.below(height - h + 1), x: random.below(width - w + 1), height: h, width: w)
                break
            }
        }
        return d
    }

    /// Whether `flip=alternate` mirrors training image `image` (its index in the training set) in epoch
    /// `epoch` (0-based): the image's own seeded coin in even epochs, the other side in odd ones.
    public static func alternatingFlip(seed: UInt64, image: Int, epoch: Int) -> Bool {
        var random = SeededGenerator(seed: imageSeed(seed: seed ^ 0x666C_6970_7321_2121, epoch: -1, batch: -1, row: image))  // "flips!!!"
        let coin = random.next() >> 63 == 1
        return coin != (epoch & 1 == 1)
    }

    /// The draws for image `row` of a global batch.
    public func draw(seed: UInt64, epoch: Int, batch: Int, row: Int, height: Int, width: Int) -> Draw {
        var random = SeededGenerator(seed: Augmentation.imageSeed(seed: seed, epoch: epoch, batch: batch, row: row))
        return draw(&random, height: height, width: width)
    }
}

/// An augmentation that does not fit the images it is given; the message says what to change.
public struct AugmentationError: Error, CustomStringConvertible {
    public let description: String

    static func incompatibleData(_ message: String) -> AugmentationError { AugmentationError(description: message) }
}

/// Augments the training batches of one run: knows the images' geometry and the fill of shifted-in pixels.
public struct BatchAugmenter: Sendable {
    public let augmentation: Augmentation
    public let seed: UInt64
    public let channels: Int, height: Int, width: Int
    /// Per channel: the value shifted-in pixels take (the channel's smallest value in the training set).
    public let fill: [Float]

    /// Checks that `train` holds C x H x W images that the augmentation fits and finds the fill.
    public init(_ augmentation: Augmentation, seed: UInt64, train: Dataset) throws(AugmentationError) {
        let shape = train.sampleShape
        guard shape.count == 3 else {
            throw .incompatibleData(
                "--augment \(augmentation) needs images of channels x height x width, but the data set '\(train.name)' has "
                    + "\(formatShape(shape)) samples; train without --augment")
        }
        let fill = train.images.withUnsafeBufferPointer { AugmentationKernels.channelMinimum($0, channels: shape[0], plane: shape[1] * shape[2]) }
        try self.init(augmentation, seed: seed, channels: shape[0], height: shape[1], width: shape[2], fill: fill)
    }

    /// An augmenter for images of the given geometry whose shifted-in pixels take `fill` (one value per channel).
    public init(_ augmentation: Augmentation, seed: UInt64, channels: Int, height: Int, width: Int, fill: [Float]) throws(AugmentationError) {
        precondition(fill.count == channels, "one fill value per channel")
        guard augmentation.shift < min(height, width) else {
            throw .incompatibleData(
                "--augment shift=\(augmentation.shift) moves \(height) x \(width) images out of the frame; "
                    + "give a shift below \(min(height, width)) (2 to 4 pixels is usual)")
        }
        self.augmentation = augmentation
        self.seed = seed
        self.channels = channels
        self.height = height
        self.width = width
        self.fill = fill
    }

    /// Augments, in place, the images of `images` (N x C x H x W): rows `firstRow ..< firstRow + N` of
    /// batch `batch` (0-based) of epoch `epoch` (0-based). A data-parallel rank passes the first global
    /// row of its slice, so every image gets the draws it gets in a run of one process. `indices` are the
    /// images' indices in the training set, one per image (alternating flips need them).
    public func apply(to images: inout Tensor, epoch: Int, batch: Int, firstRow: Int = 0, indices: [Int] = []) {
        let plane = height * width, perImage = channels * plane
        let count = images.count / max(perImage, 1)
        precondition(images.count == count * perImage, "a batch of \(channels) x \(height) x \(width) images")
        precondition(!augmentation.alternateFlips || indices.count == count, "alternating flips need each image's index")
        images.withUnsafeMutableBufferPointer { buffer in
            fill.withUnsafeBufferPointer { fill in
                guard let base = buffer.baseAddress, let fill = fill.baseAddress else { return }
                for i in 0..<count {
                    var d = augmentation.draw(seed: seed, epoch: epoch, batch: batch, row: firstRow + i, height: height, width: width)
                    if augmentation.alternateFlips { d.flip = Augmentation.alternatingFlip(seed: seed, image: indices[i], epoch: epoch) }
                    let image = base + i * perImage
                    if d.dx != 0 || d.dy != 0 {
                        AugmentationKernels.shift(image, channels: channels, height: height, width: width, dx: d.dx, dy: d.dy, fill: fill)
                    }
                    if d.flip { AugmentationKernels.flipHorizontally(image, channels: channels, height: height, width: width) }
                    if let r = d.erase { AugmentationKernels.erase(image, channels: channels, height: height, width: width, rectangle: r, value: 0) }
                }
            }
        }
    }
}

/// The per-image loops of augmentation, on raw C x H x W images in place.
public enum AugmentationKernels {
    /// Moves the image by `dx` columns right and `dy` rows down (negative: left, up): pixel (y, x) takes
    /// the old pixel (y - dy, x - dx), and pixels with no source take `fill[c]` of their channel c.
    /// |dx| and |dy| of the width/height or more leave only fill.
    public static func shift(
        _ image: UnsafeMutablePointer<Float>, channels: Int, height: Int, width: Int, dx: Int, dy: Int, fill: UnsafePointer<Float>
    ) {
        let plane = height &* width
        // Columns of each row that receive a pixel, and where it comes from.
        let to0 = min(max(dx, 0), width), to1 = max(min(width &+ dx, width), 0)
        let kept = max(to1 &- to0, 0)
        for c in 0..<channels {
            let p = image + c &* plane
            let value = fill[c]
            // Rows are visited so that a row is read before it is overwritten: bottom-up when moving down.
            let rows: StrideTo<Int> = dy > 0 ? stride(from: height &- 1, to: -1, by: -1) : stride(from: 0, to: height, by: 1)
            for y in rows {
                let row = p + y &* width
                let source = y &- dy
                if source < 0 || source >= height || kept == 0 {
                    row.update(repeating: value, count: width)
                    continue
                }
                // memmove: the source row may be this row (dy == 0) and overlap it.
                memmove(row + to0, p + source &* width + (to0 &- dx), kept &* MemoryLayout<Float>.stride)
                if to0 > 0 { row.update(repeating: value, count: to0) }
                if to1 < width { (row + to1).update(repeating: value, count: width &- to1) }
            }
        }
    }

    /// Mirrors every row left to right.
    public static func flipHorizontally(_ image: UnsafeMutablePointer<Float>, channels: Int, height: Int, width: Int) {
        for r in 0..<(channels &* height) {
            let row = image + r &* width
            var i = 0, j = width &- 1
            while i < j {
                let t = row[i]
                row[i] = row[j]
                row[j] = t
                i &+= 1
                j &-= 1
            }
        }
    }

    /// Sets the rectangle to `value` in every channel.
    public static func erase(
        _ image: UnsafeMutablePointer<Float>, channels: Int, height: Int, width: Int, rectangle r: Augmentation.Rectangle, value: Float
    ) {
        precondition(r.y >= 0 && r.x >= 0 && r.y + r.height <= height && r.x + r.width <= width, "rectangle inside the image")
        for c in 0..<channels {
            for y in r.y..<(r.y &+ r.height) {
                (image + ((c &* height &+ y) &* width &+ r.x)).update(repeating: value, count: r.width)
            }
        }
    }

    /// The smallest value of each channel of N x C x (plane) images.
    public static func channelMinimum(_ images: UnsafeBufferPointer<Float>, channels: Int, plane: Int) -> [Float] {
        var result = [Float](repeating: 0, count: channels)
        let perImage = channels &* plane
        guard perImage > 0, let base = images.baseAddress, images.count >= perImage else { return result }
        let count = images.count / perImage
        for c in 0..<channels {
            var low = Float.infinity
            for i in 0..<count {
                let p = base + (i &* perImage &+ c &* plane)
                for k in 0..<plane { low = min(low, p[k]) }
            }
            result[c] = low
        }
        return result
    }
}

/// Test-time augmentation (`convnet train --tta flip,shift=1`): the network sees each evaluated image in
/// several forms (passes) and its class probabilities are the mean of theirs.
///
/// The passes are the image itself, with `shift=N` also the image moved N pixels right and down and N
/// pixels left and up (airbench's two diagonal translations, the pixels shifted in taking `fill`, the
/// training set's darkest value per channel as `--augment shift` uses), and with `flip` the mirror of each
/// of those: 1, 2, 3 or 6 passes, weighted alike. See `testTimeOutputs` for how the passes are averaged.
public struct TestTimeAugmentation: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Also the mirror image of every pass.
    public var flip: Bool
    /// The diagonal translation in pixels (0: none).
    public var shift: Int

    public static let forms = "a comma-separated list of flip and shift=N (pixels, N >= 1), or none"

    public init(flip: Bool = false, shift: Int = 0) {
        self.flip = flip
        self.shift = shift
    }

    /// Parses `flip`, `shift=1`, `flip,shift=1`; `none` is no test-time augmentation. The message of a bad
    /// text names `--tta` and the accepted forms.
    public init(parsing text: String) throws(ValueError) {
        self.init()
        func fail(_ problem: String) -> ValueError { .invalidArgument("--tta: \(problem); it takes \(TestTimeAugmentation.forms)") }
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        if trimmed == "none" || trimmed == "off" { return }
        guard !trimmed.isEmpty else { throw fail("the list is empty") }
        var seen: Set<String> = []
        for item in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            let key = parts[0], value = parts.count == 2 ? parts[1] : nil
            guard !key.isEmpty else { throw fail("'\(item)' is not a test-time augmentation") }
            guard seen.insert(key).inserted else { throw fail("'\(key)' is given twice") }
            switch key {
            case "flip", "hflip":
                guard value == nil else { throw fail("flip takes no value, got '\(item)'") }
                flip = true
            case "shift", "translate":
                guard let value, let n = Int(value), n >= 1 else { throw fail("shift takes a whole number of pixels >= 1 (shift=1), got '\(item)'") }
                shift = n
            default:
                throw fail("unknown test-time augmentation '\(key)'")
            }
        }
    }

    /// True when it makes one pass, the image as it is.
    public var isIdentity: Bool { !flip && shift == 0 }

    /// The `--tta` text that gives these settings (`none` when nothing is on).
    public var description: String {
        var items: [String] = []
        if flip { items.append("flip") }
        if shift > 0 { items.append("shift=\(shift)") }
        return items.isEmpty ? "none" : items.joined(separator: ",")
    }

    /// Checks the values (for settings read back from a checkpoint or a model file); the message names `--tta`.
    public func validate() throws(ValueError) {
        guard shift >= 0 else { throw .invalidArgument("--tta shift must be a whole number of pixels >= 1, got \(shift)") }
    }

    /// Every pass, the image as it is first: translations (dx, dy), then their mirrors.
    public var passes: [Augmentation.Draw] {
        var moves = [Augmentation.Draw()]
        if shift > 0 { moves += [Augmentation.Draw(dx: shift, dy: shift), Augmentation.Draw(dx: -shift, dy: -shift)] }
        return flip ? moves + moves.map { Augmentation.Draw(dx: $0.dx, dy: $0.dy, flip: true) } : moves
    }

    /// Checks that samples of `shape` (C x H x W) can be moved and mirrored; the message names `--tta`.
    public func check(sampleShape shape: [Int]) throws(ValueError) {
        guard !isIdentity else { return }
        guard shape.count == 3 else {
            throw .invalidArgument("--tta \(self) needs images of channels x height x width, but the samples are \(formatShape(shape))")
        }
        guard shift < min(shape[1], shape[2]) else {
            throw .invalidArgument("--tta shift=\(shift) moves \(shape[1]) x \(shape[2]) images out of the frame; give a shift below \(min(shape[1], shape[2]))")
        }
    }

    /// The fill of shifted-in pixels for a training set: each channel's smallest value (as `BatchAugmenter`).
    public static func fill(for train: Dataset) -> [Float] {
        let shape = train.sampleShape
        guard shape.count == 3 else { return [] }
        return train.images.withUnsafeBufferPointer { AugmentationKernels.channelMinimum($0, channels: shape[0], plane: shape[1] * shape[2]) }
    }

    /// `images` (N x C x H x W) as pass `pass` shows them: a new tensor, `images` unchanged.
    public static func apply(_ pass: Augmentation.Draw, to images: Tensor, fill: [Float]) -> Tensor {
        var out = images
        guard pass.dx != 0 || pass.dy != 0 || pass.flip, images.rank == 4 else { return out }
        let (channels, height, width) = (images.shape[1], images.shape[2], images.shape[3])
        precondition(fill.count == channels || (pass.dx == 0 && pass.dy == 0), "one fill value per channel")
        let perImage = channels * height * width
        out.withUnsafeMutableBufferPointer { buffer in
            fill.withUnsafeBufferPointer { fill in
                guard let base = buffer.baseAddress else { return }
                for i in 0..<images.batchSize {
                    let image = base + i * perImage
                    if pass.dx != 0 || pass.dy != 0, let f = fill.baseAddress {
                        AugmentationKernels.shift(image, channels: channels, height: height, width: width, dx: pass.dx, dy: pass.dy, fill: f)
                    }
                    if pass.flip { AugmentationKernels.flipHorizontally(image, channels: channels, height: height, width: width) }
                }
            }
        }
        return out
    }
}
