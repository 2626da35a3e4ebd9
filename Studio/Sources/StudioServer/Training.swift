import ConvNet
import ConvNetCLI
import Foundation

/// What the page's Train form sends: a recipe and the settings changed from it, or the settings alone.
public struct TrainRequest: Decodable, Sendable {
    public var recipe: String?
    public var model: String?
    public var spec: String?
    public var dataset: String?
    public var optimizer: String?
    public var learningRate: Double?
    public var batchSize: Int?
    public var epochs: Int?
    public var trainLimit: Int?

    enum CodingKeys: String, CodingKey {
        case recipe, model, spec, dataset, optimizer, epochs
        case learningRate = "learning_rate", batchSize = "batch_size", trainLimit = "train_limit"
    }

    public static func parse(_ data: Data) throws -> TrainRequest {
        do { _ = try JSONSerialization.jsonObject(with: data) } catch {
            throw StudioError(400, "the body is not valid JSON; send {\"model\": \"two-conv\", \"dataset\": \"mnist-sample\", \"epochs\": 1, ...}")
        }
        do { return try JSONDecoder().decode(TrainRequest.self, from: data) } catch DecodingError.typeMismatch(_, let context) {
            throw StudioError(400, "\"\(context.codingPath.map(\.stringValue).joined(separator: "."))\" has the wrong type")
        } catch {
            throw StudioError(400, "the training request is not a JSON object of recipe, model, spec, dataset, optimizer, learning_rate, batch_size, epochs")
        }
    }

    /// The `convnet train` arguments for this request, without --out: `--recipe NAME` first when there is
    /// one, then only the settings the request gives (a recipe's own settings stay unless overridden; without
    /// a recipe, network or spec the network is two-conv, and every other setting is convnet train's default).
    /// Every value is checked first: the studio's own limits, then `convnet train`'s rules (its parser and
    /// validation), so a request the CLI would refuse is a 400 in the CLI's words.
    public func arguments() throws -> [String] {
        var args = ["train"]
        let recipe = given(self.recipe)
        if let recipe { args += ["--recipe", recipe] }
        let spec = self.spec?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let model = given(self.model)
        if !spec.isEmpty {
            if model != nil { throw StudioError(400, "give either a zoo network or a spec, not both") }
            if spec.count > 4000 { throw StudioError(400, "the spec is \(spec.count) characters long; at most 4000") }
            if FileManager.default.fileExists(atPath: spec) { throw StudioError(400, "give the spec's text, not a file name") }
            do { _ = try NetworkSpec.parse(spec) } catch { throw StudioError(400, "the spec does not parse: \(error)") }
            args += ["--spec", spec]
        } else if model != nil || recipe == nil {
            let name = model ?? "two-conv"
            guard ModelZoo.names.contains(name) else {
                throw StudioError(400, "unknown network '\(name)'; the zoo has \(ModelZoo.names.joined(separator: ", "))")
            }
            args += ["--model", name]
        }
        if let dataset = given(dataset) {
            // Names only: a request from the page never points convnet train at a file.
            guard DatasetCatalog.names.contains(dataset) else {
                throw StudioError(400, "unknown data set '\(dataset)'; choose one of \(DatasetCatalog.names.joined(separator: ", "))")
            }
            args += ["--dataset", dataset]
        }
        if let optimizer = given(optimizer) { args += ["--optimizer", optimizer.lowercased()] }
        if let lr = learningRate {
            guard lr.isFinite, lr > 0, lr <= 10 else { throw StudioError(400, "learning_rate must be a number in (0, 10], got \(lr)") }
            args += ["--lr", "\(Float(lr))"]
        }
        if let batch = batchSize {
            guard (1...4096).contains(batch) else { throw StudioError(400, "batch_size must be 1-4096, got \(batch)") }
            args += ["--batch-size", String(batch)]
        }
        if let epochs {
            guard (1...200).contains(epochs) else { throw StudioError(400, "epochs must be 1-200, got \(epochs)") }
            args += ["--epochs", String(epochs)]
        }
        if let n = trainLimit {
            guard n >= 1 else { throw StudioError(400, "train_limit must be at least 1, got \(n)") }
            args += ["--train-limit", String(n)]
        }
        do {
            _ = try TrainCommand.parse(Array(args.dropFirst()))
        } catch {
            let message = TrainCommand.message(for: error).split(separator: "\n").first.map(String.init) ?? ""
            throw StudioError(400, message.isEmpty ? "convnet train refuses these settings" : message)
        }
        return args
    }

