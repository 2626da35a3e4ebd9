/// A network of the zoo: its spec, input and the loss it trains with.
public struct ZooModel: Sendable {
    public var name: String
    public var summary: String
    /// Per-sample input shape; a channel count of 0 means "from the data set" (LeNet-5 takes 1 or 3).
    public var inputShape: [Int]
    public var spec: String
    public var loss: LossFunction
    /// The data set `convnet train --model NAME` uses when none is given.
    public var defaultDataset: String

    /// The input shape with the channel count resolved for a data set with `channels` channels.
    public func inputShape(channels: Int) -> [Int] {
        inputShape.first == 0 ? [channels] + inputShape.dropFirst() : inputShape
    }
}

/// The classic networks, by name.
public enum ModelZoo {
    public static let models: [ZooModel] = [
        ZooModel(name: "softmax-regression", summary: "28x28 pixels straight into 10 class scores",
                 inputShape: [1, 28, 28], spec: "flatten; dense 10", loss: .softmaxCrossEntropy, defaultDataset: "mnist-sample"),
        ZooModel(name: "mlp", summary: "a small multilayer perceptron: 14x14 digits -> 30 ReLU units -> 10",
                 inputShape: [1, 14, 14], spec: "flatten; dense 30; relu; dense 10", loss: .softmaxCrossEntropy, defaultDataset: "mnist-sample"),
        ZooModel(name: "tiny-cnn", summary: "the smallest useful CNN: 3 filters 3x3 on 14x14 digits, maxpool, dense 10",
                 inputShape: [1, 14, 14], spec: "conv 3 3x3 pad 1; relu; maxpool 2; flatten; dense 10", loss: .softmaxCrossEntropy,
                 defaultDataset: "mnist-sample"),
        ZooModel(name: "two-conv", summary: "50 and 100 filters 3x3, each with ReLU and maxpool, dense 10",
                 inputShape: [1, 28, 28],
                 spec: "conv 50 3x3 pad 1; relu; maxpool 2; conv 100 3x3 pad 1; relu; maxpool 2; flatten; dense 10",
                 loss: .softmaxCrossEntropy, defaultDataset: "mnist-sample"),
        ZooModel(name: "tf-cnn", summary: "the TensorFlow tutorial net: 32 filters 10x10, 16 filters 5x5, dense 1024",
                 inputShape: [1, 28, 28],
                 spec: "conv 32 10x10 pad same; relu; maxpool 2; conv 16 5x5 pad same; relu; maxpool 2; flatten; dense 1024; relu; dense 10",
                 loss: .softmaxCrossEntropy, defaultDataset: "mnist-sample"),
        ZooModel(name: "lenet5", summary: "LeNet-5 on 32x32 (MNIST padded, or CIFAR-10 in colour)",
                 inputShape: [0, 32, 32],
                 spec: "conv 6 5x5; relu; maxpool 2; conv 16 5x5; relu; maxpool 2; flatten; dense 120; relu; dense 84; relu; dense 10",
                 loss: .softmaxCrossEntropy, defaultDataset: "mnist-sample"),
        ZooModel(name: "vgg-bn", summary: "built for accuracy on 28x28 images: two blocks of two 3x3 convs (32, then 64 filters) with batch norm, maxpool, dense 10",
                 inputShape: [1, 28, 28],
                 spec: "conv 32 3x3 pad 1; batchnorm; relu; conv 32 3x3 pad 1; relu; maxpool 2; batchnorm; "
                     + "conv 64 3x3 pad 1; batchnorm; relu; conv 64 3x3 pad 1; relu; maxpool 2; batchnorm; flatten; dense 10",
                 loss: .softmaxCrossEntropy, defaultDataset: "mnist-sample"),
        ZooModel(name: "fast-bn", summary: "built for accuracy per second on 28x28 images: 32 and 64 filters 3x3, each with maxpool and batch norm, dense 128, dense 10",
                 inputShape: [1, 28, 28],
                 spec: "conv 32 3x3 pad 1; relu; maxpool 2; batchnorm; conv 64 3x3 pad 1; relu; maxpool 2; batchnorm; flatten; dense 128; relu; dense 10",
                 loss: .softmaxCrossEntropy, defaultDataset: "mnist-sample"),
        ZooModel(name: "cifar-vgg", summary: "built for 32x32 colour images (CIFAR-10; gray digits are padded to 32x32 and copied to 3 channels): three blocks of 3x3 convs (32, 64, 128 filters) with batch norm and maxpool, dense 10",
                 inputShape: [3, 32, 32],
                 spec: "conv 32 3x3 pad 1; batchnorm; relu; conv 32 3x3 pad 1; relu; maxpool 2; batchnorm; "
                     + "conv 64 3x3 pad 1; batchnorm; relu; conv 64 3x3 pad 1; relu; maxpool 2; batchnorm; "
                     + "conv 128 3x3 pad 1; batchnorm; relu; conv 128 3x3 pad 1; relu; maxpool 2; batchnorm; flatten; dense 10",
                 loss: .softmaxCrossEntropy, defaultDataset: "mnist-sample"),
        ZooModel(name: "toy", summary: "the 6x6 toy: one 3x3 filter tells noise from noise with a square",
                 inputShape: [1, 6, 6], spec: ToySquares.spec, loss: .binaryCrossEntropy, defaultDataset: "toy-squares"),
    ]

    public static var names: [String] { models.map(\.name) }

    public static func model(named name: String) throws -> ZooModel {
        guard let m = models.first(where: { $0.name == name.lowercased() }) else {
            throw ValueError.invalidArgument("unknown model '\(name)'; the zoo has \(names.joined(separator: ", ")) (or give --spec)")
        }
        return m
    }
}
