//! Process measurements from /proc.

use std::time::Duration;

/// User + system CPU seconds the process `pid` has used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // The command name (field 2) may contain spaces; fields after it are fixed.
    let after_name = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / per_second
}

/// CPU seconds `pid` burns over the next `window` (the process is measured, not waited
/// on: the window is the measurement itself).
pub fn cpu_over(pid: u32, window: Duration) -> f64 {
    let before = cpu_seconds(pid);
    std::thread::sleep(window);
    cpu_seconds(pid) - before
}

/// Asserts the proxy is near idle over 3 s (a spin shows as ~3 CPU-seconds), and
/// prints the figure for the test log.
pub fn assert_idle(pid: u32, scenario: &str) {
    let used = cpu_over(pid, Duration::from_secs(3));
    println!("[no-spin] {scenario}: proxy used {used:.3} CPU-seconds over 3 s");
    assert!(
        used < 0.45,
        "{scenario}: proxy used {used:.3} CPU-seconds over 3 s after the scenario (spinning?)"
    );
}

/// Fields of `/proc/<pid>/stat` after the command name (field 3, the state, is index 0);
/// `None` when the process is gone.
fn stat_after_name(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.get(stat.rfind(')')? + 2..)?;
    Some(after_name.split_whitespace().map(str::to_owned).collect())
}

/// Clock ticks per second of the CPU times in /proc.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// The live (or zombie) direct children of `pid`, sorted.
pub fn children(pid: u32) -> Vec<u32> {
    let mut found: Vec<u32> = std::fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|candidate| {
            stat_after_name(*candidate).and_then(|fields| fields.get(1)?.parse::<u32>().ok())
                == Some(pid)
        })
        .collect();
    found.sort_unstable();
    found
}

/// CPU seconds of the whole process tree under `pid`, itself included: its own user and
/// system time, what its reaped children used (cutime + cstime: a worker that exited and
/// was waited for still counts), and the same for every live child, recursively. Read
/// until the set of children holds still across the read, so a child reaped meanwhile is
/// counted once. 0 when `pid` is gone.
pub fn tree_cpu_seconds(pid: u32) -> f64 {
    for _ in 0..10 {
        let before = children(pid);
        let kids: f64 = before.iter().map(|child| tree_cpu_seconds(*child)).sum();
        let Some(fields) = stat_after_name(pid) else {
            return 0.0;
        };
        // utime, stime, cutime, cstime: fields 14-17 of the line, 11-14 after the name.
        let own: f64 = fields[11..15]
            .iter()
            .map(|ticks| ticks.parse::<f64>().unwrap_or(0.0))
            .sum();
        if children(pid) == before {
            return own / ticks_per_second() + kids;
        }
    }
    panic!("the children of {pid} kept changing while their CPU time was read")
}

/// Resident set size of `pid` in bytes, from /proc/<pid>/statm.
pub fn rss_bytes(pid: u32) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).expect("read /proc statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .expect("statm has a resident field");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page
}
