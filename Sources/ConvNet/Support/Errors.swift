import Foundation

/// Shape problems: what was given, what was expected, and where.
public enum ShapeError: Error, Equatable, CustomStringConvertible {
    case invalidShape([Int])
    case countMismatch(shape: [Int], expected: Int, got: Int)
    case reshape(from: [Int], to: [Int])
    case mismatch(operation: String, expected: String, got: [Int])
    case layer(name: String, message: String)

    public var description: String {
        switch self {
        case .invalidShape(let s): return "invalid shape \(s): dimensions must be non-negative"
        case .countMismatch(let s, let e, let g):
            return "shape \(formatShape(s)) holds \(e) values, but \(g) were given"
        case .reshape(let from, let to):
            return "cannot reshape \(formatShape(from)) to \(formatShape(to)): element counts differ"
        case .mismatch(let op, let expected, let got):
            return "\(op): expected \(expected), got \(formatShape(got))"
        case .layer(let name, let message): return "layer \(name): \(message)"
        }
    }
}

/// An error's message in plain words: the error's own description, or for Foundation's errors (which
/// print their domain, code and user info) the operating system's reason ("No space left on device")
/// where there is one.
func plainDescription(_ error: Error) -> String {
    let ns = error as NSError
    let foundation = error is CocoaError || ns.domain == NSCocoaErrorDomain || ns.domain == NSPOSIXErrorDomain
    if !foundation { return String(describing: error) }
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
    return ns.localizedDescription
}

/// A value that makes no sense for the operation (zero or negative sizes, a NaN loss, a bad label).
public enum ValueError: Error, Equatable, CustomStringConvertible {
    case invalidArgument(String)
    case nonFiniteLoss(loss: String, value: Float)
    case labelOutOfRange(label: Int, classes: Int)

    public var description: String {
        switch self {
        case .invalidArgument(let m): return m
        case .nonFiniteLoss(let loss, let value):
            return "\(loss) is \(value): the network diverged or its input holds NaN/infinity"
        case .labelOutOfRange(let label, let classes):
            return "label \(label) is out of range for \(classes) classes (expected 0...\(classes - 1))"
        }
    }
}
