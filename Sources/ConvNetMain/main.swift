import ConvNetCLI

ConvNetTool.main()
