import Foundation
import Testing
@testable import ConvNet

/// Schedules, AdamW, weight decay's scope and label smoothing, each against numbers worked out by hand
/// from the written-out formula (PyTorch's where there is one).
@Suite("Learning-rate schedules, AdamW, decay scope and label smoothing")
struct ScheduleTests {
    func close(_ a: Float, _ b: Double, _ tolerance: Double = 1e-7) -> Bool { abs(Double(a) - b) <= tolerance * max(1, abs(b)) }

    @Test("cosine with a linear warm-up: (t+1)/W of the base, then base (1 + cos(pi (t-W)/(T-W))) / 2")
    func cosine() {
        let s = LearningRateSchedule(kind: .cosine, base: 0.1, warmupIterations: 4, totalIterations: 14)
        #expect(close(s.rate(atIteration: 0), 0.025))
        #expect(close(s.rate(atIteration: 1), 0.05))
        #expect(close(s.rate(atIteration: 3), 0.1))
        #expect(close(s.rate(atIteration: 4), 0.1))  // cos(0)
        #expect(close(s.rate(atIteration: 9), 0.05))  // cos(pi / 2)
        #expect(close(s.rate(atIteration: 13), 0.1 * (1 + cos(0.9 * Double.pi)) / 2))  // 0.00244717
        let plain = LearningRateSchedule(kind: .cosine, base: 0.1, totalIterations: 10)
        #expect(close(plain.rate(atIteration: 0), 0.1))
        #expect(close(plain.rate(atIteration: 5), 0.05))
        #expect(close(plain.rate(atIteration: 10), 0))  // past the end (a run resumed with more epochs is rebuilt)
    }

    @Test("one-cycle follows PyTorch's OneCycleLR: base/25 up to base at 30% of the run, down to base/25/1e4")
    func oneCycle() {
        // total_steps 100, pct_start 0.3: the first phase ends at step 0.3 * 100 - 1 = 29.
        let s = LearningRateSchedule(kind: .oneCycle, base: 0.1, totalIterations: 100)
        #expect(close(s.rate(atIteration: 0), 0.004))
        #expect(close(s.rate(atIteration: 29), 0.1))
        // Halfway up (t = 14.5 is not a step): t = 10, p = 10/29, 0.1 + (0.004 - 0.1) (1 + cos(pi p)) / 2.
        #expect(close(s.rate(atIteration: 10), 0.1 + (0.004 - 0.1) * (1 + cos(Double.pi * 10 / 29)) / 2))
        // Halfway down: t = 64, p = 35 / 70; final = 0.004 / 1e4 = 4e-7.
        #expect(close(s.rate(atIteration: 64), 4e-7 + (0.1 - 4e-7) / 2))
        #expect(close(s.rate(atIteration: 99), 4e-7))
        // A warm-up sets the rise instead: 10 iterations, the peak at step 9.
        let warm = LearningRateSchedule(kind: .oneCycle, base: 0.1, warmupIterations: 10, totalIterations: 100)
        #expect(close(warm.rate(atIteration: 0), 0.004))
        #expect(close(warm.rate(atIteration: 9), 0.1))
        #expect(warm.rate(atIteration: 10) < 0.1)
    }

