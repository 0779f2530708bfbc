//! The edge's `/metrics` read by series and labels.

use super::edge::Edge;
use std::collections::BTreeMap;

/// The sum of the `name` series whose labels include every pair of `labels`.
pub fn labelled(edge: &Edge, name: &str, labels: &[(&str, &str)]) -> f64 {
    series(edge, name)
        .into_iter()
        .filter(|(have, _)| {
            labels
                .iter()
                .all(|(key, value)| have.get(*key).map(String::as_str) == Some(*value))
        })
        .map(|(_, value)| value)
        .sum()
}

/// Every series of metric `name`: its labels and value.
pub fn series(edge: &Edge, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let (_, body) = edge.admin_get("/metrics");
    body.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(rest) => rest.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            let labels = labels
                .split("\",")
                .filter_map(|pair| {
                    let (key, value) = pair.split_once("=\"")?;
                    Some((key.to_string(), value.trim_end_matches('"').to_string()))
                })
                .collect();
            Some((labels, value.trim().parse().ok()?))
        })
        .collect()
}

/// `label=value` for every non-zero series of `name` (summed by `label`).
pub fn outcomes(edge: &Edge, name: &str, label: &str) -> String {
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for (labels, value) in series(edge, name) {
        *sums
            .entry(labels.get(label).cloned().unwrap_or_default())
            .or_default() += value;
    }
    sums.into_iter()
        .filter(|(_, value)| *value != 0.0)
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(",")
}
