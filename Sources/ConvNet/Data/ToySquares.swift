/// The course notebook's 6x6 toy problem. Class 0: uniform noise in [-1, 1]. Class 1: the same noise
/// with a 3x3 square of value 5.0 at a random place. Classes alternate 0, 1, 0, 1, ...
public enum ToySquares {
    public static let side = 6
    public static let squareSide = 3
    public static let squareValue: Float = 5
    /// The most examples it generates (144 MB of images).
    public static let maxCount = 1_000_000

    /// `count` examples drawn from `seed`.
    public static func make(count: Int, seed: UInt64) throws -> Dataset {
        guard count > 0 else { throw ValueError.invalidArgument("toy-squares: the number of examples must be positive, got \(count)") }
        guard count <= maxCount else {
            throw ValueError.invalidArgument("toy-squares makes at most \(maxCount) examples (\(maxCount * side * side * 4 / 1_000_000) MB), got \(count); give a smaller --train-limit")
        }
        var random = SeededGenerator(seed: seed)
        var images = Tensor(shape: [count, 1, side, side])
        var labels: [Int] = []
        for n in 0..<count {
            let label = n % 2
            for i in 0..<(side * side) { images[n * side * side + i] = random.uniform(-1, 1) }
            if label == 1 {
                let top = random.below(side - squareSide + 1), left = random.below(side - squareSide + 1)
                for y in top..<(top + squareSide) {
                    for x in left..<(left + squareSide) { images[n * side * side + y * side + x] = squareValue }
                }
            }
            labels.append(label)
        }
        return try Dataset(name: "toy-squares", images: images, labels: labels, classNames: ["noise", "square"])
    }

    /// The toy network: conv 3x3 (one filter) -> leaky ReLU -> maxpool 2 -> flatten (4) -> dense 1 -> sigmoid.
    public static let spec = "conv 1 3x3; leakyrelu 0.01; maxpool 2; flatten; dense 1; sigmoid"
}