    @Test("step decay keeps its rule, and a warm-up scales its first iterations by (t+1)/W")
    func stepWithWarmup() {
        let s = LearningRateSchedule(kind: .step, base: 0.1, stepDecay: StepDecay(base: 0.1, decay: 0.5, every: 10), warmupIterations: 5, totalIterations: 30)
        #expect(close(s.rate(atIteration: 0), 0.02))
        #expect(close(s.rate(atIteration: 4), 0.1))
        #expect(close(s.rate(atIteration: 9), 0.1))
        #expect(close(s.rate(atIteration: 10), 0.05))
        #expect(close(s.rate(atIteration: 25), 0.025))
        // Without a warm-up and a schedule the options give exactly the old step decay.
        var o = TrainingOptions()
        o.learningRate = 0.1; o.lrDecay = 0.5; o.decayEvery = 10
        let old = StepDecay(base: 0.1, decay: 0.5, every: 10)
        let new = o.schedule(batchesPerEpoch: 7)
        for t in [0, 9, 10, 33] { #expect(new.rate(atIteration: t) == old.rate(atIteration: t)) }
    }

    @Test("--warmup reads epochs (1, 0.5) and iterations (500it), and turns epochs into iterations")
    func warmupParsing() throws {
        #expect(try Warmup(parsing: "1") == .epochs(1))
        #expect(try Warmup(parsing: "0.5") == .epochs(0.5))
        #expect(try Warmup(parsing: "500it") == .iterations(500))
        #expect(Warmup.epochs(0.5).iterations(batchesPerEpoch: 469) == 235)
        #expect(Warmup.epochs(2).iterations(batchesPerEpoch: 10) == 20)
        for bad in ["", "x", "-1", "1.5it", "nan"] {
            #expect(throws: ValueError.self, "\(bad)") { try Warmup(parsing: bad) }
        }
    }

    func parameter(_ name: String, _ shape: [Int], value: Float, gradient: Float) -> Parameter {
        let n = shape.reduce(1, *)
        let p = Parameter(name: name, value: try! Tensor(shape: shape, scalars: Array(repeating: value, count: n)))
        p.gradient = try! Tensor(shape: shape, scalars: Array(repeating: gradient, count: n))
        return p
    }

    @Test("AdamW decouples the decay: w *= 1 - lr wd, then Adam's step on the plain gradient (worked by hand)")
    func adamW() {
        let p = parameter("p", [1], value: 1, gradient: 0.5)
        let opt = Adam.adamW(learningRate: 0.1, weightDecay: 0.1)
        #expect(opt.kind == "adamw")
        opt.step([p])
        // w = 1 * (1 - 0.01) = 0.99; m = 0.05, v = 0.00025; m^ = 0.5, v^ = 0.25; w -= 0.1 * 0.5 / 0.5.
        #expect(abs(p.value[0] - 0.89) < 1e-6)
        opt.step([p])
        // w = 0.89 * 0.99 = 0.8811; m = 0.095, v = 0.00049975; m^ = 0.5, v^ = 0.25; w -= 0.1.
        #expect(abs(p.value[0] - 0.7811) < 1e-6)
        // Adam's L2 decay puts wd * w into the moments instead: a different first step.
        let q = parameter("q", [1], value: 1, gradient: 0.5)
        Adam(learningRate: 0.1, weightDecay: 0.1).step([q])
        #expect(abs(q.value[0] - 0.9) < 1e-6)  // g + wd w = 0.6, normalised to 1
        #expect(OptimizerKind(rawValue: "adamw") != nil)
        var o = TrainingOptions()
        o.optimizer = .adamw
        #expect(o.makeOptimizer().kind == "adamw")
    }

    @Test("--decay-scope weights decays kernels and matrices but not biases or batch norm's parameters")
    func decayScope() {
        for make in [
            { (scope: WeightDecayScope) -> any Optimizer in SGD(learningRate: 1, weightDecay: 0.1, decayScope: scope) },
            { scope in Adagrad(learningRate: 1, weightDecay: 0.1, decayScope: scope) },
            { scope in Adam.adamW(learningRate: 1, weightDecay: 0.1, decayScope: scope) },
        ] {
            let weight = parameter("conv1.weight", [2, 1, 3, 3], value: 1, gradient: 0)
            let bias = parameter("conv1.bias", [2], value: 1, gradient: 0)
            let gamma = parameter("bn1.weight", [2], value: 1, gradient: 0)
            let opt = make(.weights)
            opt.step([weight, bias, gamma])
            #expect(weight.value[0] < 1, "\(opt.kind): the kernel is decayed")
            #expect(bias.value[0] == 1 && gamma.value[0] == 1, "\(opt.kind): rank-1 parameters are left alone")
            let all = make(.all)
            let b2 = parameter("conv1.bias", [2], value: 1, gradient: 0)
            all.step([b2])
            #expect(b2.value[0] < 1, "\(opt.kind): --decay-scope all decays biases too")
        }
        // SGD, lr 1, wd 0.1, zero gradient: w = 1 - 0.1.
        let w = parameter("dense1.weight", [2, 2], value: 1, gradient: 0)
        SGD(learningRate: 1, weightDecay: 0.1, decayScope: .weights).step([w])
        #expect(abs(w.value[0] - 0.9) < 1e-7)
    }

    @Test("label smoothing: loss -sum q log p and gradient p - q with q = (1 - e) onehot + e / C (worked by hand)")
    func labelSmoothing() throws {
        // Logits [ln 3, 0]: p = [0.75, 0.25]; label 1, e = 0.1: q = [0.05, 0.95].
        let logits = try Tensor(shape: [1, 2], scalars: [Float(log(3.0)), 0])
        let r = try softmaxCrossEntropy(logits: logits, labels: [1], smoothing: 0.1)
        #expect(abs(Double(r.value) - (0.05 * -log(0.75) + 0.95 * -log(0.25))) < 1e-6)  // 1.3313637
        #expect(abs(r.gradient[0] - 0.7) < 1e-6 && abs(r.gradient[1] + 0.7) < 1e-6)
        // Four equal logits, label 0, e = 0.2, batch of 2 (the second row the same): loss ln 4, gradient (p - q) / 2.
        let flat = try Tensor(shape: [2, 4], scalars: Array(repeating: 0, count: 8))
        let f = try LossFunction.softmaxCrossEntropy.evaluate(output: flat, labels: [0, 0], labelSmoothing: 0.2)
        #expect(abs(Double(f.value) - log(4.0)) < 1e-6)
        let expected: [Float] = [-0.3, 0.1, 0.1, 0.1, -0.3, 0.1, 0.1, 0.1]
        for i in 0..<8 { #expect(abs(f.gradient[i] - expected[i]) < 1e-6) }
        // Smoothing 0 is the plain loss, bit for bit.
        let x = randomTensor([5, 7], seed: 3)
        let plain = try softmaxCrossEntropy(logits: x, labels: [0, 6, 2, 2, 5])
        let zero = try softmaxCrossEntropy(logits: x, labels: [0, 6, 2, 2, 5], smoothing: 0)
        #expect(plain.value == zero.value && plain.gradient.scalars == zero.gradient.scalars)
        // Only softmax cross-entropy takes it, and only in [0, 1).
        #expect(throws: ValueError.self) { try LossFunction.meanSquaredError.evaluate(output: x, labels: [0, 1, 2, 3, 4], labelSmoothing: 0.1) }
        #expect(throws: ValueError.self) { try softmaxCrossEntropy(logits: x, labels: [0, 1, 2, 3, 4], smoothing: 1) }
    }

    @Test("the options refuse a bad smoothing, a warm-up as long as the run, and --lr-decay with another schedule")
    func validation() throws {
        func refused(_ set: (inout TrainingOptions) -> Void, _ words: String) {
            var o = TrainingOptions()
            set(&o)
            #expect(throws: ValueError.self) { try o.validate() }
            do { try o.validate() } catch { #expect("\(error)".contains(words), "\(error)") }
        }
        refused({ $0.labelSmoothing = 1 }, "--label-smoothing")
        refused({ $0.labelSmoothing = -0.1 }, "--label-smoothing")
        refused({ $0.labelSmoothing = 0.1; $0.loss = .binaryCrossEntropy }, "softmax cross-entropy only")
        refused({ $0.epochs = 2; $0.warmup = .epochs(2) }, "--warmup")
        refused({ $0.scheduleKind = .cosine; $0.lrDecay = 0.5 }, "--lr-decay")
        var ok = TrainingOptions()
        ok.scheduleKind = .oneCycle; ok.warmup = .epochs(1); ok.epochs = 3; ok.labelSmoothing = 0.1; ok.decayScope = .weights
        try ok.validate()
    }

    @Test("the trainer takes each step at the schedule's rate, over the run's real iterations")
    func trainerFollowsSchedule() throws {
        let data = try Dataset(name: "tiny", images: randomTensor([20, 4], seed: 5), labels: (0..<20).map { $0 % 3 }, classNames: ["a", "b", "c"])
        var o = TrainingOptions()
        o.epochs = 3; o.batchSize = 8; o.learningRate = 0.1; o.scheduleKind = .cosine; o.warmup = .iterations(2); o.labelSmoothing = 0.1
        let network = try Sequential(spec: "dense 3", inputShape: [4], seed: 1)
        let trainer = try Trainer(network: network, options: o)
        var rates: [Float] = []
        try trainer.train(on: data) { if case .iteration(let r) = $0 { rates.append(r.learningRate) } }
        // 3 batches per epoch, T = 9, W = 2.
        let schedule = LearningRateSchedule(kind: .cosine, base: 0.1, warmupIterations: 2, totalIterations: 9)
        #expect(rates == (0..<9).map { schedule.rate(atIteration: $0) })
        #expect(close(rates[0], 0.05) && close(rates[2], 0.1))
        var long = o
        long.warmup = .iterations(9)
        let again = try Trainer(network: try Sequential(spec: "dense 3", inputShape: [4], seed: 1), options: long)
        #expect(throws: TrainingError.self) { try again.train(on: data) }
    }
}
