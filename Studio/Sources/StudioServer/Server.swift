import ConvNet
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// How a studio is set up.
public struct StudioConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// A model.npz to draw with (instead of the newest run's).
    public var weights: URL?
    /// A run folder to draw with and serve (its model.npz or checkpoint.npz).
    public var run: URL?
    /// Where trainings write their run folders, and whose runs are served.
    public var runsDirectory: URL
    public var dataDirectory: URL?
    /// The `convnet` executable that trains.
    public var convnet: URL?
    /// What the loaded models and their test sets may take (`--memory-budget`).
    public var memoryBudget: MemoryBudget

    public init(host: String = "127.0.0.1", port: Int = 8080, weights: URL? = nil, run: URL? = nil, runsDirectory: URL = URL(fileURLWithPath: "runs"),
                dataDirectory: URL? = nil, convnet: URL? = nil, memoryBudget: MemoryBudget = .machine) {
        self.memoryBudget = memoryBudget
        self.host = host
        self.port = port
        self.weights = weights
        self.run = run
        self.runsDirectory = runsDirectory
        self.dataDirectory = dataDirectory
        self.convnet = convnet
    }
}

/// Largest request bodies: a drawn image is 784 numbers (about 3 KB as JSON), a training request a spec.
public enum RequestLimits {
    public static let predictBody = 16 * 1024
    public static let trainBody = 16 * 1024
    public static let cellImages = 64
}

/// The page's files (HTML, JS, CSS), read once from the target's resources; only these names are served.
struct SiteAssets: Sendable {
    let files: [String: Data]

    static func load() throws -> SiteAssets {
        guard let folder = Bundle.module.url(forResource: "site", withExtension: nil) else {
            throw StudioError(500, "the studio's page files are missing from its resource bundle")
        }
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where !name.hasPrefix(".") {
            files[name] = try Data(contentsOf: folder.appendingPathComponent(name))
        }
        return SiteAssets(files: files)
    }
}

/// The studio: model, runs and training behind an HTTP router.
public final class Studio: Sendable {
    public let configuration: StudioConfiguration
    public let store: ModelStore
    public let runs: RunFolders
    public let training: TrainingManager
    let assets: SiteAssets
    /// What the page says about the model on start (why none is loaded, or where it came from).
    public let startupNote: String

    public init(_ configuration: StudioConfiguration) throws {
        self.configuration = configuration
        store = ModelStore(dataDirectory: configuration.dataDirectory, memoryBudget: configuration.memoryBudget)
        runs = RunFolders(root: configuration.runsDirectory, extra: configuration.run)
        training = TrainingManager(convnet: configuration.convnet, runs: runs, store: store, dataDirectory: configuration.dataDirectory)
        assets = try SiteAssets.load()
        if let weights = configuration.weights {
            try store.load(weights, run: nil)
            startupNote = "drawing with \(weights.path)"
        } else if let run = configuration.run {
            let model = run.appendingPathComponent("model.npz"), checkpoint = run.appendingPathComponent("checkpoint.npz")
            if FileManager.default.fileExists(atPath: model.path) {
                try store.load(model, run: run.lastPathComponent)
            } else if FileManager.default.fileExists(atPath: checkpoint.path) {
                try store.load(checkpoint, run: run.lastPathComponent)
            } else {
                throw StudioError(404, "\(run.path) holds no model.npz or checkpoint.npz (is it a run folder written by convnet train?)")
            }
            startupNote = "drawing with run \(run.path)"
        } else if let newest = runs.newestModel() {
            try store.load(newest.file, run: newest.name)
            startupNote = "drawing with the newest run, \(newest.file.path)"
        } else {
            startupNote = "no trained network under \(configuration.runsDirectory.path)/ yet: train the default one (two-conv on mnist-sample, about 10-20 s)"
        }
    }

