//! The server binary's allocator: mimalloc, tuned to give memory back (a module of the binary
//! `main.rs`, not of the library: tests and embedders keep their own allocator).
//!
//! Why not glibc's malloc (BENCHMARKS.md, b and d): it kept the whole heap of a 10,000-client
//! storm after every client had left (20x the idle RSS, for good), and its per-block overhead
//! weighs on the ~20 small blocks each idle connection holds. mimalloc packs them by size class
//! and, with the options below, returns freed pages to the system as soon as they are free.
//! It is C, built by the `cc` crate: it needs a C compiler (gcc or cc) on the build machine.

use libmimalloc_sys as ffi;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` (mimalloc v3's `mi_option_t`; the crate names only a few).
const ARENA_EAGER_COMMIT: ffi::mi_option_t = 4;
/// `mi_option_purge_delay`.
const PURGE_DELAY: ffi::mi_option_t = 15;
/// `mi_option_allow_thp`.
const ALLOW_THP: ffi::mi_option_t = 43;

/// Set mimalloc's options, unless the environment does (`MIMALLOC_PURGE_DELAY=...` and the
/// like win). Call first thing in `main`, before any other thread exists: mimalloc's option
/// setters are not thread-safe.
pub(crate) fn tune() {
    // (option, value, environment variable that overrides it)
    let options = [
        // Free pages go back to the system at once, not 10 ms later: a delayed purge only
        // happens on a later allocation, and a server left idle after a storm makes none.
        (PURGE_DELAY, 0, "MIMALLOC_PURGE_DELAY"),
        // Commit arena memory as it is used, not ahead: 14 -> 7 MiB of idle RSS.
        (ARENA_EAGER_COMMIT, 0, "MIMALLOC_ARENA_EAGER_COMMIT"),
        // No transparent huge pages: a 2 MiB page with one live block in it stays resident.
        (ALLOW_THP, 0, "MIMALLOC_ALLOW_THP"),
    ];
    for (option, value, env) in options {
        if std::env::var_os(env).is_none() {
            // SAFETY: plain integer options, set before any other thread allocates.
            unsafe { ffi::mi_option_set(option, value) };
        }
    }
}
