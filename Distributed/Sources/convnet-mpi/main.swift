import ConvNetMPI

MPITool.runAsRank()
