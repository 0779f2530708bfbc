//! Process metrics, as Prometheus client libraries export them (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_start_time_seconds`, ...), and `mcp_edge_build_info`.

use prometheus::process_collector::ProcessCollector;
use prometheus::{IntGaugeVec, Opts, Registry};

/// The commit the binary was built from (`unknown` outside a git checkout).
pub const BUILD_COMMIT: &str = env!("MCP_EDGE_BUILD_COMMIT");

/// Registers the process collector and the build info gauge in `registry`.
pub fn register(registry: &Registry) {
    registry
        .register(Box::new(ProcessCollector::for_self()))
        .expect("process metric names are unique");
    let build_info = IntGaugeVec::new(
        Opts::new(
            "mcp_edge_build_info",
            "Always 1; the labels tell the version and commit of the running binary.",
        ),
        &["version", "commit"],
    )
    .expect("valid metric");
    build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION"), BUILD_COMMIT])
        .set(1);
    registry
        .register(Box::new(build_info))
        .expect("metric names are unique");
}
