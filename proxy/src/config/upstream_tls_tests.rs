//! Tests of `https://` servers and `upstreams.<name>.tls`, through the whole loading
//! pipeline, with certificates made by rcgen.

use super::super::tests::{errors, load};
use super::parse_server;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

/// A config with one group `gw` of `servers`, and `tls` lines (indented by 4) under it.
fn config(servers: &str, tls: &str) -> String {
    format!(
        "version: 1\nlisteners:\n  - address: 127.0.0.1:8080\nupstreams:\n  gw:\n    servers: [{servers}]\n{tls}routes:\n  - match: {{path_prefix: /}}\n    upstream: gw\n"
    )
}

/// A CA, and a client certificate it signed, written as PEM files in a temp dir.
struct Material {
    dir: tempfile::TempDir,
}

impl Material {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client = CertificateParams::new(vec!["client.test".to_owned()])
            .unwrap()
            .signed_by(&client_key, &ca, &ca_key)
            .unwrap();
        let other_key = KeyPair::generate().unwrap();
        for (name, pem) in [
            ("ca.pem", ca.pem()),
            ("client.pem", client.pem()),
            ("client.key", client_key.serialize_pem()),
            ("other.key", other_key.serialize_pem()),
        ] {
            std::fs::write(dir.path().join(name), pem).unwrap();
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

#[test]
fn server_forms() {
    let parsed = parse_server("https://mcp.example.com").unwrap();
    assert!(parsed.tls);
    assert_eq!(parsed.authority, "mcp.example.com:443");
    assert_eq!(parsed.host, "mcp.example.com");
    let parsed = parse_server("https://[::1]:8443").unwrap();
    assert_eq!(
        (parsed.authority.as_str(), parsed.host.as_str()),
        ("[::1]:8443", "::1")
    );
    let parsed = parse_server("https://[::1]").unwrap();
    assert_eq!(parsed.authority, "[::1]:443");
    let parsed = parse_server("http://gw.internal").unwrap();
    assert!(!parsed.tls);
    assert_eq!(parsed.authority, "gw.internal:80");
    let parsed = parse_server("127.0.0.1:4444").unwrap();
    assert!(!parsed.tls);
    assert_eq!(parsed.authority, "127.0.0.1:4444");
    for bad in [
        "ftp://host:21",
        "https://host:443/mcp",
        "https://user@host:443",
        "https://",
        "https://host:0",
        "host",
    ] {
        assert!(parse_server(bad).is_err(), "{bad}");
    }
}

#[test]
fn https_servers_load_with_system_roots_or_a_ca_file() {
    let loaded = load(&config("\"https://127.0.0.1:4443\", 127.0.0.1:4444", "")).unwrap();
    assert!(loaded.upstream_tls.client("gw").is_some());
    let material = Material::new();
    let tls = format!(
        "    tls:\n      ca_file: {}\n      client_cert: {}\n      client_key: {}\n      server_name: mcp.test\n",
        material.path("ca.pem"),
        material.path("client.pem"),
        material.path("client.key")
    );
    let loaded = load(&config("\"https://127.0.0.1:4443\"", &tls)).unwrap();
    assert!(loaded.upstream_tls.client("gw").is_some());
    let plain = load(&config("127.0.0.1:4444", "")).unwrap();
    assert!(plain.upstream_tls.client("gw").is_none());
}

#[test]
fn a_missing_ca_file_is_an_error_at_its_key() {
    let tls = "    tls:\n      ca_file: /nonexistent/ca.pem\n";
    let found = errors(&config("\"https://localhost:4443\"", tls));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("8: upstreams.gw.tls.ca_file: cannot read \"/nonexistent/ca.pem\""),
        "{found:?}"
    );
}

#[test]
fn files_that_hold_the_wrong_thing_are_errors() {
    let material = Material::new();
    let tls = format!(
        "    tls:\n      ca_file: {}\n      client_cert: {}\n      client_key: {}\n",
        material.path("client.key"),
        material.path("client.key"),
        material.path("ca.pem")
    );
    let found = errors(&config("\"https://localhost:4443\"", &tls));
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found[0].starts_with("8: upstreams.gw.tls.ca_file: "),
        "{found:?}"
    );
    assert!(found[0].contains("holds no PEM certificate"), "{found:?}");
    assert!(
        found[1].starts_with("9: upstreams.gw.tls.client_cert: "),
        "{found:?}"
    );
    assert!(
        found[2].starts_with("10: upstreams.gw.tls.client_key: "),
        "{found:?}"
    );
    assert!(found[2].contains("holds no PEM private key"), "{found:?}");
}

#[test]
fn a_client_key_must_fit_its_certificate() {
    let material = Material::new();
    let tls = format!(
        "    tls:\n      client_cert: {}\n      client_key: {}\n",
        material.path("client.pem"),
        material.path("other.key")
    );
    let found = errors(&config("\"https://localhost:4443\"", &tls));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("9: upstreams.gw.tls.client_key: the key does not fit client_cert"),
        "{found:?}"
    );
}

#[test]
fn half_a_client_identity_and_tls_without_https_are_errors() {
    let material = Material::new();
    let tls = format!(
        "    tls:\n      client_cert: {}\n",
        material.path("client.pem")
    );
    let found = errors(&config("\"https://localhost:4443\"", &tls));
    assert_eq!(
        found,
        ["8: upstreams.gw.tls.client_cert: client_cert needs client_key"]
    );
    let found = errors(&config("127.0.0.1:4444", "    tls: {verify: false}\n"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("7: upstreams.gw.tls: `tls` applies to https:// servers"),
        "{found:?}"
    );
    let found = errors(&config("\"ftp://localhost:21\"", ""));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("6: upstreams.gw.servers[0]: unsupported scheme"),
        "{found:?}"
    );
}

#[test]
fn a_bad_server_name_is_an_error() {
    let found = errors(&config(
        "\"https://localhost:4443\"",
        "    tls: {server_name: \"not a name\"}\n",
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("7: upstreams.gw.tls.server_name: "),
        "{found:?}"
    );
}
