//! The Grafana dashboard shipped in `conf/grafana/mcp-edge.json`: well-formed for import
//! anywhere (one `${DS_PROMETHEUS}` datasource input, unique panel ids, every panel with
//! a datasource, queries and a unit, no overlapping panels), and every metric and label
//! its queries use exported by the real binary's `/metrics` after a little traffic.

mod support;

use regex::Regex;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};
use support::edge::Edge;
use support::http::Client;
use support::upstream::{refusing_addr, Conn, Upstream};

/// The datasource input every query goes through, so the dashboard imports anywhere.
const DATASOURCE_INPUT: &str = "${DS_PROMETHEUS}";
/// Labels the Prometheus server adds to every scraped series.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];

const JSON: (&str, &str) = ("Content-Type", "application/json");
const ACCEPT_BOTH: (&str, &str) = ("Accept", "application/json, text/event-stream");

/// The shipped dashboard.
fn dashboard() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../conf/grafana/mcp-edge.json");
    let text = std::fs::read_to_string(path).expect("the dashboard is shipped");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// Every panel, the panels of collapsed rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        all.extend(panel["panels"].as_array().into_iter().flatten());
    }
    all
}

/// Every PromQL expression of the dashboard, with where it is: panel targets, query
/// annotations and the `label_values(...)` of template variables.
fn expressions(dashboard: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default();
            let place = format!("panel {} {:?}", panel["id"], panel["title"]);
            found.push((place, expr.to_string()));
        }
    }
    for annotation in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(expr) = annotation["expr"].as_str() {
            found.push((format!("annotation {}", annotation["name"]), expr.into()));
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(query) = variable["query"]["query"].as_str() {
            found.push((format!("variable {}", variable["name"]), query.into()));
        }
    }
    found
}

/// `expr` with every string literal emptied, so label values are never read as names.
fn without_strings(expr: &str) -> String {
    Regex::new(r#""(?:[^"\\]|\\.)*""#)
        .unwrap()
        .replace_all(expr, "\"\"")
        .into_owned()
}

/// The series names an expression selects: mcp-edge's own and the process collector's
/// (function names, keywords and labels never start with these prefixes).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let name = Regex::new(r"\b((?:mcp_edge|process)_[A-Za-z0-9_]*)").unwrap();
    name.captures_iter(&without_strings(expr))
        .map(|caps| caps[1].to_string())
        .collect()
}

/// The label names an expression uses: in matchers and in `by`/`without`/`on`/
/// `ignoring`/`group_left`/`group_right` lists.
fn label_names(expr: &str) -> BTreeSet<String> {
    let expr = without_strings(expr);
    let grouping =
        Regex::new(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)").unwrap();
    let selector = Regex::new(r"\{([^}]*)\}").unwrap();
    let matcher = Regex::new(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)").unwrap();
    let mut labels = BTreeSet::new();
    for caps in grouping.captures_iter(&expr) {
        labels.extend(
            caps[1]
                .split(',')
                .map(str::trim)
                .filter(|label| !label.is_empty())
                .map(String::from),
        );
    }
    for caps in selector.captures_iter(&expr) {
        labels.extend(matcher.captures_iter(&caps[1]).map(|m| m[1].to_string()));
    }
    labels
}

/// What one scrape of `/metrics` declares: each family's type, and the label names seen
/// on each series name (a histogram's `_bucket`, `_sum` and `_count` apart).
struct Scrape {
    types: BTreeMap<String, String>,
    labels: BTreeMap<String, BTreeSet<String>>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let label = Regex::new(r#"([A-Za-z_][A-Za-z0-9_]*)="(?:[^"\\]|\\.)*""#).unwrap();
        let mut types = BTreeMap::new();
        let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for line in text.lines() {
            if let Some(declared) = line.strip_prefix("# TYPE ") {
                let (name, kind) = declared.split_once(' ').expect("# TYPE name kind");
                types.insert(name.to_string(), kind.to_string());
            } else if !line.starts_with('#') && !line.is_empty() {
                let end = line.find(['{', ' ']).unwrap_or(line.len());
                let seen = labels.entry(line[..end].to_string()).or_default();
                if line[end..].starts_with('{') {
                    let set = &line[end..line.rfind('}').expect("closing brace")];
                    seen.extend(label.captures_iter(set).map(|caps| caps[1].to_string()));
                }
            }
        }
        Scrape { types, labels }
    }

