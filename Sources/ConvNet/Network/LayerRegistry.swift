import Foundation

/// Builds a custom layer from the words of its spec statement that follow the keyword
/// (`scale 2.5` gives `["2.5"]`). Throw to reject them; the message is shown with the statement.
public typealias LayerFactory = @Sendable (_ arguments: [String]) throws -> any Layer

extension NetworkSpec {
    /// The keywords of the built-in layers, which cannot be registered again.
    public static let builtInKeywords: Set<String> = [
        "input", "conv", "conv2d", "maxpool", "avgpool", "gap", "globalavgpool", "dense", "fc", "linear", "flatten", "relu", "leakyrelu",
        "leaky_relu", "leaky-relu", "sigmoid", "tanh", "logsoftmax", "log_softmax", "log-softmax", "batchnorm", "bn", "dropout",
    ]

    /// Teaches the spec parser (and so `Sequential(spec:)`, `ModelArchive.read` and `Checkpoint.read`) a
    /// custom layer: statements that start with `keyword` are built by `factory`. The layer's
    /// `specStatement` must start with the same keyword and give back what `factory` needs, so that a
    /// network holding it round-trips through `model.npz`:
    ///
    /// ```swift
    /// try NetworkSpec.registerLayer("scale") { arguments in
    ///     guard arguments.count == 1, let factor = Float(arguments[0]) else {
    ///         throw ValueError.invalidArgument("scale takes one number, e.g. 'scale 2'")
    ///     }
    ///     return Scale(factor: factor)
    /// }
    /// ```
    ///
    /// Keywords are matched without regard to case. Registering a built-in keyword throws; registering a
    /// custom one again replaces its factory.
    public static func registerLayer(_ keyword: String, factory: @escaping LayerFactory) throws {
        let key = keyword.lowercased()
        guard !key.isEmpty, key.allSatisfy({ !$0.isWhitespace && $0 != ";" && $0 != "#" }) else {
            throw ValueError.invalidArgument("a layer keyword must be one word without ';' or '#', got '\(keyword)'")
        }
        guard !builtInKeywords.contains(key) else {
            throw ValueError.invalidArgument("'\(keyword)' is a built-in layer keyword; choose another for a custom layer")
        }
        customLayers.set(key, factory)
    }

    /// Forgets a custom layer's keyword (no effect when it was not registered).
    public static func unregisterLayer(_ keyword: String) {
        customLayers.set(keyword.lowercased(), nil)
    }

    /// The custom keywords registered now, sorted.
    public static var registeredKeywords: [String] { customLayers.keys }

    /// The factory registered for `keyword` (lowercased), if any.
    static func customFactory(_ keyword: String) -> LayerFactory? { customLayers.get(keyword) }

    private static let customLayers = FactoryTable()
}

/// The registered factories, shared by every thread.
private final class FactoryTable: @unchecked Sendable {
    private let lock = NSLock()
    private var factories: [String: LayerFactory] = [:]

    func get(_ key: String) -> LayerFactory? {
        lock.lock()
        defer { lock.unlock() }
        return factories[key]
    }

    func set(_ key: String, _ factory: LayerFactory?) {
        lock.lock()
        factories[key] = factory
        lock.unlock()
    }

    var keys: [String] {
        lock.lock()
        defer { lock.unlock() }
        return factories.keys.sorted()
    }
}
