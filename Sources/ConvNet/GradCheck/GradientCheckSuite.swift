/// The standard gradient checks: every layer and loss, each placed after another layer so its input
/// gradient is exercised, at odd sizes, stride 2, padding, overlapping windows and batch > 1.
public enum GradientCheckSuite {
    public struct Case: Sendable {
        public var name: String
        public var spec: String
        public var inputShape: [Int]
        public var batch: Int
        public var loss: LossFunction?
        /// Labels for the loss (class indices, or 0/1 for binary losses).
        public var classes: Int
        /// A smaller step for layers with kinks close together (overlapping max windows).
        public var epsilon: Float? = nil
        /// Softmax cross-entropy's label smoothing (`--label-smoothing`).
        public var labelSmoothing: Float = 0
    }

    public static let cases: [Case] = [
        Case(name: "conv 3x3 pad 1", spec: "conv 2 1x1; conv 3 3x3 pad 1", inputShape: [2, 7, 5], batch: 2, loss: nil, classes: 0),
        Case(name: "conv 3x2 stride 2 pad 1", spec: "conv 2 1x1; conv 3 3x2 stride 2 pad 1", inputShape: [2, 7, 6], batch: 2, loss: nil, classes: 0),
        Case(name: "conv 4x4 pad same", spec: "conv 2 1x1; conv 2 4x4 pad same", inputShape: [1, 6, 5], batch: 2, loss: nil, classes: 0),
        Case(name: "conv 5x5 stride 2x1 pad 2,1,0,2", spec: "conv 1 1x1; conv 2 5x5 stride 2x1 pad 2,1,0,2", inputShape: [1, 9, 7], batch: 1, loss: nil, classes: 0),
        Case(name: "maxpool 2", spec: "conv 2 3x3; maxpool 2", inputShape: [1, 9, 9], batch: 2, loss: nil, classes: 0),
        Case(name: "maxpool 3 stride 2", spec: "conv 2 1x1; maxpool 3 stride 2", inputShape: [1, 7, 8], batch: 2, loss: nil, classes: 0, epsilon: 1e-3),
        Case(name: "conv + relu + maxpool (backward as one)", spec: "conv 2 1x1; conv 3 3x3 pad 1; relu; maxpool 2", inputShape: [2, 6, 7], batch: 2, loss: nil, classes: 0, epsilon: 1e-3),
        Case(name: "avgpool 2x3 stride 1", spec: "conv 2 1x1; avgpool 2x3 stride 1", inputShape: [1, 5, 6], batch: 2, loss: nil, classes: 0),
        Case(name: "gap (global average pooling)", spec: "conv 3 1x1; gap; flatten; dense 2", inputShape: [2, 5, 4], batch: 2, loss: nil, classes: 0),
        Case(name: "relu", spec: "dense 7; relu", inputShape: [5], batch: 3, loss: nil, classes: 0),
        Case(name: "leakyrelu 0.1", spec: "conv 2 3x3; leakyrelu 0.1", inputShape: [1, 5, 5], batch: 2, loss: nil, classes: 0),
        Case(name: "sigmoid", spec: "dense 6; sigmoid", inputShape: [4], batch: 3, loss: nil, classes: 0),
        Case(name: "tanh", spec: "dense 6; tanh", inputShape: [4], batch: 3, loss: nil, classes: 0),
        Case(name: "flatten + dense", spec: "conv 2 3x3 pad 1; flatten; dense 5", inputShape: [1, 4, 5], batch: 3, loss: nil, classes: 0),
        Case(name: "batchnorm 2d", spec: "conv 3 3x3; batchnorm", inputShape: [2, 6, 5], batch: 3, loss: nil, classes: 0),
        Case(name: "batchnorm 1d", spec: "dense 5; batchnorm", inputShape: [4], batch: 6, loss: nil, classes: 0),
        Case(name: "dropout 0.3", spec: "dense 8; dropout 0.3", inputShape: [5], batch: 3, loss: nil, classes: 0),
        Case(name: "softmax cross-entropy", spec: "dense 4", inputShape: [6], batch: 5, loss: .softmaxCrossEntropy, classes: 4),
        Case(name: "softmax cross-entropy, label smoothing 0.2", spec: "dense 4", inputShape: [6], batch: 5, loss: .softmaxCrossEntropy, classes: 4, labelSmoothing: 0.2),
        Case(name: "log-softmax + NLL", spec: "dense 4; logsoftmax", inputShape: [6], batch: 5, loss: .negativeLogLikelihood, classes: 4),
        Case(name: "sigmoid binary cross-entropy", spec: "dense 1", inputShape: [6], batch: 5, loss: .sigmoidBinaryCrossEntropy, classes: 2),
        Case(name: "binary cross-entropy", spec: "dense 1; sigmoid", inputShape: [6], batch: 5, loss: .binaryCrossEntropy, classes: 2),
        Case(name: "mean squared error", spec: "dense 3", inputShape: [6], batch: 5, loss: .meanSquaredError, classes: 3),
        Case(name: "toy network", spec: "conv 1 3x3; leakyrelu 0.01; maxpool 2; flatten; dense 1; sigmoid", inputShape: [1, 6, 6], batch: 4, loss: .binaryCrossEntropy, classes: 2),
    ]

    /// Runs one case with inputs and labels drawn from `seed`, its passes in `context` (which may force
    /// convolution paths).
    public static func run(
        _ c: Case, checker: GradientChecker = GradientChecker(), seed: UInt64 = 1, context: ExecutionContext = .default
    ) throws -> [GradientCheckResult] {
        let network = try Sequential(
            spec: c.spec, inputShape: c.inputShape, seed: seed, weightInit: .uniform(limit: 0.8), biasInit: .constant(0.1),
            context: context)
        var random = SeededGenerator(seed: seed &+ 1000)
        // Distinct, evenly spaced inputs in shuffled order: no two values tie inside a pooling window.
        let count = c.batch * c.inputShape.reduce(1, *)
        let values = random.permutation(count).map { Float($0) / Float(max(count - 1, 1)) * 2 - 1 }
        let input = try Tensor(shape: [c.batch] + c.inputShape, scalars: values)
        let labels = (0..<c.batch).map { _ in c.classes > 0 ? random.below(c.classes) : 0 }
        var checker = checker
        if let e = c.epsilon { checker.epsilon = min(checker.epsilon, e) }
        return try checker.check(network, input: input, labels: labels, loss: c.loss, labelSmoothing: c.labelSmoothing, label: c.name)
    }

    /// Runs every case.
    public static func runAll(checker: GradientChecker = GradientChecker()) throws -> [GradientCheckResult] {
        try cases.flatMap { try run($0, checker: checker) }
    }
}
