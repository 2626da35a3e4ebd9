/// Labelled images in memory: `images` is N x C x H x W, `labels[i]` the class of image i.
public struct Dataset: Sendable {
    public var name: String
    public var images: Tensor
    public var labels: [Int]
    public var classNames: [String]

    public init(name: String, images: Tensor, labels: [Int], classNames: [String]) throws {
        guard images.rank >= 2 else {
            throw ShapeError.mismatch(operation: "dataset \(name)", expected: "N x C x H x W images", got: images.shape)
        }
        // An image of 0x0 pixels (or 0 channels) holds nothing to learn from: refused, not padded and trained on.
        guard images.sampleShape.allSatisfy({ $0 > 0 }) else {
            throw ValueError.invalidArgument("dataset \(name): its images are \(formatShape(images.sampleShape)), with no pixels; "
                + "each image needs at least one pixel in every dimension")
        }
        guard images.batchSize == labels.count else {
            throw ValueError.invalidArgument("dataset \(name): \(images.batchSize) images but \(labels.count) labels")
        }
        if let bad = labels.first(where: { $0 < 0 || $0 >= classNames.count }) {
            throw ValueError.labelOutOfRange(label: bad, classes: classNames.count)
        }
        self.name = name
        self.images = images
        self.labels = labels
        self.classNames = classNames
    }

    public var count: Int { labels.count }
    /// Shape of one image (C x H x W).
    public var sampleShape: [Int] { images.sampleShape }
    public var classCount: Int { classNames.count }

    /// The images at `indices`, in that order.
    public func subset(_ indices: [Int], name: String? = nil) -> Dataset {
        // Labels are already validated; construction cannot fail.
        try! Dataset(name: name ?? self.name, images: images.gather(indices), labels: indices.map { labels[$0] }, classNames: classNames)
    }
}

/// A training set and the test set it is judged on.
public struct DataSplit: Sendable {
    public var train: Dataset
    public var test: Dataset

    public init(train: Dataset, test: Dataset) {
        self.train = train
        self.test = test
    }

    /// The bytes its images take (32-bit floats).
    public var bytes: Int { (train.images.count &+ test.images.count) &* 4 }
}
