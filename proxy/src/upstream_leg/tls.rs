//! TLS towards upstream servers: the client settings of a group, built once per config
//! generation, and the endpoint of one server (where to connect, with which settings and
//! server name).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsConnector;

/// The only application protocol offered (ALPN): the leg speaks HTTP/1.1.
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// What a group's TLS client trusts and presents.
pub struct TlsClientSettings {
    /// The trust anchors server certificates are verified against.
    pub roots: RootCertStore,
    /// The client certificate chain and its key, presented when a server asks (mTLS).
    pub client_auth: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// Verify the server's certificate chain and name. `false` accepts any certificate
    /// (the handshake signatures are still checked): for tests only.
    pub verify: bool,
}

/// The TLS client of an upstream group: a rustls configuration (ring provider, TLS 1.2 and
/// 1.3, ALPN `http/1.1`) and a fingerprint of the material it was built from.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    fingerprint: [u8; 32],
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient")
            .field("fingerprint", &hex::encode(&self.fingerprint[..8]))
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// Builds the client. Fails when the client key is unusable or does not match its
    /// certificate.
    pub fn new(settings: TlsClientSettings) -> Result<Self, rustls::Error> {
        let fingerprint = fingerprint(&settings);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = if settings.verify {
            builder.with_root_certificates(settings.roots)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        };
        let mut config = match settings.client_auth {
            Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            fingerprint,
        })
    }

    pub(super) fn connector(&self) -> &TlsConnector {
        &self.connector
    }
}

/// SHA-256 over everything that decides how a handshake goes: two clients with the same
/// fingerprint are interchangeable, so their connections may share a pool.
fn fingerprint(settings: &TlsClientSettings) -> [u8; 32] {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    field(&[u8::from(settings.verify)]);
    for anchor in &settings.roots.roots {
        field(&anchor.subject);
        field(&anchor.subject_public_key_info);
        field(anchor.name_constraints.as_deref().unwrap_or_default());
    }
    field(b"client");
    if let Some((chain, key)) = &settings.client_auth {
        for cert in chain {
            field(cert);
        }
        field(key.secret_der());
    }
    hash.finalize().into()
}

/// What a pooled connection was opened to: connections are only reused for the same
/// socket address and the same TLS client and server name (`None`: plain TCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct EndpointKey {
    pub(super) socket: SocketAddr,
    pub(super) tls: Option<[u8; 16]>,
}

/// How to reach one upstream server: its socket address, and TLS settings when the
/// server is `https://`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    socket: SocketAddr,
    tls: Option<TlsTarget>,
}

/// The TLS half of an [`Endpoint`].
#[derive(Debug, Clone)]
pub(super) struct TlsTarget {
    pub(super) client: TlsClient,
    pub(super) server_name: ServerName<'static>,
    identity: [u8; 16],
}

impl Endpoint {
    /// A plain HTTP/1.1 server.
    pub fn plain(socket: SocketAddr) -> Self {
        Self { socket, tls: None }
    }

    /// A server behind TLS, verified as `server_name`. A DNS name is also sent as SNI; an
    /// IP address is not (TLS has no SNI for addresses) and is matched against the
    /// certificate's IP SANs.
    pub fn tls(socket: SocketAddr, client: TlsClient, server_name: ServerName<'static>) -> Self {
        let mut hash = Sha256::new();
        hash.update(client.fingerprint);
        hash.update(server_name.to_str().as_bytes());
        let digest: [u8; 32] = hash.finalize().into();
        let mut identity = [0u8; 16];
        identity.copy_from_slice(&digest[..16]);
        Self {
            socket,
            tls: Some(TlsTarget {
                client,
                server_name,
                identity,
            }),
        }
    }

    /// The server's socket address.
    pub fn socket(&self) -> SocketAddr {
        self.socket
    }

    /// True when connections to the server speak TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub(super) fn tls_target(&self) -> Option<&TlsTarget> {
        self.tls.as_ref()
    }

    pub(super) fn key(&self) -> EndpointKey {
        EndpointKey {
            socket: self.socket,
            tls: self.tls.as_ref().map(|tls| tls.identity),
        }
    }
}

/// The verifier of `verify: false`: any certificate chain and name is accepted; the
/// handshake signatures are still checked with the provider's algorithms.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
