//! The spin rows of docs/spin-loop.md under a real process manager: upstream CPU-seconds
//! of every process of each gunicorn (master and workers, exited ones included; see
//! `tests/support/gunicorn.rs`) over 0-10 s and 10-30 s after the client is SIGKILLed,
//! direct and through mcp-edge with the shipped `conf/examples/gunicorn-recycle.yaml`.
//!
//! - `an_abandoned_forever_call_does_not_spin_gunicorn_through_the_edge` asserts the
//!   direction in one window;
//! - `gunicorn_spin_experiment` (ignored, ~6 min) prints the table:
//!   `cargo test -p mcp-edge --test e2e_gunicorn_spin -- --ignored --nocapture`
//!
//! The gunicorn tests run one at a time ([`support::gunicorn::serial`]), across this file
//! and `tests/e2e_gunicorn_recycle.rs`: the CPU figures must not share the machine with
//! another test's spinning workers.

mod support;

use std::fmt::Write as _;
use std::thread;
use std::time::{Duration, Instant};
use support::edge::Edge;
use support::gunicorn::{
    edge_for, extra_gunicorn_args, serial, Gunicorn, GRACEFUL_TIMEOUT, RECYCLES,
};
use support::metrics::outcomes;
use support::spin::{start_call, Wire};

/// CPU-seconds in a 10 s window above which a direct call counts as spinning.
const SPINS: f64 = 2.0;
/// Through the edge, an abandoned call may cost this share of the direct figure.
const BOUND: f64 = 0.10;
/// The `finite` tool's work in the spin rows: longer than the 5 s cleanup deadline.
const FINITE_SECONDS: f64 = 8.0;

/// What one spin run measured.
struct Cell {
    /// Upstream CPU-seconds (every gunicorn process) in each window after the kill.
    cpu: Vec<f64>,
    /// The edge's outcomes (empty when direct).
    edge: String,
}

/// Starts gunicorn (two and mcp-edge with `knobs` when `through`, else one), calls `tool`
/// with the SDK's client, SIGKILLs the client once the handler runs, and measures the
/// upstream CPU over the windows ending at `ends` (seconds after the kill).
fn measure(wire: Wire, through: Option<&[(&str, &str)]>, tool: &str, ends: &[u64]) -> Cell {
    let a = Gunicorn::start();
    let b = through.map(|_| Gunicorn::start());
    let edge = through.map(|knobs| {
        let b = b.as_ref().expect("server B");
        edge_for(&a, b, &a.pid_file, &b.pid_file, knobs)
    });
    let base = edge
        .as_ref()
        .map_or_else(|| format!("http://{}", a.addr), Edge::base_url);
    let url = format!("{base}{}", wire.path());
    let client = start_call(wire, &url, tool, FINITE_SECONDS, "gunicorn", || a.log());
    let upstream_cpu = || a.cpu_seconds() + b.as_ref().map_or(0.0, Gunicorn::cpu_seconds);
    client.kill();
    let killed = Instant::now();
    let mut last = upstream_cpu();
    let mut cpu = Vec::new();
    for end in ends {
        // The window is the measurement itself.
        thread::sleep(
            (killed + Duration::from_secs(*end)).saturating_duration_since(Instant::now()),
        );
        let now = upstream_cpu();
        cpu.push(now - last);
        last = now;
    }
    let edge = edge.as_ref().map_or_else(String::new, |edge| {
        format!(
            "cleanup {}; parked ended {}; recycles {}",
            outcomes(edge, "mcp_edge_cleanup_total", "outcome"),
            outcomes(edge, "mcp_edge_parked_ended_total", "outcome"),
            outcomes(edge, RECYCLES, "reason"),
        )
    });
    Cell { cpu, edge }
}

#[test]
fn an_abandoned_forever_call_does_not_spin_gunicorn_through_the_edge() {
    let _serial = serial();
    let direct = measure(Wire::Stateless, None, "forever", &[10]).cpu[0];
    println!("[spin] stateless forever, direct: {direct:.2} CPU-s in 0-10 s");
    assert!(
        direct > SPINS,
        "the premise: an abandoned forever call spins gunicorn's worker ({direct:.2} CPU-s)"
    );
    let via = measure(Wire::Stateless, Some(&[]), "forever", &[10]);
    println!(
        "[spin] stateless forever, through mcp-edge: {:.2} CPU-s in 0-10 s ({})",
        via.cpu[0], via.edge
    );
    assert!(
        via.cpu[0] < BOUND * direct,
        "through the edge {:.2} CPU-s >= {BOUND} x {direct:.2} direct ({})",
        via.cpu[0],
        via.edge
    );
}

/// The gunicorn rows of docs/spin-loop.md: {legacy SSE, stateless POST} x {finite 8 s,
/// forever}, direct and through mcp-edge (parking, and recycling with
/// `max_parked_age: 10` so that the recycle falls inside the measured 30 s).
#[test]
#[ignore = "the experiment: ~6 min; run with --ignored --nocapture"]
fn gunicorn_spin_experiment() {
    let _serial = serial();
    let knobs: &[(&str, &str)] = &[("MCP_EDGE_MAX_PARKED_AGE", "10")];
    let mut table = String::from(
        "| transport | tool | direct | through mcp-edge | share | mcp-edge |\n|---|---|---|---|---|---|\n",
    );
    for wire in [Wire::Sse, Wire::Stateless] {
        for tool in ["finite", "forever"] {
            let label = if tool == "finite" {
                format!("finite ({FINITE_SECONDS} s)")
            } else {
                tool.to_string()
            };
            let direct = measure(wire, None, tool, &[10, 30]);
            let via = measure(wire, Some(knobs), tool, &[10, 30]);
            let share = |i: usize| {
                if direct.cpu[i] > 0.0 {
                    format!("{:.1} %", 100.0 * via.cpu[i] / direct.cpu[i])
                } else {
                    "-".to_string()
                }
            };
            let row = format!(
                "| {} | {label} | {:.2} / {:.2} | {:.2} / {:.2} | {} / {} | {} |",
                wire.name(),
                direct.cpu[0],
                direct.cpu[1],
                via.cpu[0],
                via.cpu[1],
                share(0),
                share(1),
                via.edge
            );
            eprintln!("[spin] {row}");
            let _ = writeln!(table, "{row}");
        }
    }
    println!(
        "\nUpstream CPU-seconds (every process of the gunicorn masters) in 0-10 s / 10-30 s after the client was SIGKILLed (gunicorn --graceful-timeout {GRACEFUL_TIMEOUT} {}):\n\n{table}",
        extra_gunicorn_args().join(" ")
    );
}
