//! `# HELP` and `# TYPE` lines for labelled families that have no series yet.
//!
//! The registry leaves a vector out of its output until the vector's first series
//! exists, so before a rare event (a recycle, an abandoned call, a server ejection) a
//! dashboard or an alert cannot tell a quiet process from a misspelt metric name.
//! A family declared without samples is valid in the Prometheus text format.

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use std::collections::HashSet;

/// Appends `# HELP` and `# TYPE` to `out` for every family of `collectors` that is not
/// in `rendered` (the families already written, with their samples).
pub fn declare_missing(
    rendered: &[MetricFamily],
    collectors: &[&dyn Collector],
    out: &mut Vec<u8>,
) {
    let present: HashSet<&str> = rendered.iter().map(MetricFamily::name).collect();
    for family in collectors.iter().flat_map(|collector| collector.collect()) {
        let name = family.name();
        if present.contains(name) {
            continue;
        }
        let kind = format!("{:?}", family.get_field_type()).to_lowercase();
        let help = family.help().replace('\\', r"\\").replace('\n', r"\n");
        out.extend_from_slice(format!("# HELP {name} {help}\n# TYPE {name} {kind}\n").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{IntCounterVec, Opts};

    fn vector(name: &str) -> IntCounterVec {
        IntCounterVec::new(Opts::new(name, "Help with a \\ and\na newline."), &["kind"]).unwrap()
    }

    #[test]
    fn declares_an_empty_family_once_and_skips_rendered_ones() {
        let empty = vector("empty_total");
        let used = vector("used_total");
        used.with_label_values(&["a"]).inc();
        let rendered = used.collect();
        let mut out = Vec::new();
        declare_missing(&rendered, &[&empty, &used], &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# HELP empty_total Help with a \\\\ and\\na newline.\n# TYPE empty_total counter\n"
        );
    }
}
