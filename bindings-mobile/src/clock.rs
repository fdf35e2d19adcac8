//! A clock that keeps counting while the phone sleeps, and a [`Timer`] over it.
//!
//! `std::time::Instant` (and so tokio's timers) stops while a device is suspended: on
//! Linux/Android it is `CLOCK_MONOTONIC`, on Apple platforms `CLOCK_UPTIME_RAW`. A phone
//! that slept ten minutes would then see a heartbeat deadline or a backoff delay as not
//! yet due. [`BootClock`] reads a clock that counts suspended time:
//! `clock_gettime(CLOCK_BOOTTIME)` on Linux and Android, `clock_gettime(CLOCK_MONOTONIC)`
//! on iOS and macOS (which, unlike `CLOCK_UPTIME_RAW`, advances during sleep), and
//! `std::time::Instant` elsewhere.
//!
//! [`DeviceTimer`] gives the core that clock as `now()` and sleeps with tokio in slices of
//! at most [`DeviceTimer::slice`], re-reading the clock after each: a deadline that passed
//! while the device slept fires within one slice of waking instead of after the full
//! (unadvanced) tokio delay. `on_foreground()` acts on it at once.

use std::sync::Arc;
use std::time::Duration;

use pitchey_realtime::client::platform::{BoxFuture, Timer};
use pitchey_realtime::core::Instant;

/// A monotonic clock: time since an origin of its own.
pub trait MonotonicClock: Send + Sync + 'static {
    /// Time since the clock's origin; never decreases.
    fn elapsed(&self) -> Duration;
}

/// The device clock that counts suspended time (see the [module docs](self)).
#[derive(Debug, Clone, Copy)]
pub struct BootClock {
    origin: Duration,
}

impl BootClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        BootClock { origin: raw_now() }
    }
}

impl Default for BootClock {
    fn default() -> Self {
        Self::new()
    }
}

impl MonotonicClock for BootClock {
    fn elapsed(&self) -> Duration {
        raw_now().saturating_sub(self.origin)
    }
}

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "ios",
    target_os = "macos",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos"
))]
fn raw_now() -> Duration {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const CLOCK: libc::clockid_t = libc::CLOCK_BOOTTIME;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the
    // platform defines. clock_gettime writes only into `ts`.
    let rc = unsafe { libc::clock_gettime(CLOCK, &mut ts) };
    if rc != 0 {
        return fallback_now();
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(ts.tv_nsec).unwrap_or(0);
    Duration::new(secs, nanos)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "ios",
    target_os = "macos",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos"
)))]
fn raw_now() -> Duration {
    fallback_now()
}

/// `std::time::Instant` since the first call: monotonic, but stops while suspended.
fn fallback_now() -> Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

/// The [`Timer`] of the mobile clients: `now()` from a [`MonotonicClock`], sleeps by tokio
/// in slices that re-read that clock.
#[derive(Clone)]
pub struct DeviceTimer {
    clock: Arc<dyn MonotonicClock>,
    slice: Duration,
}

impl DeviceTimer {
    /// The default slice: how late, at worst, a deadline that passed during sleep fires
    /// when the app does not call `on_foreground()`. Short enough for a heartbeat
    /// (30 s), long enough not to wake a connected app often.
    pub const DEFAULT_SLICE: Duration = Duration::from_secs(5);

    /// A timer over the device's [`BootClock`].
    pub fn new() -> Self {
        Self::with_clock(Arc::new(BootClock::new()), Self::DEFAULT_SLICE)
    }

    /// A timer over any clock (tests use one that can jump), sleeping in `slice`s.
    pub fn with_clock(clock: Arc<dyn MonotonicClock>, slice: Duration) -> Self {
        DeviceTimer {
            clock,
            slice: slice.max(Duration::from_millis(10)),
        }
    }

    /// The longest single tokio sleep.
    pub fn slice(&self) -> Duration {
        self.slice
    }
}

impl Default for DeviceTimer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for DeviceTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceTimer")
            .field("now", &self.clock.elapsed())
            .field("slice", &self.slice)
            .finish()
    }
}

impl Timer for DeviceTimer {
    fn now(&self) -> Instant {
        Instant::from_duration(self.clock.elapsed())
    }

    fn epoch_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let clock = self.clock.clone();
        let slice = self.slice;
        let deadline = clock.elapsed().saturating_add(duration);
        Box::pin(async move {
            loop {
                let left = deadline.saturating_sub(clock.elapsed());
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(slice)).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_clock_advances() {
        let clock = BootClock::new();
        let a = clock.elapsed();
        std::thread::sleep(Duration::from_millis(5));
        assert!(clock.elapsed() > a);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn boottime_is_at_least_monotonic_time() {
        // CLOCK_BOOTTIME = CLOCK_MONOTONIC + time suspended.
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid timespec and a constant clock id.
        assert_eq!(
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) },
            0
        );
        let mono = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        assert!(raw_now() >= mono);
    }
}
