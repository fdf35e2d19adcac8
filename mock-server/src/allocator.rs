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

/// At most this many live tasks, the runtime counts as nearly empty: a worker collects at
/// every park (cheap: little is left to visit, and a nearly empty server seldom wakes). A peak
/// cannot tell instead: a short HTTP request often starts and ends between two parks.
const FEW_TASKS: usize = 64;

/// A worker also collects when it parks this long after its last collect, so that a long busy
/// spell gives pages back now and then: at most 10 collects a second per busy worker, a bound
/// on what the collects (a walk of the thread's pages) can cost under load.
const COLLECT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The runtime whose workers call [`on_park`] (set by `main` once it is built).
pub(crate) static RUNTIME: std::sync::OnceLock<tokio::runtime::Handle> = std::sync::OnceLock::new();

thread_local! {
    /// The most tasks alive the runtime had since this thread last collected.
    static PEAK_TASKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// When this thread last collected.
    static LAST_COLLECT: std::cell::Cell<Option<std::time::Instant>> =
        const { std::cell::Cell::new(None) };
}

/// The runtime's `on_thread_park` hook: a worker about to sleep gives its free pages back to
/// the system when the runtime's live tasks (about one per connection) have halved since its
/// last collect, or when it is nearly empty.
///
/// Why: mimalloc keeps a thread's emptied pages until that same thread allocates again (a
/// "retired" page per size class, pages emptied by other threads' frees), and a worker left
/// idle after a storm allocates nothing: ~0.5 MiB stayed resident after 10,000 clients left
/// (BENCHMARKS.md, d). The collect is per thread (mimalloc cannot collect another thread's
/// pages), hence a hook run by each worker. A busy worker collects at most every
/// [`COLLECT_EVERY`] plus about log2(N) times when N clients leave; one fan-out run at 10k
/// after this change showed no extra server CPU per message (BENCHMARKS.md, a).
pub(crate) fn on_park() {
    let Some(handle) = RUNTIME.get() else {
        return;
    };
    let alive = handle.metrics().num_alive_tasks();
    PEAK_TASKS.with(|peak| {
        let high = peak.get().max(alive);
        let halved = alive * 2 <= high && high > alive;
        let now = std::time::Instant::now();
        let due = LAST_COLLECT
            .get()
            .is_none_or(|last| now.duration_since(last) >= COLLECT_EVERY);
        if halved || alive <= FEW_TASKS || due {
            // SAFETY: collects the calling thread's own heap; no pointer is handed over.
            unsafe { ffi::mi_collect(true) };
            LAST_COLLECT.set(Some(now));
            peak.set(alive);
        } else {
            peak.set(high);
        }
    });
}
