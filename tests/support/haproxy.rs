//! HAProxy (Debian's `haproxy`) in TCP mode in front of mcp-edge replicas, as a cloud load
//! balancer or a Kubernetes Service would be: round robin per connection, health checks
//! on each replica's admin `/readyz`, retries that redispatch a refused connection, and a
//! runtime API on a Unix socket to put replicas in and out.
//!
//! The backend has [`SLOTS`] server slots; those without a replica are in maintenance.

use super::python::KillOnDrop;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Server slots of the backend: room to start a replacement beside every replica.
pub const SLOTS: usize = 6;

/// A replica as HAProxy reaches it: its proxy listener and its admin listener.
#[derive(Debug, Clone, Copy)]
pub struct Replica {
    /// The proxy listener.
    pub listen: SocketAddr,
    /// The admin listener (`/readyz`).
    pub admin: SocketAddr,
}

/// A running HAProxy; killed on drop.
pub struct HaProxy {
    _child: KillOnDrop,
    /// The frontend clients connect to.
    pub front: SocketAddr,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

fn binary() -> PathBuf {
    ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .expect("HAProxy is not installed (Debian package `haproxy`; .ci/run installs it)")
}

impl HaProxy {
    /// Starts HAProxy with `replicas` in the first slots, and waits until each is up.
    pub fn start(replicas: &[Replica]) -> HaProxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let front = SocketAddr::from(([127, 0, 0, 1], super::edge::free_port()));
        let socket = dir.path().join("admin.sock");
        let mut servers = String::new();
        for slot in 0..SLOTS {
            let line = match replicas.get(slot) {
                Some(r) => format!(
                    "  server r{slot} {} check port {}\n",
                    r.listen,
                    r.admin.port()
                ),
                None => format!("  server r{slot} 127.0.0.1:1 check port 1 disabled\n"),
            };
            servers.push_str(&line);
        }
        let config = format!(
            "global\n  stats socket {} level admin\n  maxconn 4000\n\
             defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n  \
             retries 3\n  option redispatch 1\n\
             frontend edge\n  bind {front}\n  default_backend replicas\n\
             backend replicas\n  balance roundrobin\n  option httpchk\n  \
             http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host replica\n  \
             http-check expect status 200\n  default-server inter 100ms fall 1 rise 1\n{servers}",
            socket.display()
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).expect("write haproxy.cfg");
        let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("log");
        let child = Command::new(binary())
            .args(["-db", "-f"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn haproxy");
        let haproxy = HaProxy {
            _child: KillOnDrop(child),
            front,
            socket,
            _dir: dir,
        };
        for slot in 0..replicas.len() {
            haproxy.wait_status(slot, "UP");
        }
        haproxy
    }

    /// Sends one runtime API command; returns the answer.
    pub fn command(&self, command: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stream = loop {
            match UnixStream::connect(&self.socket) {
                Ok(stream) => break stream,
                Err(error) if Instant::now() > deadline => panic!("haproxy socket: {error}"),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        stream
            .write_all(format!("{command}\n").as_bytes())
            .expect("write to the haproxy socket");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    }

    /// The status HAProxy shows for `slot` (`UP`, `DOWN`, `MAINT`...).
    pub fn status(&self, slot: usize) -> String {
        let stat = self.command("show stat");
        let mut lines = stat.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let column = header
            .iter()
            .position(|h| *h == "status")
            .expect("a status column");
        let name = format!("r{slot}");
        lines
            .map(|line| line.split(',').collect::<Vec<_>>())
            .find(|fields| {
                fields.first() == Some(&"replicas") && fields.get(1) == Some(&name.as_str())
            })
            .and_then(|fields| fields.get(column).map(|s| s.to_string()))
            .unwrap_or_default()
    }

    /// Waits until `slot`'s status starts with `wanted`.
    pub fn wait_status(&self, slot: usize, wanted: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let status = self.status(slot);
            if status.starts_with(wanted) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "slot r{slot} is {status:?}, not {wanted}, after 15 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Puts `replica` into the (maintenance) slot `slot` and waits until its health check
    /// passes.
    pub fn add(&self, slot: usize, replica: Replica) {
        let server = format!("replicas/r{slot}");
        let port = replica.listen.port();
        self.command(&format!("set server {server} addr 127.0.0.1 port {port}"));
        self.command(&format!(
            "set server {server} check-port {}",
            replica.admin.port()
        ));
        self.command(&format!("set server {server} state ready"));
        self.wait_status(slot, "UP");
    }

    /// Takes slot `slot` out: no new connection reaches it; open ones go on.
    pub fn drain(&self, slot: usize) {
        self.command(&format!("set server replicas/r{slot} state maint"));
        self.wait_status(slot, "MAINT");
    }
}
