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
