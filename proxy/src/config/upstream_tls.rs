//! Upstream TLS: the `https://` form of `upstreams.<name>.servers`, the group's `tls:`
//! settings, and the TLS clients built from them when a config is loaded.
//!
//! The certificate files are read and parsed once, by the loading pipeline (so
//! `mcp-edge check` reports a bad file, at the line of its key); the generation built
//! from the config uses the clients made then, and a reload that fails keeps the old
//! generation and its clients.

use super::diagnostics::{NodePath, Problem, Seg};
use super::model::Config;
use crate::upstream_leg::{TlsClient, TlsClientSettings};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::RootCertStore;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// TLS towards the `https://` servers of a group. Without it, `https://` servers are
/// verified against the system's root certificates, with the host of the URL as the
/// server name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsConfig {
    /// PEM file of the CA certificates that server certificates must chain to, instead
    /// of the system's root certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM file of the client certificate chain presented to servers that ask for one
    /// (mutual TLS). Needs `client_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// PEM file of the private key of `client_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// The name sent as SNI and verified against the server certificates, instead of the
    /// host of each server's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub server_name: Option<String>,
    /// Verify the server certificates. `false` accepts any certificate, which lets anyone
    /// on the path read and change the traffic: for tests only.
    #[serde(default = "verify_default")]
    pub verify: bool,
}

impl Default for UpstreamTlsConfig {
    fn default() -> Self {
        Self {
            ca_file: None,
            client_cert: None,
            client_key: None,
            server_name: None,
            verify: true,
        }
    }
}

fn verify_default() -> bool {
    true
}

/// One entry of `servers`, split: `host:port`, `http://host[:port]` or
/// `https://host[:port]` (the port defaults to 80 and 443).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerAddress {
    /// True for `https://`.
    pub tls: bool,
    /// `host:port`, the port filled in, as it is resolved.
    pub authority: String,
    /// The host alone (an IPv6 address without its brackets): the default TLS server
    /// name.
    pub host: String,
}

/// Splits and checks one entry of `servers`.
pub(crate) fn parse_server(text: &str) -> Result<ServerAddress, String> {
    let (tls, rest) = match text.split_once("://") {
        None => (false, text),
        Some(("https", rest)) => (true, rest),
        Some(("http", rest)) => (false, rest),
        Some((scheme, _)) => {
            return Err(format!(
                "unsupported scheme `{scheme}://` in \"{text}\" (use http:// or https://)"
            ))
        }
    };
    if rest.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "a server is host:port or scheme://host:port, without a path, query or user, found \"{text}\""
        ));
    }
    let has_port = match rest.rsplit_once(':') {
        Some((host, _)) => !host.is_empty() && (!host.starts_with('[') || host.ends_with(']')),
        None => false,
    };
    let authority = match (has_port, text.contains("://")) {
        (true, _) | (false, false) => rest.to_owned(),
        (false, true) => format!("{rest}:{}", if tls { 443 } else { 80 }),
    };
    super::checks::host_port(&authority)?;
    let host = authority
        .rsplit_once(':')
        .map_or(authority.as_str(), |(host, _)| host);
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok(ServerAddress {
        tls,
        authority,
        host,
    })
}

/// The TLS clients of a config's groups, by group name: one for every group with an
/// `https://` server or an `https://` recycle hook.
#[derive(Debug, Clone, Default)]
pub struct UpstreamTlsSet {
    clients: BTreeMap<String, TlsClient>,
}

impl UpstreamTlsSet {
    /// The TLS client of group `name`, if it has `https://` servers.
    pub fn client(&self, name: &str) -> Option<&TlsClient> {
        self.clients.get(name)
    }
}