    /// Why `name` is not a queryable series of a declared family, if it is not.
    fn unknown(&self, name: &str) -> Option<String> {
        match self.types.get(name).map(String::as_str) {
            Some("histogram" | "summary") => {
                return Some(format!(
                    "{name} is a histogram: query _bucket, _sum or _count"
                ))
            }
            Some(_) => return None,
            None => {}
        }
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(family) = name.strip_suffix(suffix) {
                match self.types.get(family).map(String::as_str) {
                    Some("histogram") => return None,
                    Some("summary") if suffix != "_bucket" => return None,
                    _ => {}
                }
            }
        }
        Some(format!("{name} is not a metric family in /metrics"))
    }
}

/// An upstream that answers every request with a JSON-RPC result, except under `/slow`,
/// where it opens an event stream, sends one event and works until the proxy closes the
/// connection (a tool whose handler outlives its client).
fn upstream() -> Upstream {
    Upstream::start(|mut conn: Conn| {
        while let Some(request) = conn.read_request() {
            if request.target.starts_with("/slow") {
                if conn.start_event_stream().is_ok()
                    && conn.chunk(b"event: message\ndata: {}\n\n").is_ok()
                {
                    conn.wait_closed();
                }
                return;
            }
            let answer = br#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
            if conn.respond(200, "application/json", answer).is_err() {
                return;
            }
        }
    })
}

