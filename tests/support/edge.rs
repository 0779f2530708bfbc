//! Spawns the real `mcp-edge` binary on ephemeral ports and waits until it is ready.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a proxy gets to become ready.
const READY_DEADLINE: Duration = Duration::from_secs(20);

/// Two distinct free loopback ports; see [`free_port`].
pub fn two_free_ports() -> (u16, u16) {
    (free_port(), free_port())
}

/// A free loopback port, chosen by the kernel, and never handed out before by this test
/// process. The port is free again when it is returned, until its user binds it: two
/// threads of one test binary (tests run side by side) could otherwise get the same port
/// in that window, and one edge would then serve the other's test.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    // Ports seen before stay bound while the kernel is asked again, so it picks another.
    let mut seen_before = Vec::new();
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local address").port();
        if handed_out.insert(port) {
            return port;
        }
        seen_before.push(listener);
    }
}

/// A running `mcp-edge` process; killed on drop.
pub struct Edge {
    child: Child,
    /// The proxy listener.
    pub listen: SocketAddr,
    /// The admin listener.
    pub admin: SocketAddr,
    /// Working directory holding the config, pid file, upgrade socket and log.
    pub dir: tempfile::TempDir,
}

impl Edge {
    /// Starts mcp-edge routing `/` to `upstream`, with `filters_yaml` (list items, indented
    /// by two spaces, or "") under `filters:`.
    pub fn start(upstream: SocketAddr, filters_yaml: &str) -> Edge {
        let filters = if filters_yaml.trim().is_empty() {
            " []\n".to_string()
        } else {
            format!("\n{filters_yaml}")
        };
        Edge::start_yaml(move |ports| {
            format!(
                "{}upstreams:\n  main:\n    servers: [\"{upstream}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\nfilters:{filters}",
                ports.preamble()
            )
        })
    }

    /// Starts mcp-edge with the config `make_config` returns for the chosen ports and
    /// working directory.
    pub fn start_yaml(make_config: impl FnOnce(&Ports) -> String) -> Edge {
        Edge::start_yaml_env(make_config, &[])
    }

    /// Like [`Edge::start_yaml`], with extra environment variables for the process.
    pub fn start_yaml_env(
        make_config: impl FnOnce(&Ports) -> String,
        env: &[(&str, &str)],
    ) -> Edge {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Edge::start_yaml_with_env(|ports| (make_config(ports), env))
    }

    /// Like [`Edge::start_yaml_env`], with environment variables that depend on the chosen
    /// ports and directory (a config that reads its listeners from the environment).
    pub fn start_yaml_with_env(
        make: impl FnOnce(&Ports) -> (String, Vec<(String, String)>),
    ) -> Edge {
        let dir = tempfile::tempdir().expect("temp dir");
        let (listen_port, admin_port) = two_free_ports();
        let ports = Ports {
            listen: SocketAddr::from(([127, 0, 0, 1], listen_port)),
            admin: SocketAddr::from(([127, 0, 0, 1], admin_port)),
            dir: dir.path().to_path_buf(),
        };
        let config_path = dir.path().join("mcp-edge.yaml");
        let (config, env) = make(&ports);
        std::fs::write(&config_path, config).expect("write config");
        // Appending, as `2>>` does: an upgrade's successor logs into the same file.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("mcp-edge.log"))
            .expect("log file");
        let child = Command::new(binary())
            .arg("-c")
            .arg(&config_path)
            .env("MCP_EDGE_LOG", "info")
            .envs(env)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn mcp-edge");
        let mut edge = Edge {
            child,
            listen: ports.listen,
            admin: ports.admin,
            dir,
        };
        edge.wait_ready();
        edge
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "mcp-edge exited with {status} before it was ready:\n{}",
                    self.log()
                );
            }
            // Pingora starts its services side by side: the admin listener answering
            // does not mean the proxy listener is bound yet.
            if admin_get(self.admin, "/readyz").is_some_and(|(status, _)| status == 200)
                && std::net::TcpStream::connect(self.listen).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "mcp-edge was not ready within {READY_DEADLINE:?}:\n{}",
            self.log()
        );
    }

    /// `http://127.0.0.1:PORT` of the proxy listener.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// `http://127.0.0.1:PORT` of the admin listener.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin)
    }

    /// GET on the admin listener: status and body.
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        admin_get(self.admin, path).unwrap_or_else(|| panic!("admin GET {path} failed"))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Path of the config file (rewrite it, then signal, to test reloads).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("mcp-edge.yaml")
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mcp-edge.log")).unwrap_or_default()
    }

    /// The log once it contains `needle` (the access log is written after the response),
    /// or as it is after 5 s.
    pub fn log_until(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.log();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on a child pid we own.
        let result = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(result, 0, "kill({signal}) failed");
    }

    /// Waits for the process to exit, up to `limit`; returns whether it did.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits until the metric reaches `at_least` (a request is counted by Pingora's logging
    /// hook, just after its response went out); returns the last value seen.
    pub fn wait_metric(&self, prefix: &str, at_least: f64) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let value = self.metric(prefix);
            if value >= at_least || Instant::now() >= deadline {
                return value;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The value of a counter or gauge line in `/metrics` (sum over matching lines whose
    /// name-and-labels start with `prefix`).
    pub fn metric(&self, prefix: &str) -> f64 {
        let (_, body) = self.admin_get("/metrics");
        body.lines()
            .filter(|line| line.starts_with(prefix))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ports and directory chosen for one proxy; [`Ports::preamble`] renders the common part of
/// a config (version, server, listeners, admin).
pub struct Ports {
    /// The proxy listener.
    pub listen: SocketAddr,
    /// The admin listener.
    pub admin: SocketAddr,
    /// The working directory.
    pub dir: PathBuf,
}

impl Ports {
    /// `version`, `server`, `listeners` and `admin`, ready to be followed by upstreams.
    pub fn preamble(&self) -> String {
        self.preamble_with("")
    }

    /// Like [`Ports::preamble`], with `extra` lines (indented by 2) added under `server:`.
    pub fn preamble_with(&self, extra_server: &str) -> String {
        let dir = self.dir.display();
        format!(
            "version: 1\nserver:\n  threads: 2\n  pid_file: {dir}/mcp-edge.pid\n  upgrade_sock: {dir}/upgrade.sock\n  grace_period_seconds: 5\n{extra_server}listeners:\n  - address: \"{}\"\nadmin:\n  address: \"{}\"\n",
            self.listen, self.admin
        )
    }
}

/// Waits until no process `pid` exists (or it is a zombie), up to `limit`.
pub fn wait_for_exit(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = state
            .rfind(')')
            .is_some_and(|end| state[end + 2..].starts_with('Z'));
        if state.is_empty() || zombie {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The built binary under test.
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_mcp-edge"))
}

/// A one-shot GET on a plain HTTP/1.1 listener: status and body, or `None` when the
/// connection fails.
pub fn admin_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}
