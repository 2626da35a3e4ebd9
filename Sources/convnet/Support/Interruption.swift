import Foundation
import Synchronization

/// The signal (SIGINT or SIGTERM) that asked training to stop, 0 while none has.
private let pendingSignal = Atomic<Int32>(0)

/// Stops training cleanly on Ctrl-C (SIGINT) or SIGTERM: the first signal sets a flag that the training
/// loop checks after each step, which then saves a checkpoint and exits with a resume hint; the handler
/// restores the default action, so a second signal stops the process at once.
enum Interruption {
    static func install() {
        // A parent may have started us with the signals blocked (the mask survives exec): unblock them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { received in
                pendingSignal.store(received, ordering: .relaxed)
                signal(received, SIG_DFL)
            }
        }
    }

    /// The signal received since `install`, if any.
    static var received: Int32? {
        let s = pendingSignal.load(ordering: .relaxed)
        return s == 0 ? nil : s
    }

    static func name(_ sig: Int32) -> String { sig == SIGINT ? "SIGINT (Ctrl-C)" : sig == SIGTERM ? "SIGTERM" : "signal \(sig)" }
}