    /// The router with every route of the page and its API.
    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ErrorMessages())
        let studio = self

        router.get("/") { _, _ in studio.asset("index.html") }
        router.get("/assets/:name") { _, context in
            studio.asset(context.parameters.get("name") ?? "")
        }

        router.get("/api/model") { _, _ in try studio.modelInfo() }

        router.post("/api/predict") { request, _ in
            let image = try DrawnImage(json: try await readBody(request, limit: RequestLimits.predictBody))
            return try jsonResponse(try studio.store.predict(image))
        }
        router.post("/api/maps") { request, _ in
            let image = try DrawnImage(json: try await readBody(request, limit: RequestLimits.predictBody))
            return try jsonResponse(try studio.store.maps(image))
        }

        router.get("/api/confusion") { _, _ in
            let data = try await studio.store.confusionData()
            struct Answer: Encodable { var dataset: String; var labels: [String]; var matrix: [[Int]]; var accuracy: Double; var count: Int }
            return try jsonResponse(Answer(dataset: data.dataset, labels: data.labels, matrix: data.matrix, accuracy: data.accuracy, count: data.actual.count))
        }
        router.get("/api/confusion/cell") { request, _ in
            let q = request.uri.queryParameters
            guard let a = q.get("actual", as: Int.self), let p = q.get("predicted", as: Int.self) else {
                throw StudioError(400, "give ?actual=CLASS&predicted=CLASS (whole numbers)")
            }
            let data = try await studio.store.confusionData()
            guard data.labels.indices.contains(a), data.labels.indices.contains(p) else {
                throw StudioError(400, "classes run from 0 to \(data.labels.count - 1); got actual=\(a), predicted=\(p)")
            }
            struct Answer: Encodable { var actual: Int; var predicted: Int; var count: Int; var labels: [String]; var images: [CellImage] }
            return try jsonResponse(Answer(actual: a, predicted: p, count: data.matrix[a][p], labels: data.labels,
                                           images: data.cell(actual: a, predicted: p, limit: RequestLimits.cellImages)))
        }

        router.get("/api/walkthrough") { _, _ in try jsonResponse(try WalkthroughJSON(ToyWalkthrough.make())) }

        router.get("/api/train") { _, _ in try jsonResponse(studio.training.status) }
        router.post("/api/train") { request, _ in
            let body = try TrainRequest.parse(try await readBody(request, limit: RequestLimits.trainBody))
            let run = try studio.training.start(body)
            struct Answer: Encodable { var run: String; var events: String }
            return try jsonResponse(Answer(run: run, events: "/api/train/events"), status: .accepted)
        }
        router.post("/api/train/stop") { _, _ in
            struct Answer: Encodable { var stopping: String }
            return try jsonResponse(Answer(stopping: try studio.training.stop()))
        }
        router.get("/api/train/events") { _, _ in
            let stream = studio.training.subscribe()
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: ": convnet studio training events\n\n"))
                    for await line in stream { try await writer.write(ByteBuffer(string: "data: \(line)\n\n")) }
                    try await writer.finish(nil)
                })
        }

        router.get("/api/runs") { _, _ in
            struct Run: Encodable { var name: String; var hasModel: Bool; var hasReport: Bool }
            let fm = FileManager.default
            let list = studio.runs.all().sorted { $0.key < $1.key }.map { name, url in
                Run(name: name, hasModel: fm.fileExists(atPath: url.appendingPathComponent("model.npz").path),
                    hasReport: fm.fileExists(atPath: url.appendingPathComponent("report.html").path))
            }
            return try jsonResponse(list)
        }
        router.get("/runs/:run/**") { _, context in
            let run = context.parameters.get("run").flatMap { $0.removingPercentEncoding } ?? ""
            let parts = context.parameters.getCatchAll().map { String($0).removingPercentEncoding ?? String($0) }
            let file = try studio.runs.file(run: run, components: parts)
            let data: Data
            do { data = try Data(contentsOf: file) } catch { throw StudioError(404, "run '\(run)' has no readable file \(parts.joined(separator: "/"))") }
            return Response(status: .ok, headers: [.contentType: contentType(for: file.path)], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        return router
    }

    func asset(_ name: String) -> Response {
        guard let data = assets.files[name] else {
            return errorResponse(StudioError(404, "the studio has no page file '\(name)'"))
        }
        return Response(status: .ok, headers: [.contentType: contentType(for: name), .cacheControl: "no-cache"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    func modelInfo() throws -> Response {
        struct Info: Encodable {
            var loaded: Bool
            var note: String
            var name: String?
            var dataset: String?
            var spec: String?
            var inputShape: [Int]?
            var labels: [String]?
            var parameters: Int?
            var source: String?
            var run: String?
            var canDraw: Bool
            var zoo: [String]
            var datasets: [String]
            var recipes: [RecipeInfo]
            var training: TrainingManager.Status
        }
        var info = Info(loaded: false, note: startupNote, canDraw: false, zoo: ModelZoo.names, datasets: DatasetCatalog.names,
                        recipes: Recipes.all.map(RecipeInfo.init), training: training.status)
        if let (archive, source, _) = store.current {
            info.loaded = true
            info.name = archive.modelName
            info.dataset = archive.dataset
            info.spec = archive.network.spec
            info.inputShape = archive.network.inputShape
            let classes = max(archive.network.outputShape.reduce(1, *), 2)
            info.labels = (0..<classes).map { label(archive, $0) }
            info.parameters = archive.network.parameterCount
            info.source = source.run.map { "runs/\($0)/\(source.file.lastPathComponent)" } ?? source.file.path
            info.run = source.run
            let shape = archive.network.inputShape
            info.canDraw = shape.count == 3 && (shape[0] == 1 || shape[0] == 3)
        }
        return try jsonResponse(info)
    }

    /// Serves until SIGINT/SIGTERM; then a running training is stopped (saving its checkpoint when it
    /// can) and every event stream ends before the server closes. `onRunning` gets the bound port.
    public func run(onRunning: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        var logger = Logger(label: "convnet-studio")
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .warning
        let app = Application(
            router: router(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "convnet-studio"),
            onServerRunning: { channel in onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [app, ShutdownService(training: training)], gracefulShutdownSignals: [.sigint, .sigterm], logger: logger))
        try await group.run()
    }
}

/// Waits for the graceful-shutdown signal, then stops the training and closes the event streams
/// (it runs after the server in the group, so it shuts down first).
struct ShutdownService: Service {
    let training: TrainingManager
    func run() async throws {
        try? await gracefulShutdown()
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                training.shutdown()
                c.resume()
            }
        }
    }
}

/// Turns every error into a status with a JSON `{"error": message}` body.
struct ErrorMessages<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as StudioError {
            return errorResponse(error)
        } catch let error as HTTPError {
            if error.status == .notFound { return errorResponse(StudioError(404, "no such page or API: \(request.uri.path)")) }
            return errorResponse(StudioError(Int(error.status.code), error.body ?? error.status.reasonPhrase))
        } catch let error as any HTTPResponseError {
            if error.status == .contentTooLarge { return errorResponse(StudioError(413, "the request body is too large")) }
            return errorResponse(StudioError(Int(error.status.code), error.status.reasonPhrase))
        } catch {
            return errorResponse(StudioError(500, "\(error)"))
        }
    }
}

