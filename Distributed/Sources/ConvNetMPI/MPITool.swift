import ArgumentParser
import ConvNet
import ConvNetCLI
import Foundation

/// `convnet-mpi`: `convnet train` across MPI ranks, and `bench` for its scaling.
public struct MPITool: ParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "convnet-mpi",
        abstract: "Data-parallel training over MPI: run it under mpirun, one rank per process.",
        discussion: """
            Every rank holds the same network, trains on its slice of each global batch and the gradients
            are added up over the ranks; rank 0 prints and writes the run folder.
              mpirun -np 2 convnet-mpi train --model lenet5 --dataset fashion-mnist --out runs/lenet5
              mpirun -np 2 convnet-mpi bench --model two-conv --batch-size 128
            """,
        subcommands: [TrainCommand.self, MPIBenchCommand.self]
    )

    /// Runs the command given on the command line in this rank: MPI starts first, an error on any rank
    /// ends every rank at once with that rank's message, and only rank 0 prints.
    public static func runAsRank() -> Never {
        let world = MPIRuntime.start()
        // Rank 0 speaks for the job; the others keep a handle on stderr for their own errors only.
        let errors = world.rank == 0 ? FileHandle.standardError : FileHandle(fileDescriptor: dup(STDERR_FILENO), closeOnDealloc: true)
        if world.rank != 0 {
            let null = open("/dev/null", O_WRONLY)
            dup2(null, STDOUT_FILENO)
            dup2(null, STDERR_FILENO)
        }
        // The ranks on one machine share its cores (--threads overrides).
        ProcessRanks.threadsPerRank = max(1, Threading.availableCores / MPIRuntime.ranksOnThisHost(world))
        var command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            // Every rank parsed the same arguments and failed alike: rank 0 prints, all end with its code.
            let plain = PlainErrors.translate(error)  // Foundation's errors in plain words, as in convnet
            let code = exitCode(for: plain).rawValue
            if world.rank == 0 {
                let text = fullMessage(for: plain)
                FileHandle(fileDescriptor: code == 0 ? STDOUT_FILENO : STDERR_FILENO).write(Data((text + "\n").utf8))
            }
            MPIRuntime.finalize()
            Foundation.exit(code)
        }
        ProcessRanks.current = world
        do {
            try command.run()
        } catch {
            // Plain words, and a ValidationError with the usage of the subcommand that threw it, as in convnet.
            let (text, code) = PlainErrors.report(error, root: self, command: command)
            let prefix = world.size > 1 ? "rank \(world.rank) of \(world.size): " : ""
            errors.write(Data(("convnet-mpi: " + prefix + text + "\n").utf8))
            MPIRuntime.abort(world, code: code == 0 ? 1 : code)
        }
        MPIRuntime.finalize()
        Foundation.exit(0)
    }
}
