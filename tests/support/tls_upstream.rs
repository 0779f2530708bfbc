//! A test CA (rcgen) and an HTTPS/1.1 upstream (rustls, one thread per connection) that
//! records what each handshake showed: SNI, ALPN, the client certificate, failures.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};

/// A certificate authority made for one test, its PEM file in a temp dir.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
    dir: tempfile::TempDir,
}

/// A certificate issued by a [`TestCa`], with its key, also written as PEM files.
pub struct Issued {
    /// The certificate (DER).
    pub cert: CertificateDer<'static>,
    /// Its private key (DER).
    pub key: PrivateKeyDer<'static>,
    /// The certificate's PEM file.
    pub cert_file: PathBuf,
    /// The key's PEM file.
    pub key_file: PathBuf,
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).expect("write CA");
        TestCa { cert, key, dir }
    }

    /// The PEM file of the CA certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The CA certificate as the only root of a store.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.der().clone()).expect("CA as root");
        roots
    }

    /// Issues a certificate for `names` (DNS names or IP addresses), written as
    /// `<file_stem>.pem` and `<file_stem>.key`.
    pub fn issue(&self, names: &[&str], file_stem: &str) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, file_stem);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("leaf certificate");
        let cert_file = self.dir.path().join(format!("{file_stem}.pem"));
        let key_file = self.dir.path().join(format!("{file_stem}.key"));
        std::fs::write(&cert_file, cert.pem()).expect("write certificate");
        std::fs::write(&key_file, key.serialize_pem()).expect("write key");
        Issued {
            cert: cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            cert_file,
            key_file,
        }
    }
}

/// What one TLS connection to a [`TlsUpstream`] showed.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    /// The SNI the client sent.
    pub sni: Option<String>,
    /// The application protocol agreed (ALPN).
    pub alpn: Option<String>,
    /// Whether the client presented a certificate.
    pub client_cert: bool,
    /// Why the handshake failed, when it did.
    pub error: Option<String>,
    /// Requests served on the connection.
    pub requests: usize,
    /// The `Host` header of each request.
    pub hosts: Vec<String>,
}

/// An HTTPS upstream on the first address `localhost` resolves to. Every request gets 200
/// with the body `{"ok":true}`; the connection stays open (keep-alive).
pub struct TlsUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    handshakes: Arc<Mutex<Vec<Handshake>>>,
}

impl TlsUpstream {
    /// Serves with `server` as its certificate. With `client_ca`, it requires a client
    /// certificate issued by that CA.
    pub fn start(server: &Issued, client_ca: Option<&TestCa>) -> TlsUpstream {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("protocol versions");
        let builder = match client_ca {
            Some(ca) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()), provider)
                    .build()
                    .expect("client verifier"),
            ),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(vec![server.cert.clone()], server.key.clone_key())
            .expect("server certificate");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        let listener = TcpListener::bind((localhost_ip(), 0)).expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let record = handshakes.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let index = {
                    let mut all = record.lock().unwrap();
                    all.push(Handshake::default());
                    all.len() - 1
                };
                let (config, record) = (config.clone(), record.clone());
                std::thread::spawn(move || serve(stream, config, &record, index));
            }
        });
        TlsUpstream { addr, handshakes }
    }

    /// Every connection accepted so far, in order.
    pub fn handshakes(&self) -> Vec<Handshake> {
        self.handshakes.lock().unwrap().clone()
    }

    /// Waits up to 10 s until `ready` holds for the handshakes, and returns them.
    pub fn wait_for(&self, ready: impl Fn(&[Handshake]) -> bool) -> Vec<Handshake> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let seen = self.handshakes();
            if ready(&seen) || std::time::Instant::now() >= deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The first address `localhost` resolves to, as the proxy resolves it.
pub fn localhost_ip() -> IpAddr {
    ("localhost", 0)
        .to_socket_addrs()
        .expect("resolve localhost")
        .next()
        .expect("localhost has an address")
        .ip()
}

/// One connection: the handshake, then requests until the client closes.
fn serve(
    mut tcp: TcpStream,
    config: Arc<ServerConfig>,
    record: &Mutex<Vec<Handshake>>,
    index: usize,
) {
    let update = |change: &dyn Fn(&mut Handshake)| change(&mut record.lock().unwrap()[index]);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let mut tls = ServerConnection::new(config).expect("server connection");
    while tls.is_handshaking() {
        if let Err(error) = tls.complete_io(&mut tcp) {
            let sni = tls.server_name().map(str::to_owned);
            update(&|h| {
                h.error = Some(error.to_string());
                h.sni = sni.clone();
            });
            // The alert is sent; wait for the client to close rather than resetting a
            // connection it may still be writing to (a reset could discard the alert).
            let _ = tcp.shutdown(Shutdown::Write);
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = std::io::copy(&mut tcp, &mut std::io::sink());
            return;
        }
    }
    let sni = tls.server_name().map(str::to_owned);
    let alpn = tls
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let client_cert = tls.peer_certificates().is_some_and(|c| !c.is_empty());
    update(&|h| {
        h.sni = sni.clone();
        h.alpn = alpn.clone();
        h.client_cert = client_cert;
    });
    let mut stream = BufReader::new(StreamOwned::new(tls, tcp));
    while let Some(host) = read_request(&mut stream) {
        update(&|h| {
            h.requests += 1;
            h.hosts.push(host.clone());
        });
        let body = br#"{"ok":true}"#;
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let inner = stream.get_mut();
        if inner.write_all(head.as_bytes()).is_err()
            || inner.write_all(body).is_err()
            || inner.flush().is_err()
        {
            return;
        }
    }
}

/// Reads one request (head and `content-length` body); its `Host`, or `None` at the end.
fn read_request<R: BufRead>(reader: &mut R) -> Option<String> {
    let mut host = String::new();
    let mut length = 0usize;
    let mut first = true;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            if first {
                continue;
            }
            break;
        }
        first = false;
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "host" => host = value.trim().to_owned(),
                "content-length" => length = value.trim().parse().ok()?,
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(host)
}
