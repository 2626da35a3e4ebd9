import ConvNet
import ConvNetCLI
import Foundation
import Testing

/// Whether this machine can make network namespaces (root and iproute2), as CI's does.
let canMakeNamespaces: Bool = {
    guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") else { return false }
    return (try? runProgram("/usr/sbin/ip", ["netns", "list"]).status) == 0
}()

/// Scripts/netns-mpirun.sh: the hosts as network namespaces on a private bridge, TCP between them.
let namespaceScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Scripts/netns-mpirun.sh")

@Suite("convnet-mpi across network namespaces over TCP", .serialized,
       .enabled(if: canMakeNamespaces, "making network namespaces needs root and iproute2 (ip netns)"))
struct NamespaceTests {
    @Test("2 and 3 hosts, one rank each, over TCP: the bits of the same ranks on one machine, within 1e-5 of one process",
          arguments: [("two-conv", trainArguments), ("vgg-bn", ["train"] + MPITrainingTests.vggBN + ["--json"])])
    func acrossHosts(name: String, trainArguments: [String]) throws {
        let folder = try scratchFolder("netns-\(name)")
        let reference = try MPITrainingTests().referenceRun(in: folder, arguments: trainArguments)
        for hosts in [2, 3] {
            let local = folder.appendingPathComponent("local-\(hosts)"), remote = folder.appendingPathComponent("netns-\(hosts)")
            let a = try mpirun(ranks: hosts, trainArguments + ["--threads", "1", "--out", local.path])
            try #require(a.status == 0, "\(a.stderr)")
            let b = try runProgram(namespaceScript.path, [String(hosts), convnetMPI.path] + trainArguments + ["--threads", "1", "--out", remote.path])
            try #require(b.status == 0, "netns run failed: \(b.stderr)")
            let accuracy = try #require(try summary(b)["test_accuracy"] as? Double)
            let (relative, _) = try difference(reference.weights, weights(in: remote))
            print("namespaces \(name): \(hosts) hosts x 1 rank x 1 thread over TCP vs 1 process x 2 threads: max weight difference \(relative), "
                  + String(format: "test accuracy %.2f%% vs %.2f%%", 100 * accuracy, 100 * reference.accuracy)
                  + " in \(String(format: "%.1f", b.seconds)) s")
            #expect(try difference(weights(in: local), weights(in: remote)).identical, "TCP across hosts sums in the same order as shared memory")
            #expect(relative <= 1e-5)
            #expect(abs(accuracy - reference.accuracy) <= 0.001 + 1e-12)
        }
        // The script removed what it made.
        let ours = try Regex("^cn[0-9]+(h[0-9]+|br)")
        let left = try runProgram("/usr/sbin/ip", ["netns", "list"]).stdout.split(separator: "\n").filter { $0.contains(ours) }
        #expect(left.isEmpty, "namespaces left behind: \(left)")
    }
}
