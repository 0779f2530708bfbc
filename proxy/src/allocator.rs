//! The global allocator: jemalloc, tuned to give idle memory back to the OS within seconds.
//!
//! glibc's malloc keeps the high-water mark of a burst: after ~19,500 concurrent
//! connections the idle proxy stayed at ~1.4 GiB against a 253 MiB base. jemalloc returns
//! unused pages on a decay curve; the settings below make that curve short and run it on
//! jemalloc's own background threads, so an idle process (no allocations to drive the
//! purge) shrinks too:
//!
//! - `background_thread:true`: purging runs on jemalloc's background threads
//!   (`jemalloc_bg_thd`; 4 on a 2-vCPU machine), not only inside allocation calls.
//! - `dirty_decay_ms:1000`: pages freed by the program are returned (`MADV_FREE`) over
//!   about one second instead of jemalloc's default ten.
//! - `muzzy_decay_ms:0`: pages already returned lazily are released at once
//!   (`MADV_DONTNEED`), so RSS drops without waiting for memory pressure.
//!
//! Operators may override any of them at start-up through the `_RJEM_MALLOC_CONF`
//! environment variable (jemalloc's `MALLOC_CONF`, under the prefix its Rust build uses),
//! e.g. `_RJEM_MALLOC_CONF=dirty_decay_ms:10000`. After `fork(2)` without `exec` (`-d`)
//! jemalloc turns background threads off in the child; [`resume_background_purge`] turns
//! them back on there, once the process has detached.

use std::ffi::{c_char, CStr};

/// The options compiled into the binary (jemalloc's `malloc_conf` string).
pub const MALLOC_CONF: &CStr = c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";

/// jemalloc reads this symbol when it initialises (before `main`); `tikv-jemalloc-sys`
/// builds jemalloc with the `_rjem_` prefix, hence the name.
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF_SYMBOL: Option<&'static c_char> = Some(
    // SAFETY: MALLOC_CONF is a 'static, NUL-terminated string; its first byte lives as
    // long, and jemalloc only reads it. (`export_name` itself is why this module allows
    // `unsafe_code`: a wrong symbol type would be unsound, and this one is the `const
    // char *` jemalloc declares.)
    unsafe { &*MALLOC_CONF.as_ptr() },
);

/// Turns jemalloc's background purge threads (back) on, as `background_thread:true` asks:
/// a daemon's fork left them off in the child. Logs, and purges on the allocation path
/// only, if jemalloc refuses.
pub fn resume_background_purge() {
    match tikv_jemalloc_ctl::background_thread::write(true) {
        Ok(()) => tracing::debug!("allocator purge threads running in the detached process"),
        Err(error) => tracing::warn!(%error, "cannot start the allocator's purge threads"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    fn rss_bytes() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let kib: usize = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/self/status");
        kib * 1024
    }

    fn poll<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(found) = probe() {
                return Some(found);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn background_purge_threads_run() {
        let found = poll(Duration::from_secs(5), || {
            std::fs::read_dir("/proc/self/task")
                .ok()?
                .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
                .find(|name| name.trim() == "jemalloc_bg_thd")
        });
        assert!(
            found.is_some(),
            "no jemalloc background thread in this process"
        );
    }

    /// The burst pattern: many small objects, a few of them kept (as long-lived connections
    /// keep theirs), the rest freed. An allocator that keeps its high-water mark (glibc's,
    /// jemalloc's defaults on an idle process) holds on to the freed pages.
    #[test]
    fn freed_small_objects_go_back_to_the_os_within_seconds() {
        const OBJECTS: usize = 400_000;
        const SIZE: usize = 256; // 100 MiB in all
        let before = rss_bytes();
        let mut objects: Vec<Box<[u8; SIZE]>> =
            (0..OBJECTS).map(|i| Box::new([i as u8; SIZE])).collect();
        let peak = rss_bytes();
        let grew = peak.saturating_sub(before);
        assert!(
            grew > OBJECTS * SIZE / 2,
            "allocation did not show in RSS: {grew} bytes"
        );
        // Keep one object in 256 (one per 64 KiB): the rest is freed, and no allocator
        // can hand the heap back by trimming its top.
        let kept: Vec<_> = objects.drain(..).step_by(256).collect();
        drop(objects);
        let returned = poll(Duration::from_secs(5), || {
            let now = rss_bytes();
            (now < before + grew / 5).then_some(now)
        });
        assert!(
            returned.is_some(),
            "RSS still {} MiB above the start 5 s after freeing {} MiB (peak +{} MiB)",
            rss_bytes().saturating_sub(before) >> 20,
            ((OBJECTS - kept.len()) * SIZE) >> 20,
            grew >> 20
        );
        drop(kept);
    }
}