/// Builds the TLS client of every group with an `https://` server or recycle hook, reading each
/// certificate and key file once. Problems name the `tls` key at fault.
pub(crate) fn build(config: &Config) -> (UpstreamTlsSet, Vec<Problem>) {
    let mut set = UpstreamTlsSet::default();
    let mut problems = Vec::new();
    let mut system_roots: Option<RootCertStore> = None;
    for (name, upstream) in &config.upstreams {
        let base: NodePath = vec![key("upstreams"), key(name), key("tls")];
        // An `https://` recycle hook uses the group's TLS settings too.
        let any_https = upstream
            .servers
            .iter()
            .any(|server| parse_server(server).is_ok_and(|s| s.tls))
            || upstream
                .recycle_hook
                .as_ref()
                .is_some_and(|hook| super::hook::wants_tls(hook, &upstream.servers));
        if !any_https {
            if upstream.tls.is_some() {
                problems.push(Problem::at(
                    base,
                    "`tls` applies to https:// servers, and none of `servers` is one (write https://host:port)",
                ));
            }
            continue;
        }
        let tls = upstream.tls.clone().unwrap_or_default();
        let before = problems.len();
        let mut report = |field: &str, message: String| {
            let mut at = base.clone();
            at.push(key(field));
            problems.push(Problem::at(at, message));
        };
        if let Some(name) = &tls.server_name {
            if let Err(error) = ServerName::try_from(name.as_str()) {
                report(
                    "server_name",
                    format!("\"{name}\" is not a DNS name or IP address: {error}"),
                );
            }
        }
        let roots = match &tls.ca_file {
            Some(file) => read_roots(file).unwrap_or_else(|message| {
                report("ca_file", message);
                RootCertStore::empty()
            }),
            None => system_roots.get_or_insert_with(load_system_roots).clone(),
        };
        let client_auth = match (&tls.client_cert, &tls.client_key) {
            (None, None) => None,
            (Some(_), None) => {
                report("client_cert", "client_cert needs client_key".to_owned());
                None
            }
            (None, Some(_)) => {
                report("client_key", "client_key needs client_cert".to_owned());
                None
            }
            (Some(cert), Some(key)) => {
                let chain = read_chain(cert).map_err(|message| report("client_cert", message));
                let key = read_key(key).map_err(|message| report("client_key", message));
                chain.ok().zip(key.ok())
            }
        };
        if problems.len() > before {
            continue;
        }
        let with_client_auth = client_auth.is_some();
        match TlsClient::new(TlsClientSettings {
            roots,
            client_auth,
            verify: tls.verify,
        }) {
            Ok(client) => {
                set.clients.insert(name.clone(), client);
            }
            Err(error) if with_client_auth => {
                let mut at = base.clone();
                at.push(key("client_key"));
                problems.push(Problem::at(
                    at,
                    format!("the key does not fit client_cert: {error}"),
                ));
            }
            Err(error) => {
                problems.push(Problem::at(base, format!("unusable TLS settings: {error}")))
            }
        }
    }
    (set, problems)
}

fn key(name: &str) -> Seg {
    Seg::Key(name.to_owned())
}

fn read(file: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(file).map_err(|error| format!("cannot read \"{}\": {error}", file.display()))
}

/// Every certificate of a PEM file; at least one.
pub(crate) fn read_chain(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(file)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("\"{}\" is not a valid PEM file: {error}", file.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "\"{}\" holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            file.display()
        ));
    }
    Ok(chain)
}

/// The CA certificates of a PEM file, as trust anchors.
pub(crate) fn read_roots(file: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for (index, cert) in read_chain(file)?.into_iter().enumerate() {
        roots.add(cert).map_err(|error| {
            format!(
                "certificate {} of \"{}\" is not a usable CA certificate: {error}",
                index + 1,
                file.display()
            )
        })?;
    }
    Ok(roots)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub(crate) fn read_key(file: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read(file)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => format!(
            "\"{}\" holds no PEM private key (-----BEGIN PRIVATE KEY-----)",
            file.display()
        ),
        error => format!("\"{}\" is not a valid PEM file: {error}", file.display()),
    })
}

/// The system's root certificates (`SSL_CERT_FILE` and `SSL_CERT_DIR` override where
/// they are read from). None found is not a config error, only a warning: every
/// handshake will then fail verification, counted as `tls_error`.
pub(crate) fn load_system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    match rustls_native_certs::load_native_certs() {
        Ok(certs) => {
            let (added, ignored) = roots.add_parsable_certificates(certs);
            if ignored > 0 {
                tracing::debug!(added, ignored, "skipped unusable system root certificates");
            }
        }
        Err(error) => tracing::warn!(%error, "cannot load the system root certificates"),
    }
    if roots.is_empty() {
        tracing::warn!(
            "no system root certificates found: https:// upstreams without tls.ca_file will fail verification"
        );
    }
    roots
}

#[cfg(test)]
#[path = "upstream_tls_tests.rs"]
mod tests;
