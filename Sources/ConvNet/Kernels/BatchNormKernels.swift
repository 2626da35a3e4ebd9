/// Batch normalisation over the batch and spatial positions of each channel. The tensor is
/// N x C x S (S = H*W for images, 1 for features).
public enum BatchNormKernels {
    /// Per-channel mean and biased variance, accumulated in Double.
    public static func statistics(
        _ x: UnsafePointer<Float>, n: Int, channels: Int, spatial: Int,
        mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>
    ) {
        let m = Double(n &* spatial)
        for c in 0..<channels {
            var sum = 0.0
            for s in 0..<n {
                let p = x + (s &* channels &+ c) &* spatial
                for i in 0..<spatial { sum += Double(p[i]) }
            }
            let mu = sum / m
            var sq = 0.0
            for s in 0..<n {
                let p = x + (s &* channels &+ c) &* spatial
                for i in 0..<spatial {
                    let d = Double(p[i]) - mu
                    sq += d * d
                }
            }
            mean[c] = Float(mu)
            variance[c] = Float(sq / m)
        }
    }

    /// xhat = (x - mean) * invStd; y = gamma * xhat + beta. Writes xhat only when it is non-nil.
    public static func normalize(
        _ x: UnsafePointer<Float>, n: Int, channels: Int, spatial: Int,
        mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
        xhat: UnsafeMutablePointer<Float>?, y: UnsafeMutablePointer<Float>
    ) {
        for s in 0..<n {
            for c in 0..<channels {
                let offset = (s &* channels &+ c) &* spatial
                let mu = mean[c], inv = invStd[c], g = gamma[c], b = beta[c]
                for i in 0..<spatial {
                    let h = (x[offset &+ i] - mu) * inv
                    xhat?[offset &+ i] = h
                    y[offset &+ i] = g * h + b
                }
            }
        }
    }

    /// dgamma = sum(dy * xhat), dbeta = sum(dy),
    /// dx = invStd / M * (M * dy * gamma - dbeta * gamma - xhat * dgamma * gamma).
    public static func backward(
        _ dy: UnsafePointer<Float>, xhat: UnsafePointer<Float>, n: Int, channels: Int, spatial: Int,
        invStd: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>, dgamma: UnsafeMutablePointer<Float>, dbeta: UnsafeMutablePointer<Float>
    ) {
        let m = Float(n &* spatial)
        for c in 0..<channels {
            var sumDy = 0.0, sumDyX = 0.0
            for s in 0..<n {
                let offset = (s &* channels &+ c) &* spatial
                for i in 0..<spatial {
                    sumDy += Double(dy[offset &+ i])
                    sumDyX += Double(dy[offset &+ i]) * Double(xhat[offset &+ i])
                }
            }
            dgamma[c] = Float(sumDyX)
            dbeta[c] = Float(sumDy)
            let k = gamma[c] * invStd[c] / m
            let a = Float(sumDy), b = Float(sumDyX)
            for s in 0..<n {
                let offset = (s &* channels &+ c) &* spatial
                for i in 0..<spatial {
                    dx[offset &+ i] = k * (m * dy[offset &+ i] - a - xhat[offset &+ i] * b)
                }
            }
        }
    }
}

/// The passes of batch norm over the ranks of a data-parallel run (synchronised batch norm): each rank
/// sums its own slice, the ranks add the sums up, and each rank normalises its slice with the global
/// batch's figures.
extension BatchNormKernels {
    /// Per-channel sum and sum of squares of this slice, accumulated in Double.
    public static func sums(
        _ x: UnsafePointer<Float>, n: Int, channels: Int, spatial: Int,
        sum: UnsafeMutablePointer<Double>, squares: UnsafeMutablePointer<Double>
    ) {
        for c in 0..<channels {
            var s = 0.0, q = 0.0
            for sample in 0..<n {
                let p = x + (sample &* channels &+ c) &* spatial
                for i in 0..<spatial {
                    let v = Double(p[i])
                    s += v
                    q += v * v
                }
            }
            sum[c] = s
            squares[c] = q
        }
    }

    /// Per-channel sum(dy) and sum(dy * xhat) of this slice, accumulated in Double.
    public static func gradientSums(
        _ dy: UnsafePointer<Float>, xhat: UnsafePointer<Float>, n: Int, channels: Int, spatial: Int,
        sumDy: UnsafeMutablePointer<Double>, sumDyX: UnsafeMutablePointer<Double>
    ) {
        for c in 0..<channels {
            var a = 0.0, b = 0.0
            for sample in 0..<n {
                let offset = (sample &* channels &+ c) &* spatial
                for i in 0..<spatial {
                    let g = Double(dy[offset &+ i])
                    a += g
                    b += g * Double(xhat[offset &+ i])
                }
            }
            sumDy[c] = a
            sumDyX[c] = b
        }
    }

    /// dx = scale * (dy - a - xhat * b), per channel.
    public static func inputGradient(
        _ dy: UnsafePointer<Float>, xhat: UnsafePointer<Float>, n: Int, channels: Int, spatial: Int,
        scale: UnsafePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>
    ) {
        for sample in 0..<n {
            for c in 0..<channels {
                let offset = (sample &* channels &+ c) &* spatial
                let k = scale[c], ac = a[c], bc = b[c]
                for i in 0..<spatial {
                    dx[offset &+ i] = k * (dy[offset &+ i] - ac - xhat[offset &+ i] * bc)
                }
            }
        }
    }
}
