//! How Pingora's proxy reaches one upstream server: an [`HttpPeer`] built once per server
//! and config generation, with the group's protocol, TLS material and timeouts.

use crate::config::model::{UpstreamConfig, UpstreamProtocol};
use crate::config::{read_chain, read_key, ServerAddress};
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::utils::tls::{CertKey, WrappedX509};
use std::net::SocketAddr;
use std::sync::Arc;

/// The peer of one server, cloned for each request that goes to it.
#[derive(Debug, Clone)]
pub struct ProxyPeer(HttpPeer);

impl ProxyPeer {
    /// A fresh copy of the peer for one request.
    pub fn for_request(&self) -> Box<HttpPeer> {
        Box::new(self.0.clone())
    }
}

/// What every peer of a group shares: protocol, timeouts and TLS material (read once per
/// generation).
pub(crate) struct PeerSettings<'a> {
    config: &'a UpstreamConfig,
    ca: Option<Arc<[WrappedX509]>>,
    client_cert_key: Option<Arc<CertKey>>,
}

impl<'a> PeerSettings<'a> {
    /// The settings of a group; reads its `tls.ca_file` and client certificate when it
    /// has `https://` servers. The files were checked when the config was loaded, so an
    /// error here means one changed since.
    pub fn of(config: &'a UpstreamConfig) -> Result<Self, String> {
        let mut settings = Self {
            config,
            ca: None,
            client_cert_key: None,
        };
        let any_https = config
            .servers
            .iter()
            .any(|server| crate::config::parse_server(server).is_ok_and(|s| s.tls));
        let Some(tls) = config.tls.as_ref().filter(|_| any_https) else {
            return Ok(settings);
        };
        if let Some(file) = &tls.ca_file {
            let ca: Vec<WrappedX509> = read_chain(file)?
                .into_iter()
                .map(|der| WrappedX509::new(der.to_vec(), pingora_core::utils::tls::parse_x509))
                .collect();
            settings.ca = Some(ca.into());
        }
        if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
            let chain = read_chain(cert)?.iter().map(|der| der.to_vec()).collect();
            let key = read_key(key)?.secret_der().to_vec();
            settings.client_cert_key = Some(Arc::new(CertKey::new(chain, key)));
        }
        Ok(settings)
    }

    /// The peer of `server`, resolved to `socket`.
    pub fn peer(&self, server: &ServerAddress, socket: SocketAddr) -> ProxyPeer {
        let tls = self.config.tls.as_ref();
        let sni = tls
            .and_then(|tls| tls.server_name.clone())
            .unwrap_or_else(|| server.host.clone());
        let mut peer = HttpPeer::new(socket, server.tls, sni);
        let options = &mut peer.options;
        options.connection_timeout = self.config.connect_timeout.get();
        options.read_timeout = self.config.read_timeout.get();
        options.write_timeout = self.config.write_timeout.get();
        match self.config.protocol {
            UpstreamProtocol::Http1 => options.set_http_version(1, 1),
            // ALPN offers h2 first and HTTP/1.1 second.
            UpstreamProtocol::H2 => options.set_http_version(2, 1),
            // Clear text with HTTP/2 as the least version: prior knowledge.
            UpstreamProtocol::H2c => options.set_http_version(2, 2),
        }
        if server.tls {
            let verify = tls.is_none_or(|tls| tls.verify);
            options.verify_cert = verify;
            options.verify_hostname = verify;
            options.ca = self.ca.clone();
            peer.client_cert_key = self.client_cert_key.clone();
        }
        ProxyPeer(peer)
    }
}
