/// `1 epoch`, `3 epochs`: a count and its noun, in the plural unless the count is 1.
public func counted(_ n: Int, _ noun: String) -> String {
    "\(n) \(noun)\(n == 1 ? "" : noun.hasSuffix("ch") || noun.hasSuffix("s") || noun.hasSuffix("x") ? "es" : "s")"
}
