//! Running under a container runtime or Kubernetes: the default of `server.shutdown_delay`,
//! and how the process knows it is the container's main process, where replacing the
//! process (`mcp-edge upgrade`, the process recycle of `worker_recycle`) would end the
//! container instead of handing it over.

use super::diagnostics::{Problem, Seg};
use super::model::{Config, ServerConfig};
use mcp_edge_filters::bounded::{OptionalSeconds, HOUR};
use mcp_edge_filters::FilterSpec;
use std::fmt;

/// Set (to anything but empty, `0` or `false`) by the image: the process runs under a
/// container runtime even when it is not PID 1.
pub const IN_CONTAINER_ENV: &str = "MCP_EDGE_IN_CONTAINER";

/// The default of `server.shutdown_delay`, in seconds: long enough for Kubernetes to take
/// a terminating pod out of its Service's endpoints (the endpoints controller, kube-proxy
/// and ingress controllers follow within a few seconds) before the listeners close.
pub const DEFAULT_SHUTDOWN_DELAY_SECONDS: u64 = 5;

/// The serde default of `server.shutdown_delay`.
pub(super) fn default_shutdown_delay() -> OptionalSeconds<HOUR> {
    OptionalSeconds::from_secs(DEFAULT_SHUTDOWN_DELAY_SECONDS)
}

/// Why a process counts as the main process of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerReason {
    /// Its pid is 1: it is the init process of its pid namespace.
    Pid1,
    /// `server.container: true`.
    Setting,
    /// [`IN_CONTAINER_ENV`] is set.
    Environment,
}

impl fmt::Display for ContainerReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContainerReason::Pid1 => "it is PID 1, the container's main process",
            ContainerReason::Setting => "`server.container` is true",
            ContainerReason::Environment => "MCP_EDGE_IN_CONTAINER is set",
        })
    }
}

/// Why the mcp-edge process `pid`, run with `server`, is a container's main process, if
/// it is one.
pub fn container_reason(server: &ServerConfig, pid: u32) -> Option<ContainerReason> {
    if pid == 1 {
        Some(ContainerReason::Pid1)
    } else if server.container {
        Some(ContainerReason::Setting)
    } else if env_says_container() {
        Some(ContainerReason::Environment)
    } else {
        None
    }
}

fn env_says_container() -> bool {
    std::env::var(IN_CONTAINER_ENV).is_ok_and(|value| {
        let value = value.trim();
        !(value.is_empty() || value == "0" || value.eq_ignore_ascii_case("false"))
    })
}

/// The process recycle replaces the process: in a container it is refused, at `check`, at
/// start and on reload.
pub(crate) fn check(config: &Config, out: &mut Vec<Problem>) {
    let Some(reason) = container_reason(&config.server, std::process::id()) else {
        return;
    };
    for (i, spec) in config.filters.iter().enumerate() {
        if let FilterSpec::WorkerRecycle(settings) = spec {
            if settings.process_max_requests.get() > 0 {
                out.push(Problem::at(
                    vec![
                        Seg::Key("filters".to_owned()),
                        Seg::Index(i),
                        Seg::Key("worker_recycle".to_owned()),
                        Seg::Key("process_max_requests".to_owned()),
                    ],
                    format!(
                        "the process recycle replaces the mcp-edge process, which would end \
                         its container ({reason}); set it to 0 and let the orchestrator \
                         replace containers (a rolling update)"
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{errors, load};

    const RECYCLING: &str = "\
version: 1
server:
  container: CONTAINER
listeners:
  - address: 127.0.0.1:8080
upstreams:
  gw:
    servers: [127.0.0.1:4444]
routes:
  - match: {path_prefix: /}
    upstream: gw
filters:
  - worker_recycle:
      process_max_requests: 100
";

    #[test]
    fn the_process_recycle_is_refused_in_a_container_at_its_line() {
        let found = errors(&RECYCLING.replace("CONTAINER", "true"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("14: filters[0].worker_recycle.process_max_requests:"),
            "{found:?}"
        );
        assert!(found[0].contains("would end its container"), "{found:?}");
        assert!(found[0].contains("`server.container` is true"), "{found:?}");
    }

    #[test]
    fn the_process_recycle_is_accepted_outside_a_container() {
        if super::env_says_container() {
            return; // the test itself runs in a container that says so
        }
        load(&RECYCLING.replace("CONTAINER", "false")).expect("valid");
    }

    #[test]
    fn shutdown_delay_defaults_to_five_seconds() {
        let loaded = load(&RECYCLING.replace("CONTAINER", "false")).expect("valid");
        assert_eq!(loaded.config.server.shutdown_delay, 5.0);
        assert!(!loaded.config.server.container);
    }

    #[test]
    fn pid_1_is_a_container() {
        let server = super::ServerConfig::default();
        assert_eq!(
            super::container_reason(&server, 1),
            Some(super::ContainerReason::Pid1)
        );
    }
}