/// An edge routing `/refused` to a server that refuses connections (ejected at the first
/// failure) and everything else to `upstream`, with a short cleanup deadline and no
/// parking, so an abandoned call's wind-down ends at once.
fn edge(upstream: SocketAddr) -> Edge {
    let refused = refusing_addr();
    Edge::start_yaml(|ports| {
        format!(
            "{}upstreams:
  main:
    servers: [\"{upstream}\"]
  refused:
    servers: [\"{refused}\"]
    health:
      passive: {{consecutive_failures: 1, eject_seconds: 30}}
routes:
  - match: {{path_prefix: /refused}}
    upstream: refused
  - match: {{path_prefix: /}}
    upstream: main
filters:
  - cleanup_deadline: {{task_group_cleanup_timeout: 0.2, session_pool_cleanup_timeout: 1, park_max_per_server: 0, park_max_age: 0}}
",
            ports.preamble()
        )
    })
}

/// Traffic that creates the labelled series: a plain request, an MCP `tools/call`, a
/// request to a refusing server (upstream error, 502, ejection) and a `tools/call` whose
/// client leaves mid-stream (wind-down, abandoned call).
fn drive_traffic(edge: &Edge) {
    let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#;
    let mut client = Client::connect(edge.listen);
    let (head, _) = client.exchange("GET", "/plain", &[], b"");
    assert_eq!(head.status, 200);
    let (head, _) = client.exchange("POST", "/mcp", &[JSON, ACCEPT_BOTH], call);
    assert_eq!(head.status, 200);

    let mut client = Client::connect(edge.listen);
    let (head, _) = client.exchange("POST", "/refused/mcp", &[JSON, ACCEPT_BOTH], call);
    assert_eq!(head.status, 502);

    let mut client = Client::connect(edge.listen);
    let slow = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"slow"}}"#;
    client.send("POST", "/slow/mcp", &[JSON, ACCEPT_BOTH], slow);
    assert_eq!(client.read_head().status, 200);
    assert!(client.read_event(&mut Vec::new()).is_some());
    client.stream().shutdown(Shutdown::Both).unwrap();

    // All four counted, the wind-down of the abandoned call over.
    let deadline = Instant::now() + Duration::from_secs(20);
    while edge.metric("mcp_edge_requests_total{") < 4.0
        || edge.metric("mcp_edge_abandoned_calls_total{") < 1.0
        || edge.metric("mcp_edge_requests_in_flight ") > 0.0
    {
        assert!(
            Instant::now() < deadline,
            "the traffic was not counted within 20 s:\n{}\n{}",
            edge.admin_get("/metrics").1,
            edge.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_extractors_read_names_and_labels_not_functions_or_values() {
    let expr = r#"histogram_quantile(0.99, sum by (tool, le) (rate(mcp_edge_x_seconds_bucket{job=~"$job", kind="process_y"}[5m]))) / on (instance) group_left process_open_fds"#;
    assert_eq!(
        metric_names(expr),
        BTreeSet::from([
            "mcp_edge_x_seconds_bucket".into(),
            "process_open_fds".into()
        ])
    );
    assert_eq!(
        label_names(expr),
        BTreeSet::from(["instance", "job", "kind", "le", "tool"].map(String::from))
    );
}

#[test]
fn the_dashboard_is_well_formed_for_import() {
    let dashboard = dashboard();
    for key in ["uid", "title"] {
        assert!(
            dashboard[key]
                .as_str()
                .is_some_and(|value| !value.is_empty()),
            "the dashboard needs a {key}"
        );
    }
    assert!(
        dashboard["schemaVersion"].as_u64() >= Some(38),
        "Grafana 10+ model"
    );
    let inputs = dashboard["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs.iter().any(|input| input["name"] == "DS_PROMETHEUS"
            && input["type"] == "datasource"
            && input["pluginId"] == "prometheus"),
        "a DS_PROMETHEUS datasource input: {inputs:?}"
    );
    let mut problems = Vec::new();
    let mut ids = HashSet::new();
    let mut placed: Vec<(String, [i64; 4])> = Vec::new();
    for panel in panels(&dashboard) {
        let name = format!("panel {} {:?}", panel["id"], panel["title"]);
        if !panel["id"].is_u64() || !ids.insert(panel["id"].as_u64()) {
            problems.push(format!("{name}: id missing or not unique"));
        }
        if panel["title"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{name}: no title"));
        }
        let grid = &panel["gridPos"];
        let rect = ["x", "y", "w", "h"].map(|key| grid[key].as_i64().unwrap_or(-1));
        if rect[0] < 0 || rect[1] < 0 || rect[2] < 1 || rect[3] < 1 || rect[0] + rect[2] > 24 {
            problems.push(format!("{name}: bad gridPos {grid}"));
        }
        for (other, [x, y, w, h]) in &placed {
            if rect[0] < x + w
                && *x < rect[0] + rect[2]
                && rect[1] < y + h
                && *y < rect[1] + rect[3]
            {
                problems.push(format!("{name} overlaps {other}"));
            }
        }
        placed.push((name.clone(), rect));
        if panel["type"] == "row" {
            continue;
        }
        if panel["datasource"]["uid"] != DATASOURCE_INPUT {
            problems.push(format!("{name}: datasource is not {DATASOURCE_INPUT}"));
        }
        if panel["fieldConfig"]["defaults"]["unit"].as_str().is_none() {
            problems.push(format!("{name}: no unit"));
        }
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("{name}: no targets"));
        }
        let mut ref_ids = HashSet::new();
        for target in targets {
            if target["expr"]
                .as_str()
                .is_none_or(|expr| expr.trim().is_empty())
            {
                problems.push(format!("{name}: a target without expr"));
            }
            if !target["refId"].is_string() || !ref_ids.insert(target["refId"].as_str()) {
                problems.push(format!("{name}: refId missing or repeated"));
            }
        }
    }
    // No datasource anywhere may name a concrete instance of one Grafana.
    let mut stack = vec![&dashboard];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Some(uid) = map.get("datasource").and_then(|ds| ds.get("uid")) {
                    if uid != DATASOURCE_INPUT && uid != "-- Grafana --" {
                        problems.push(format!("datasource uid {uid} is not {DATASOURCE_INPUT}"));
                    }
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_metric_and_label_the_dashboard_queries_is_exported() {
    let expressions = expressions(&dashboard());
    let upstream = upstream();
    let edge = edge(upstream.addr);
    drive_traffic(&edge);
    let (status, text) = edge.admin_get("/metrics");
    assert_eq!(status, 200);
    let scrape = Scrape::parse(&text);

    let mut problems = Vec::new();
    let mut labels_checked = 0;
    for (place, expr) in &expressions {
        let names = metric_names(expr);
        if names.is_empty() {
            problems.push(format!("{place}: no mcp-edge metric in {expr}"));
        }
        problems.extend(
            names
                .iter()
                .filter_map(|name| scrape.unknown(name))
                .map(|why| format!("{place}: {why}")),
        );
        // Labels can be checked where every series the expression reads exists (a
        // recycle, say, needs a recycle hook this edge does not have).
        let seen: Option<Vec<_>> = names.iter().map(|name| scrape.labels.get(name)).collect();
        let Some(seen) = seen else { continue };
        let known: BTreeSet<&str> = seen
            .into_iter()
            .flatten()
            .map(String::as_str)
            .chain(TARGET_LABELS)
            .collect();
        labels_checked += 1;
        for label in label_names(expr) {
            if !known.contains(label.as_str()) {
                problems.push(format!("{place}: no label {label} on {names:?}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n--- /metrics\n{text}",
        problems.join("\n")
    );
    assert!(
        labels_checked * 4 >= expressions.len() * 3,
        "labels checked in only {labels_checked} of {} expressions: the traffic created too few series",
        expressions.len()
    );
}