/// The body, refusing more than `limit` bytes with 413.
func readBody(_ request: Request, limit: Int) async throws -> Data {
    let tooLarge = StudioError(413, "the request body is larger than \(limit) bytes (a drawn image is 784 gray levels, about 3 KB of JSON)")
    if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit { throw tooLarge }
    do {
        let buffer = try await request.body.collect(upTo: limit)
        return Data(buffer.readableBytesView)
    } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
        throw tooLarge
    }
}

let encoder: JSONEncoder = {
    let e = JSONEncoder()
    e.keyEncodingStrategy = .convertToSnakeCase
    e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return e
}()

func jsonResponse<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
    let data = try encoder.encode(value)
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

func errorResponse(_ error: StudioError) -> Response {
    let body = json(["error": error.message, "status": error.status])
    return Response(status: httpStatus(error.status), headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: body)))
}

/// The toy walkthrough as JSON: each step's matrices with their marked cells.
public struct WalkthroughJSON: Encodable, Sendable {
    public struct Matrix: Encodable, Sendable { public var name, caption: String; public var values: [[Float]]; public var markers: [[Int]] }
    public struct Step: Encodable, Sendable { public var id, phase, title, explanation: String; public var matrices: [Matrix] }
    public var title: String
    public var introduction: String
    public var steps: [Step]

    public init(_ w: Walkthrough) {
        title = w.title
        introduction = w.introduction
        steps = w.steps.map { s in
            Step(id: s.id, phase: s.phase.rawValue, title: s.title, explanation: s.explanation,
                 matrices: s.matrices.map { m in
                     Matrix(name: m.name, caption: m.caption, values: m.values,
                            markers: m.markers.sorted { ($0.row, $0.column) < ($1.row, $1.column) }.map { [$0.row, $0.column] })
                 })
        }
    }
}

func httpStatus(_ code: Int) -> HTTPResponse.Status {
    switch code {
    case 200: return .ok
    case 202: return .accepted
    case 400: return .badRequest
    case 403: return .forbidden
    case 404: return .notFound
    case 409: return .conflict
    case 413: return .contentTooLarge
    case 503: return .serviceUnavailable
    default: return code >= 500 ? .internalServerError : HTTPResponse.Status(code: code)
    }
}
