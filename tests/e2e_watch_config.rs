//! `server.watch_config`, end to end: the config file laid out as a Kubernetes ConfigMap
//! volume (`mcp-edge.yaml -> ..data/mcp-edge.yaml`, `..data -> ..<version>`), updated the
//! way the kubelet does it (a new version directory, a `..data_tmp` symlink renamed over
//! `..data`). A swap with new content reloads through SIGHUP's path (a new generation,
//! counted); a swap with the same content does not; a bad file is rejected, counted, and
//! the running config keeps serving.

mod support;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};
use support::edge::{Edge, Ports};
use support::upstream::Upstream;

/// A config routing `/` to `upstream`, with `tag` in a header-free place: the access log
/// is off, so the tag is a route prefix that changes nothing else.
fn config(ports: &Ports, upstream: std::net::SocketAddr, tag: &str) -> String {
    format!(
        "{}upstreams:\n  main:\n    servers: [\"{upstream}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\n  - match: {{path_prefix: /{tag}}}\n    upstream: main\n",
        ports.preamble_with("  watch_config: true\n")
    )
}

/// Publishes `content` as version `version` of the ConfigMap volume in `dir`.
fn publish(dir: &Path, version: &str, content: &str) {
    let versioned = dir.join(format!("..{version}"));
    std::fs::create_dir(&versioned).unwrap();
    std::fs::write(versioned.join("mcp-edge.yaml"), content).unwrap();
    symlink(format!("..{version}"), dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
}

fn generation(edge: &Edge) -> u64 {
    edge.metric("mcp_edge_config_generation") as u64
}

fn wait_for(edge: &Edge, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} within 10 s; log:\n{}",
            edge.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn get_ok(edge: &Edge) -> bool {
    let mut client = support::http::Client::connect(edge.listen);
    client.exchange("GET", "/", &[], b"").0.status == 200
}

#[test]
fn a_config_map_swap_reloads_and_a_bad_file_keeps_the_running_config() {
    let upstream = Upstream::start(|mut conn| {
        while conn.read_request().is_some() {
            if conn.respond(200, "text/plain", b"ok").is_err() {
                return;
            }
        }
    });
    let mut first = String::new();
    let edge = Edge::start_yaml(|ports| {
        first = config(ports, upstream.addr, "v1");
        first.clone()
    });
    let ports = Ports {
        listen: edge.listen,
        admin: edge.admin,
        dir: edge.dir.path().to_path_buf(),
    };
    let dir = edge.dir.path();
    // Turn the plain file into a ConfigMap volume with the same content: no reload.
    publish(dir, "v1", &first);
    let staging = dir.join("link_tmp");
    symlink("..data/mcp-edge.yaml", &staging).unwrap();
    std::fs::rename(&staging, edge.config_path()).unwrap();
    assert_eq!(generation(&edge), 1);

    publish(dir, "v2", &config(&ports, upstream.addr, "v2"));
    wait_for(&edge, "the swap reloads", || generation(&edge) == 2);
    assert_eq!(
        edge.metric("mcp_edge_config_reloads_total{result=\"ok\"}"),
        1.0
    );
    assert!(edge.admin_get("/config").1.contains("/v2"));

    // Same content in a new version: not a change.
    publish(dir, "v3", &config(&ports, upstream.addr, "v2"));
    std::fs::remove_dir_all(dir.join("..v1")).unwrap();
    // A bad file is rejected with the check's message; the running config serves on.
    publish(
        dir,
        "v4",
        &config(&ports, upstream.addr, "v4").replace("servers:", "server:"),
    );
    wait_for(&edge, "the bad file is rejected", || {
        edge.metric("mcp_edge_config_reloads_total{result=\"error\"}") == 1.0
    });
    assert_eq!(generation(&edge), 2);
    assert_eq!(
        edge.metric("mcp_edge_config_reloads_total{result=\"ok\"}"),
        1.0,
        "v3 reloaded"
    );
    let status = edge.admin_get("/config").1;
    assert!(
        status.contains("mcp-edge.yaml:"),
        "no file:line in {status}"
    );
    assert!(get_ok(&edge));

    // Fixed: the next swap reloads.
    publish(dir, "v5", &config(&ports, upstream.addr, "v5"));
    wait_for(&edge, "the fixed file reloads", || generation(&edge) == 3);
    assert!(get_ok(&edge));
}
