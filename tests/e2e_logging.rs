//! Structured logs: `MCP_EDGE_LOG_FORMAT=json` or `server.log_format: json` makes every
//! stderr line a JSON object with stable fields; `server.log_file` moves the log to a file.

mod support;

use std::time::{Duration, Instant};
use support::edge::Edge;
use support::upstream::refusing_addr;

/// The config of [`Edge::start`] with `extra` under `server:`, routing to a refusing
/// upstream (every request is refused with a logged warning).
fn config(ports: &support::edge::Ports, extra: &str) -> String {
    format!(
        "{}upstreams:\n  main:\n    servers: [\"{}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\n",
        ports.preamble_with(extra),
        refusing_addr()
    )
}

/// The complete lines (a line still being written is left out).
fn complete_lines(log: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = log.split_inclusive('\n').collect();
    if lines.last().is_some_and(|line| !line.ends_with('\n')) {
        lines.pop();
    }
    lines.into_iter().map(str::trim_end).collect()
}

/// Waits until a complete log line satisfies `found`; the lines then.
fn wait_for_line(edge: &Edge, found: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = edge.log();
        if complete_lines(&log).into_iter().any(&found) || Instant::now() >= deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every complete line parsed, asserting each is a JSON object with the stable fields.
fn parse_json_lines(log: &str) -> Vec<serde_json::Value> {
    let lines = complete_lines(log);
    assert!(lines.len() > 5, "a start-up logs several lines:\n{log}");
    lines
        .into_iter()
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            for field in ["timestamp", "level", "target", "message"] {
                assert!(value[field].is_string(), "no string `{field}`: {line}");
            }
            value
        })
        .collect()
}

#[test]
fn the_environment_variable_makes_every_stderr_line_json() {
    let edge = Edge::start_yaml_env(
        |ports| config(ports, ""),
        &[("MCP_EDGE_LOG_FORMAT", "json")],
    );
    let mut client = support::http::Client::connect(edge.listen);
    let (head, _) = client.exchange("GET", "/", &[("Connection", "close")], b"");
    assert_eq!(head.status, 502);
    edge.signal(libc::SIGHUP);
    let log = wait_for_line(&edge, |line| line.contains("config reloaded"));
    let lines = parse_json_lines(&log);

    let reloaded = lines
        .iter()
        .find(|line| line["message"] == "config reloaded")
        .unwrap_or_else(|| panic!("no reload line:\n{log}"));
    assert_eq!(reloaded["level"], "INFO");
    assert_eq!(reloaded["target"], "mcp_edge::reload");
    assert_eq!(
        reloaded["generation"], 2,
        "event fields are top-level values"
    );
    let refused = lines
        .iter()
        .find(|line| line["status"] == 502)
        .unwrap_or_else(|| panic!("no refused-request line:\n{log}"));
    assert_eq!(refused["level"], "WARN");
    // Pingora's own records come through with Pingora's target and no bridge fields.
    let pingora = lines
        .iter()
        .find(|line| line["target"].as_str().unwrap().starts_with("pingora_core"))
        .unwrap_or_else(|| panic!("no Pingora line:\n{log}"));
    assert!(
        pingora
            .as_object()
            .unwrap()
            .keys()
            .all(|key| !key.starts_with("log.")),
        "{pingora}"
    );
}

#[test]
fn the_config_picks_json_and_the_environment_wins_over_it() {
    let from_config = Edge::start_yaml(|ports| config(ports, "  log_format: json\n"));
    parse_json_lines(&from_config.log());
    let (_, document) = from_config.admin_get("/config");
    let document: serde_json::Value = serde_json::from_str(&document).unwrap();
    assert_eq!(document["log"]["format"], "json");

    let overridden = Edge::start_yaml_env(
        |ports| config(ports, "  log_format: json\n"),
        &[("MCP_EDGE_LOG_FORMAT", "text")],
    );
    let log = overridden.log();
    let first = complete_lines(&log)[0];
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_err(),
        "{first}"
    );
    assert!(first.contains(" INFO "), "{first}");
}

#[test]
fn log_file_takes_the_log_off_stderr() {
    let edge = Edge::start_yaml(|ports| {
        let file = ports.dir.join("edge-file.log");
        config(ports, &format!("  log_file: {}\n", file.display()))
    });
    let file = std::fs::read_to_string(edge.dir.path().join("edge-file.log")).unwrap();
    assert!(file.contains("mcp-edge starting"), "{file}");
    assert_eq!(edge.log(), "", "nothing on stderr");
    let (_, config) = edge.admin_get("/config");
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(
        config["log"]["destination"],
        edge.dir.path().join("edge-file.log").display().to_string()
    );
}
