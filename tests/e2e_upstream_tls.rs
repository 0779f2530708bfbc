//! Upstream TLS end to end: the real binary in front of an HTTPS upstream in this process,
//! its certificates issued by a CA made for each test.

mod support;
#[path = "support/tls_upstream.rs"]
mod tls_upstream;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::edge::{binary, Edge, Ports};
use support::http::{Client, Head};
use support::metrics::labelled;
use tls_upstream::{TestCa, TlsUpstream};

const PING: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

fn post(client: &mut Client, path: &str) -> (Head, Vec<u8>) {
    client.exchange(
        "POST",
        path,
        &[
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
        ],
        PING,
    )
}

/// A config whose group `main` has the servers `servers` (YAML list items, already
/// quoted) and `tls` lines (indented by 4, or "") and serves `/`.
fn config(ports: &Ports, servers: &str, tls: &str) -> String {
    format!(
        "{}upstreams:\n  main:\n    servers: [{servers}]\n{tls}routes:\n  - match: {{path_prefix: /}}\n    upstream: main\n",
        ports.preamble()
    )
}

/// `"https://localhost:PORT"` of an upstream.
fn https_localhost(upstream: &TlsUpstream) -> String {
    format!("\"https://localhost:{}\"", upstream.addr.port())
}

fn tls_errors(edge: &Edge, group: &str) -> f64 {
    labelled(
        edge,
        "mcp_edge_upstream_errors_total",
        &[("upstream", group), ("kind", "tls_error")],
    )
}

/// Runs `checks`; on failure prints the proxy's log before panicking.
fn with_log(edge: &Edge, checks: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(checks)) {
        eprintln!("--- mcp-edge log ---\n{}", edge.log());
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn with_the_ca_configured_a_request_reaches_the_https_upstream_by_its_name() {
    let ca = TestCa::new("test CA");
    let upstream = TlsUpstream::start(&ca.issue(&["localhost"], "server"), None);
    let tls = format!("    tls: {{ca_file: \"{}\"}}\n", ca.ca_file().display());
    let edge = Edge::start_yaml(|ports| config(ports, &https_localhost(&upstream), &tls));
    with_log(&edge, || {
        let mut client = Client::connect(edge.listen);
        let (head, body) = post(&mut client, "/mcp");
        assert_eq!(head.status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(body, br#"{"ok":true}"#);
        let seen = upstream.handshakes();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(
            seen[0].sni.as_deref(),
            Some("localhost"),
            "SNI is the URL's host"
        );
        assert_eq!(seen[0].alpn.as_deref(), Some("http/1.1"));
        assert!(seen[0].error.is_none(), "{seen:?}");
        assert!(!seen[0].client_cert, "no client certificate configured");
        // The client's Host is forwarded, as to plain upstreams.
        assert_eq!(seen[0].hosts, ["mcp.test"]);
        assert_eq!(tls_errors(&edge, "main"), 0.0);
    });
}

#[test]
fn two_requests_share_one_tls_connection() {
    let ca = TestCa::new("test CA");
    let upstream = TlsUpstream::start(&ca.issue(&["localhost"], "server"), None);
    let tls = format!("    tls: {{ca_file: \"{}\"}}\n", ca.ca_file().display());
    let edge = Edge::start_yaml(|ports| config(ports, &https_localhost(&upstream), &tls));
    with_log(&edge, || {
        // One client connection: both requests run on the same worker thread, whose pool
        // holds the upstream connection between them.
        let mut client = Client::connect(edge.listen);
        for _ in 0..2 {
            let (head, _) = post(&mut client, "/mcp");
            assert_eq!(head.status, 200);
        }
        let seen = upstream.handshakes();
        assert_eq!(seen.len(), 1, "one TLS connection: {seen:?}");
        assert_eq!(seen[0].requests, 2, "{seen:?}");
    });
}

#[test]
fn an_ip_address_gets_no_sni_and_is_verified_against_the_ip_san() {
    let ca = TestCa::new("test CA");
    let ip = tls_upstream::localhost_ip().to_string();
    let upstream = TlsUpstream::start(&ca.issue(&[&ip], "server"), None);
    let tls = format!("    tls: {{ca_file: \"{}\"}}\n", ca.ca_file().display());
    let server = format!("\"https://{}\"", upstream.addr);
    let edge = Edge::start_yaml(|ports| config(ports, &server, &tls));
    with_log(&edge, || {
        let (head, _) = post(&mut Client::connect(edge.listen), "/mcp");
        assert_eq!(head.status, 200);
        let seen = upstream.handshakes();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].sni, None, "TLS has no SNI for an IP address");
    });
}

#[test]
fn without_the_ca_the_system_roots_refuse_the_upstream() {
    let ca = TestCa::new("test CA");
    let upstream = TlsUpstream::start(&ca.issue(&["localhost"], "server"), None);
    let edge = Edge::start_yaml(|ports| config(ports, &https_localhost(&upstream), ""));
    with_log(&edge, || {
        let (head, _) = post(&mut Client::connect(edge.listen), "/mcp");
        assert_eq!(head.status, 502);
        assert_eq!(tls_errors(&edge, "main"), 1.0);
        let seen = upstream.wait_for(|seen| seen.iter().any(|h| h.error.is_some()));
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].requests, 0, "no request reached the upstream");
        let log = edge.log();
        assert!(
            log.contains("TLS handshake with the upstream failed") && log.contains("UnknownIssuer"),
            "{log}"
        );
    });
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let ca = TestCa::new("test CA");
    let upstream = TlsUpstream::start(&ca.issue(&["localhost"], "server"), None);
    let tls = format!(
        "    tls: {{ca_file: \"{}\", server_name: other.test}}\n",
        ca.ca_file().display()
    );
    let edge = Edge::start_yaml(|ports| config(ports, &https_localhost(&upstream), &tls));
    with_log(&edge, || {
        let (head, _) = post(&mut Client::connect(edge.listen), "/mcp");
        assert_eq!(head.status, 502);
        assert_eq!(tls_errors(&edge, "main"), 1.0);
        let seen = upstream.wait_for(|seen| seen.iter().any(|h| h.error.is_some()));
        assert_eq!(seen[0].sni.as_deref(), Some("other.test"), "{seen:?}");
        assert_eq!(seen[0].requests, 0);
        assert!(
            edge.log()
                .contains("certificate not valid for name \"other.test\""),
            "{}",
            edge.log()
        );
    });
}

