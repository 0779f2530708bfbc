//! The alerting rules shipped in `conf/prometheus/mcp-edge.rules.yml`, checked against a
//! running edge's `/metrics`.
//!
//! Every rule's expression starts with the series that counts trouble (the file says so).
//! A rule ending in `== 0` fires when that series sums to zero (nothing available); every
//! other rule fires when it rises, so after normal traffic it must sum to zero.

use super::edge::Edge;
use super::metrics::series;
use regex::Regex;
use std::time::{Duration, Instant};

/// One alerting rule: its name and the first selector of its expression.
#[derive(Debug)]
pub struct Rule {
    /// The alert's name.
    pub name: String,
    /// The expression.
    pub expr: String,
}

/// The shipped rules.
pub fn shipped_rules() -> Vec<Rule> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conf/prometheus/mcp-edge.rules.yml"
    );
    let text = std::fs::read_to_string(path).expect("the alert rules are shipped");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("the alert rules are YAML");
    let mut rules = Vec::new();
    for group in doc["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            rules.push(Rule {
                name: rule["alert"].as_str().expect("alert name").to_string(),
                expr: rule["expr"].as_str().expect("alert expr").to_string(),
            });
        }
    }
    assert!(!rules.is_empty(), "no rules in {path}");
    rules
}

/// A label matcher of a selector.
struct Matcher {
    label: String,
    op: String,
    value: Regex,
}

impl Matcher {
    fn matches(&self, have: Option<&String>) -> bool {
        let have = have.map_or("", String::as_str);
        let hit = self.value.is_match(have);
        match self.op.as_str() {
            "=" | "=~" => hit,
            _ => !hit,
        }
    }
}

/// The first selector of `expr`: the metric name and its label matchers.
fn first_selector(expr: &str) -> (String, Vec<Matcher>) {
    let selector = Regex::new(r"(mcp_edge_[a-z_]+)(\{([^}]*)\})?").unwrap();
    let caps = selector
        .captures(expr)
        .unwrap_or_else(|| panic!("no mcp_edge_ selector in {expr}"));
    let name = caps[1].to_string();
    let matcher = Regex::new(r#"(\w+)\s*(=~|!=|!~|=)\s*"([^"]*)""#).unwrap();
    let matchers = caps
        .get(3)
        .map(|labels| {
            matcher
                .captures_iter(labels.as_str())
                .map(|m| {
                    let literal = matches!(&m[2], "=" | "!=");
                    let pattern = if literal {
                        regex::escape(&m[3])
                    } else {
                        m[3].to_string()
                    };
                    Matcher {
                        label: m[1].to_string(),
                        op: m[2].to_string(),
                        value: Regex::new(&format!("^(?:{pattern})$")).unwrap(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    (name, matchers)
}

/// The sum of the series `rule` counts trouble with.
pub fn trouble(edge: &Edge, rule: &Rule) -> f64 {
    let (name, matchers) = first_selector(&rule.expr);
    series(edge, &name)
        .into_iter()
        .filter(|(labels, _)| matchers.iter().all(|m| m.matches(labels.get(&m.label))))
        .map(|(_, value)| value)
        .sum()
}

/// Waits until the edge serves no request (wind-downs of abandoned calls included).
pub fn wait_idle(edge: &Edge) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while edge.metric("mcp_edge_requests_in_flight ") > 0.0 {
        assert!(
            Instant::now() < deadline,
            "requests still in flight after 60 s:\n{}",
            edge.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that no shipped alert would fire on the edge's metrics now, once every
/// request (and wind-down) has ended, and that no exchange was wound down as abandoned.
pub fn assert_quiet(edge: &Edge, context: &str) {
    wait_idle(edge);
    let mut firing = Vec::new();
    for rule in shipped_rules() {
        let value = trouble(edge, &rule);
        let fires = if rule.expr.trim_end().ends_with("== 0") {
            value == 0.0
        } else {
            value != 0.0
        };
        if fires {
            firing.push(format!("{} ({value}): {}", rule.name, rule.expr));
        }
    }
    // Beyond the alerts: nothing was wound down or counted as abandoned at all.
    for name in ["mcp_edge_cleanup_total", "mcp_edge_abandoned_calls_total"] {
        let counted = super::metrics::outcomes(edge, name, "outcome");
        if !counted.is_empty() {
            firing.push(format!("{name}: {counted}"));
        }
    }
    assert!(
        firing.is_empty(),
        "alerts would fire under normal traffic:\n{}\n--- metrics\n{}\n{context}",
        firing.join("\n"),
        edge.admin_get("/metrics").1
    );
}
