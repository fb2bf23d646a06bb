//! Process hardening for a server holding keys: no core dumps (a dump would hold the root key
//! and every opened key), and optionally every page locked in memory (never swapped out).
//! Through `rustix`'s safe wrappers; best effort, each failure logged.

/// `RLIMIT_CORE` 0 and, on Linux, not dumpable (no core file, no `ptrace` by other users'
/// processes, `/proc/PID/mem` closed to them).
pub fn no_core_dumps() {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, setrlimit};
        if let Err(e) = setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) }) {
            tracing::warn!(error = %e, "could not turn core dumps off (RLIMIT_CORE)");
        }
        #[cfg(target_os = "linux")]
        if let Err(e) = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable) {
            tracing::warn!(error = %e, "could not make the process not dumpable");
        }
    }
}

/// Locks every page, present and future, in memory (`mlockall`), so no key reaches swap.
pub fn lock_memory() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use rustix::mm::{MlockAllFlags, mlockall};
        mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE).map_err(std::io::Error::from)
    }
    #[cfg(not(unix))]
    Err(std::io::Error::other("mlockall exists only on Unix"))
}
