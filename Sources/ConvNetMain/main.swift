import ConvNetCLI

// Not `ConvNetTool.main()`: that is ArgumentParser's, which prints Foundation's errors raw.
ConvNetTool.mainWithPlainErrors()