#[test]
fn an_upstream_that_requires_a_client_certificate_accepts_only_the_configured_one() {
    let ca = TestCa::new("test CA");
    let clients_ca = TestCa::new("clients CA");
    let upstream = TlsUpstream::start(&ca.issue(&["localhost"], "server"), Some(&clients_ca));
    let client = clients_ca.issue(&["mcp-edge.test"], "client");
    let server = https_localhost(&upstream);
    let ca_file = ca.ca_file().display().to_string();
    let edge = Edge::start_yaml(|ports| {
        format!(
            "{}upstreams:\n  anonymous:\n    servers: [{server}]\n    tls: {{ca_file: \"{ca_file}\"}}\n  identified:\n    servers: [{server}]\n    tls:\n      ca_file: \"{ca_file}\"\n      client_cert: \"{}\"\n      client_key: \"{}\"\nroutes:\n  - match: {{path_prefix: /anonymous}}\n    upstream: anonymous\n  - match: {{path_prefix: /identified}}\n    upstream: identified\n",
            ports.preamble(),
            client.cert_file.display(),
            client.key_file.display()
        )
    });
    with_log(&edge, || {
        let (head, _) = post(&mut Client::connect(edge.listen), "/anonymous");
        assert_eq!(head.status, 502, "refused without a client certificate");
        assert_eq!(tls_errors(&edge, "anonymous"), 1.0);
        let seen = upstream.wait_for(|seen| seen.iter().any(|h| h.error.is_some()));
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].requests, 0);

        let (head, body) = post(&mut Client::connect(edge.listen), "/identified");
        assert_eq!(head.status, 200, "{}", String::from_utf8_lossy(&body));
        let seen = upstream.handshakes();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen[1].client_cert && seen[1].error.is_none(), "{seen:?}");
        assert_eq!(seen[1].requests, 1);
        assert_eq!(tls_errors(&edge, "identified"), 0.0);
    });
}

#[test]
fn active_http_probes_speak_tls_to_https_servers() {
    let ca = TestCa::new("test CA");
    let upstream = TlsUpstream::start(&ca.issue(&["localhost"], "server"), None);
    let tls = format!(
        "    tls: {{ca_file: \"{}\"}}\n    health:\n      active: {{kind: http, path: /health, interval: 0.1, timeout: 1, rise: 1, fall: 1}}\n",
        ca.ca_file().display()
    );
    let edge = Edge::start_yaml(|ports| config(ports, &https_localhost(&upstream), &tls));
    with_log(&edge, || {
        let authority = format!("localhost:{}", upstream.addr.port());
        let probed = |seen: &[tls_upstream::Handshake]| {
            seen.iter().filter(|h| h.hosts.contains(&authority)).count()
        };
        let seen = upstream.wait_for(|seen| probed(seen) >= 3);
        assert!(probed(&seen) >= 3, "{seen:?}");
        assert!(seen.iter().all(|h| h.error.is_none()), "{seen:?}");
        let available = labelled(
            &edge,
            "mcp_edge_upstream_server_available",
            &[("upstream", "main")],
        );
        assert_eq!(available, 1.0, "the probes succeed");
    });
}

