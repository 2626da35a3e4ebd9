/// `1 epoch`, `3 epochs`, `2 batches`: a count and its noun, in the plural unless the count is 1.
public func counted(_ n: Int, _ noun: String) -> String {
    "\(n) \(n == 1 ? noun : plural(noun))"
}

/// The plural of the nouns the program counts: `-es` after a sibilant (`batch`, `pass`, `box`), `-s` otherwise
/// (`epoch`, whose "ch" is a k sound, included).
func plural(_ noun: String) -> String {
    let sibilant = ["sh", "ss", "x", "z"].contains { noun.hasSuffix($0) } || (noun.hasSuffix("ch") && noun != "epoch" && !noun.hasSuffix(" epoch"))
    return noun + (sibilant ? "es" : "s")
}