    /// The run folder's network word: the network given, the recipe's, or "custom" for a spec.
    public var networkName: String {
        let spec = self.spec?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if !spec.isEmpty { return "custom" }
        if let model = given(model) { return model }
        if let name = given(recipe), let recipe = try? Recipes.recipe(named: name) { return recipe.model }
        return "two-conv"
    }

    /// A string field's value, nil when it is missing or blank.
    private func given(_ text: String?) -> String? {
        guard let t = text?.trimmingCharacters(in: .whitespacesAndNewlines), !t.isEmpty else { return nil }
        return t
    }
}

/// Runs one `convnet train` at a time as a child process (so the server keeps answering and the run
/// folder is exactly the CLI's), relays its `--events` lines to every listener, and loads the trained
/// model when it ends.
public final class TrainingManager: @unchecked Sendable {
    public struct Status: Encodable, Sendable {
        public var running: Bool
        public var run: String?
        public var events: Int
    }

    private let lock = NSLock()
    private let convnet: URL?
    private let runs: RunFolders
    private let store: ModelStore
    private let dataDirectory: URL?
    private var process: ChildProcess?
    private var runName: String?
    private var stopping = false
    private var history: [String] = []
    private var listeners: [UUID: AsyncStream<String>.Continuation] = [:]
    private var finished = DispatchGroup()
    private var closed = false

    public init(convnet: URL?, runs: RunFolders, store: ModelStore, dataDirectory: URL?) {
        self.convnet = convnet
        self.runs = runs
        self.store = store
        self.dataDirectory = dataDirectory
    }

    public var status: Status { lock.withLock { Status(running: process != nil, run: runName, events: history.count) } }

