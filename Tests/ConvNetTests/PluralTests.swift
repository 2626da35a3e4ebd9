import Testing
@testable import ConvNet

@Suite("Counted nouns")
struct PluralTests {
    @Test func pluralsOfTheNounsTheProgramCounts() {
        #expect(counted(1, "epoch") == "1 epoch")
        #expect(counted(15, "epoch") == "15 epochs")  // was "15 epoches" in `convnet models`
        #expect(counted(2, "batch") == "2 batches")
        #expect(counted(0, "pass") == "0 passes")
        #expect(counted(3, "box") == "3 boxes")
        #expect(counted(4, "thread") == "4 threads")
        #expect(counted(1, "sample") == "1 sample")
    }
}
