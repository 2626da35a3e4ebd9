// The Winograd F(2x2, 3x3) executors (`ConvPlan.Forward.winograd`, `ConvPlan.WeightGradient.winograd`,
// `ConvPlan.InputGradient.winograd`): the weight transformed once per call, then the batch split of
// `ConvPlan`, each sample padded into its thread's `WinogradScratch` and run through `WinogradPlan` block
// of tiles by block of tiles. Weight-gradient partials (in the transformed domain) are summed in thread
// order, then transformed back.

/// Reserves each thread's Winograd scratch for `plan`.
private func reserveWinograd(_ p: ConvPass, _ plan: WinogradPlan) {
    p.workspace.winograd.reserve(p.parts)
    for t in 0..<p.parts {
        let scratch = p.workspace.winograd[t]
        scratch.paddedInput.reserve(plan.paddedCount)
        scratch.transformedInput.reserve(plan.transformedInputCount)
        scratch.products.reserve(plan.productCount)
    }
}

/// Runs `plan` (forward or input gradient) on the batch split of `p`: `p.w` transformed once into
/// `weight`, then each thread's samples block by block through its scratch, as `WinogradPlan.run` takes
/// them, with `pad`, `output` and `finished` given the sample's index in the batch (and `output` the thread).
private func runWinograd(
    _ p: ConvPass, _ plan: WinogradPlan, weight: ScratchBuffer<Float>, bias: UnsafePointer<Float>?,
    pad: (Int, UnsafeMutablePointer<Float>) -> Void, output: (_ thread: Int, _ sample: Int) -> UnsafeMutablePointer<Float>,
    finished: (Int, UnsafeMutablePointer<Float>) -> Void = { _, _ in }
) {
    weight.reserve(plan.transformedWeightCount)
    let u = weight.pointer
    plan.transformWeight(p.w, into: u)
    reserveWinograd(p, plan)
    p.context.parallelFor(p.parts) { t in
        let scratch = p.workspace.winograd[t]
        let first = p.samples(t).lowerBound
        plan.run(
            level: p.context.kernelLevel, samples: p.samples(t).count, weight: u, bias: bias, padded: scratch.paddedInput.pointer,
            transformed: scratch.transformedInput.pointer, products: scratch.products.pointer,
            pad: { i, padded in pad(first &+ i, padded) }, output: { i in output(t, first &+ i) },
            finished: { i, ys in finished(first &+ i, ys) })
    }
}

/// The forward pass: y_s = bias + conv(x_s), through ReLU with `fuseReLU` (the same arithmetic as
/// `relu`), pooled from the thread's sample buffer with `pool`.
func conv2dForwardWinograd(_ p: ConvPass, winograd plan: WinogradPlan) {
    let g = p.geometry
    runWinograd(
        p, plan, weight: p.workspace.winogradWeight, bias: p.bias,
        pad: { s, padded in plan.pad(p.x + s &* g.inputSize, mask: nil, into: padded) },
        output: { t, s in p.y.map { $0 + s &* g.outputSize } ?? p.workspace.sampleOutput[t].pointer },
        finished: { s, ys in
            if p.fuseReLU { ElementwiseKernels.leakyRelu(ys, ys, count: g.outputSize, slope: 0) }
            p.pool?.pool(ys, sample: s, context: p.context)
        })
}

/// The input gradient: dL/dx_s as the stride-1 correlation of dL/dy_s (masked by `reluOutput` > 0 when
/// given), shifted by 2 - padding, with the flipped, channel-swapped weight. Writes every element of dL/dx.
func conv2dInputGradientWinograd(_ p: ConvPass, winograd plan: WinogradPlan) {
    let g = p.geometry
    guard let dx = p.dx, let dy = p.dy else { return }
    runWinograd(
        p, plan, weight: p.workspace.winogradFlippedWeight, bias: nil,
        pad: { s, padded in plan.pad(dy + s &* g.outputSize, mask: p.reluOutput.map { $0 + s &* g.outputSize }, into: padded) },
        output: { _, s in dx + s &* g.inputSize })
}

/// The weight and bias gradients: per thread, dU = sum over its samples' tiles of dM V^T (dM from dL/dy_s,
/// masked by `reluOutput` > 0 when given; V from x_s as in the forward pass) and the bias sums; the
/// threads' partials are summed in thread order, then dL/dw = G^T dU G. Writes every element of dL/dw and
/// dL/db; computes no dL/dx.
func conv2dWeightGradientWinograd(_ p: ConvPass, winograd plan: WinogradPlan) {
    let g = p.geometry
    guard let dy = p.dy, let dw = p.dw, let db = p.db else { return }
    reserveWinograd(p, plan)
    for t in 0..<p.parts {
        let scratch = p.workspace.winograd[t]
        scratch.paddedGradient.reserve(plan.gradientPlanesCount)
        scratch.weightGradient.reserve(plan.transformedWeightCount)
        scratch.biasGradient.reserve(g.outChannels)
    }
    p.context.parallelFor(p.parts) { t in
        let scratch = p.workspace.winograd[t]
        let dbt = scratch.biasGradient.pointer
        dbt.update(repeating: 0, count: g.outChannels)
        let first = p.samples(t).lowerBound
        plan.runWeightGradient(
            level: p.context.kernelLevel, samples: p.samples(t).count, padded: scratch.paddedInput.pointer,
            gradient: scratch.paddedGradient.pointer, transformed: scratch.transformedInput.pointer, products: scratch.products.pointer,
            into: scratch.weightGradient.pointer,
            pad: { i, padded in plan.pad(p.x + (first &+ i) &* g.inputSize, mask: nil, into: padded) },
            padGradient: { i, gradient in
                let s = first &+ i
                plan.padGradient(dy + s &* g.outputSize, mask: p.reluOutput.map { $0 + s &* g.outputSize }, into: gradient)
                Reduce.addRowSums(gradient, rows: g.outChannels, columns: 4 &* plan.tiles, into: dbt)
            })
    }
    // Fixed-order reduction of the per-thread partials, then back from the transformed domain.
    let total = p.workspace.winograd[0].weightGradient.pointer
    db.update(from: p.workspace.winograd[0].biasGradient.pointer, count: g.outChannels)
    for t in 1..<p.parts {
        Reduce.add(p.workspace.winograd[t].weightGradient.pointer, into: total, count: plan.transformedWeightCount)
        Reduce.add(p.workspace.winograd[t].biasGradient.pointer, into: db, count: g.outChannels)
    }
    plan.transformWeightGradient(total, into: dw)
}