    /// Starts a training; refuses (409) while one runs.
    @discardableResult
    public func start(_ request: TrainRequest) throws -> String {
        var args = try request.arguments()
        guard let convnet, FileManager.default.isExecutableFile(atPath: convnet.path) else {
            throw StudioError(503, "cannot train: no convnet executable at \(convnet?.path ?? "(none given)"); start the studio with `convnet studio` or give --convnet PATH")
        }
        return try lock.withLock {
            if closed { throw StudioError(503, "the studio is shutting down") }
            if let runName, process != nil {
                throw StudioError(409, "a training is already running (run \(runName)); stop it or wait until it ends, one runs at a time")
            }
            let name = uniqueRunName(request.networkName)
            let folder = runs.root.appendingPathComponent(name)
            args += ["--out", folder.path, "--events", "--json"]
            if let dataDirectory { args += ["--data-dir", dataDirectory.path] }
            do { try FileManager.default.createDirectory(at: runs.root, withIntermediateDirectories: true) } catch {
                throw StudioError(500, "cannot create the runs folder \(runs.root.path): \(error.localizedDescription)")
            }
            let p = try ChildProcess(executable: convnet, arguments: args)
            process = p
            runName = name
            stopping = false
            history = []
            let group = DispatchGroup()
            finished = group
            group.enter()
            broadcastLocked(json(["type": "started", "run": name, "network": request.networkName, "arguments": args.joined(separator: " ")]))
            let errorText = LockedText()
            let errThread = Thread {
                let data = p.stderr.readDataToEndOfFile()
                errorText.set(String(decoding: data, as: UTF8.self))
            }
            errThread.start()
            let outThread = Thread { [weak self] in
                var pending = Data()
                let handle = p.stdout
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    pending.append(chunk)
                    while let nl = pending.firstIndex(of: 10) {
                        let line = String(decoding: pending[pending.startIndex..<nl], as: UTF8.self)
                        pending.removeSubrange(pending.startIndex...nl)
                        self?.received(line)
                    }
                }
                let exitStatus = p.wait()
                // stderr is read to its end by its own thread; wait for it briefly.
                var waited = 0
                while !errorText.done && waited < 200 { usleep(10_000); waited += 1 }
                self?.ended(exitStatus: exitStatus, folder: folder, name: name, stderr: errorText.value)
                group.leave()
            }
            outThread.start()
            return name
        }
    }

    /// Asks the running training to stop (SIGINT, as Ctrl-C would); its last checkpoint stays.
    public func stop() throws -> String {
        try lock.withLock {
            guard let p = process, let runName else { throw StudioError(409, "no training is running") }
            stopping = true
            p.signal(SIGINT)
            return runName
        }
    }

    /// Every event of the current (or last) training so far, then the new ones as they come.
    public func subscribe() -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(100_000))
        let id = UUID()
        lock.withLock {
            if closed {
                continuation.finish()
                return
            }
            for line in history { continuation.yield(line) }
            listeners[id] = continuation
        }
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            _ = self.lock.withLock { self.listeners.removeValue(forKey: id) }
        }
        return stream
    }

    /// Ctrl-C: stops a running training (it saves its checkpoint first when it can), waits for it, and
    /// ends every event stream so the server can close.
    public func shutdown() {
        let group: DispatchGroup? = lock.withLock {
            closed = true
            guard let p = process else { return nil }
            stopping = true
            p.signal(SIGINT)
            return finished
        }
        if let group, group.wait(timeout: .now() + 60) == .timedOut {
            lock.withLock { process?.signal(SIGKILL) }
            _ = group.wait(timeout: .now() + 5)
        }
        // Finished outside the lock: finishing runs each stream's onTermination, which takes the lock.
        let open = lock.withLock {
            defer { listeners = [:] }
            return Array(listeners.values)
        }
        for c in open { c.finish() }
    }

    private func received(_ line: String) {
        guard line.hasPrefix("{\"type\":") else { return }  // the --json summary line has no type
        lock.withLock { broadcastLocked(line) }
    }

    private func ended(exitStatus: Int32, folder: URL, name: String, stderr: String) {
        let fm = FileManager.default
        let model = folder.appendingPathComponent("model.npz")
        let checkpoint = folder.appendingPathComponent("checkpoint.npz")
        let wasStopped = lock.withLock { stopping }
        var event: [String: Any] = ["type": "finished", "run": name, "exit_status": Int(exitStatus)]
        var loaded: URL?
        if exitStatus == 0 && fm.fileExists(atPath: model.path) {
            event["status"] = "done"
            loaded = model
        } else if wasStopped {
            event["status"] = "stopped"
            if fm.fileExists(atPath: checkpoint.path) { loaded = checkpoint }
        } else {
            event["status"] = "failed"
            let lines = stderr.split(separator: "\n").suffix(3).joined(separator: "\n")
            event["message"] = lines.isEmpty ? "convnet train exited with status \(exitStatus)" : lines
        }
        if let loaded {
            do {
                try store.load(loaded, run: name)
                event["model"] = "runs/\(name)/\(loaded.lastPathComponent)"
            } catch {
                event["message"] = "the run ended but its model could not be loaded: \(error)"
            }
        } else if wasStopped {
            event["message"] = "stopped before the first epoch ended: no checkpoint to draw with"
        }
        lock.withLock {
            broadcastLocked(json(event))
            process = nil
        }
    }

    private func broadcastLocked(_ line: String) {
        history.append(line)
        for c in listeners.values { c.yield(line) }
    }

    private func uniqueRunName(_ network: String) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        formatter.locale = Locale(identifier: "en_US_POSIX")
        let stem = "studio-\(network)-\(formatter.string(from: Date()))"
        var name = stem
        var k = 2
        while FileManager.default.fileExists(atPath: runs.root.appendingPathComponent(name).path) {
            name = "\(stem)-\(k)"
            k += 1
        }
        return name
    }
}

/// Text written by one thread and read by another.
final class LockedText: @unchecked Sendable {
    private let lock = NSLock()
    private var text = ""
    private var isDone = false
    func set(_ s: String) { lock.withLock { text = s; isDone = true } }
    var value: String { lock.withLock { text } }
    var done: Bool { lock.withLock { isDone } }
}

func json(_ object: [String: Any]) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}

/// A recipe as the page's Train form shows it: the settings it fills the form with (`convnet recipes`
/// lists the rest, which the form has no fields for and which stay the recipe's).
public struct RecipeInfo: Encodable, Sendable, Equatable {
    public var name: String
    public var summary: String
    public var model: String
    public var dataset: String
    public var optimizer: String
    public var learningRate: Double
    public var batchSize: Int
    public var epochs: Int

    public init(_ recipe: Recipe) {
        name = recipe.name
        summary = recipe.summary
        model = recipe.model
        dataset = recipe.dataset
        optimizer = recipe.options.optimizer.rawValue
        // Through its shortest text, so that 0.05 reaches the page as 0.05, not 0.05000000074505806.
        learningRate = Double("\(recipe.options.learningRate)") ?? Double(recipe.options.learningRate)
        batchSize = recipe.options.batchSize
        epochs = recipe.options.epochs
    }
}