#[test]
fn check_reports_a_missing_ca_file_at_the_line_of_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mcp-edge.yaml");
    let missing = dir.path().join("missing-ca.pem");
    std::fs::write(
        &file,
        format!(
            "version: 1\nlisteners:\n  - address: 127.0.0.1:8080\nupstreams:\n  main:\n    servers: [\"https://localhost:4443\"]\n    tls:\n      ca_file: {}\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\n",
            missing.display()
        ),
    )
    .unwrap();
    let output = check(&file);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    let expected = format!(
        "{}:8: upstreams.main.tls.ca_file: cannot read \"{}\"",
        file.display(),
        missing.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn a_reload_with_a_missing_ca_file_keeps_the_serving_generation() {
    let ca = TestCa::new("test CA");
    let upstream = TlsUpstream::start(&ca.issue(&["localhost"], "server"), None);
    let servers = https_localhost(&upstream);
    let tls = format!("    tls: {{ca_file: \"{}\"}}\n", ca.ca_file().display());
    let mut broken = String::new();
    let edge = Edge::start_yaml(|ports| {
        broken = config(ports, &servers, "    tls: {ca_file: /nonexistent/ca.pem}\n");
        config(ports, &servers, &tls)
    });
    with_log(&edge, || {
        std::fs::write(edge.config_path(), &broken).unwrap();
        edge.signal(libc::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(10);
        let document = loop {
            let document: serde_json::Value =
                serde_json::from_str(&edge.admin_get("/config").1).unwrap();
            if document["reload_attempts"] == 1 || Instant::now() >= deadline {
                break document;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(document["reload_attempts"], 1, "{document}");
        assert_eq!(document["generation"], 1, "{document}");
        let last = document["last_reload"].to_string();
        assert!(last.contains("upstreams.main.tls.ca_file"), "{last}");
        let (head, _) = post(&mut Client::connect(edge.listen), "/mcp");
        assert_eq!(head.status, 200, "the old generation still serves");
    });
}

fn check(file: &Path) -> std::process::Output {
    Command::new(binary())
        .args(["check", "-c"])
        .arg(file)
        .output()
        .expect("run mcp-edge check")
}

#[test]
fn an_https_recycle_hook_speaks_tls_with_the_group_settings() {
    let ca = TestCa::new("test CA");
    let upstream = TlsUpstream::start(&ca.issue(&["localhost"], "server"), None);
    let authority = format!("localhost:{}", upstream.addr.port());
    let tls = format!(
        "    tls: {{ca_file: \"{}\"}}\n    recycle_hook:\n      http: {{method: POST, url: \"https://{authority}/admin/recycle\"}}\n      timeout: 5\n",
        ca.ca_file().display()
    );
    let edge = Edge::start_yaml(|ports| {
        config(ports, &https_localhost(&upstream), &tls)
            + "filters:\n  - worker_recycle: {max_requests: 2, max_requests_jitter: 0, max_parked: 0, max_parked_age: 0}\n"
    });
    with_log(&edge, || {
        let mut client = Client::connect(edge.listen);
        for _ in 0..2 {
            assert_eq!(post(&mut client, "/mcp").0.status, 200);
        }
        let recycles = |result: &str| {
            labelled(
                &edge,
                "mcp_edge_upstream_recycles_total",
                &[("upstream", "main"), ("result", result)],
            )
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while recycles("ok") + recycles("error") + recycles("timeout") < 1.0 {
            assert!(Instant::now() < deadline, "no recycle within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(recycles("ok"), 1.0, "the hook succeeded over TLS");
        // The hook's connection: verified by the CA, SNI from the URL, its own Host.
        let seen = upstream.handshakes();
        let hook = seen
            .iter()
            .find(|h| h.hosts.contains(&authority))
            .unwrap_or_else(|| panic!("no request with Host {authority}: {seen:?}"));
        assert_eq!(hook.sni.as_deref(), Some("localhost"));
        assert!(hook.error.is_none(), "{seen:?}");
    });
}
