//! Mixed MCP load over several edges, for the replica tests: stateless (2026-07-28) tool
//! calls, session clients that start a new session when theirs is lost, and calls
//! abandoned after their first progress event. Every failure and every lost session is
//! an event with a mark, so a test can ask what happened during one phase.

use super::mcp_raw::{abandon_stateless_call, try_add, try_post};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// The pause of each client between its requests (keeps a server's request period well
/// above the time one recycle takes); the abandoning client waits ten times as long.
pub const PACE: Duration = Duration::from_millis(100);

/// What the load saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Stateless calls answered.
    pub stateless: u64,
    /// Session calls answered.
    pub session_calls: u64,
    /// Calls started and abandoned.
    pub abandoned: u64,
    /// Sessions lost to a recycle of their server.
    pub sessions_lost: u64,
    /// Every other failure.
    pub failures: Vec<String>,
}

/// Stateless calls, session clients and abandoned calls spread over the replicas. Every
/// failure and every session lost (a 404 after its server was recycled: the client
/// starts a new one, as the MCP spec says) is an event.
pub struct MixedLoad {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
    events: Arc<Mutex<Vec<String>>>,
    report: Arc<Mutex<LoadReport>>,
}

impl MixedLoad {
    /// Starts the clients, spread over `edges`.
    pub fn start(edges: Vec<SocketAddr>) -> MixedLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let events = Arc::new(Mutex::new(Vec::new()));
        let report = Arc::new(Mutex::new(LoadReport::default()));
        let mut threads = Vec::new();
        // Four stateless callers, two session clients, one caller that abandons.
        for (worker, kind) in [0, 0, 0, 0, 1, 1, 2].into_iter().enumerate() {
            let (edges, stop) = (edges.clone(), stop.clone());
            let (events, report) = (events.clone(), report.clone());
            threads.push(thread::spawn(move || {
                let fail = |what: String| {
                    events.lock().unwrap().push(what.clone());
                    report.lock().unwrap().failures.push(what);
                };
                let mut session: Option<String> = None;
                let mut call = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    call += 1;
                    let edge = edges[(worker + call as usize) % edges.len()];
                    match kind {
                        0 => match stateless_add(edge, call) {
                            Ok(()) => report.lock().unwrap().stateless += 1,
                            Err(e) => fail(e),
                        },
                        1 => match &session {
                            None => match start_session(edge) {
                                Ok(id) => session = Some(id),
                                Err(e) => fail(e),
                            },
                            Some(id) => match try_add(edge, id, call, 1) {
                                Ok(()) => report.lock().unwrap().session_calls += 1,
                                // Its server was recycled: the session is gone (404),
                                // or the call in flight ended with the old worker. The
                                // client starts a new session, as the MCP spec says.
                                Err(e) => {
                                    report.lock().unwrap().sessions_lost += 1;
                                    events.lock().unwrap().push(format!("session lost: {e}"));
                                    session = None;
                                }
                            },
                        },
                        _ => match abandon_stateless_call(edge, "forever") {
                            Ok(()) => report.lock().unwrap().abandoned += 1,
                            Err(e) => fail(e),
                        },
                    }
                    // The client's pace (not a synchronisation).
                    thread::sleep(if kind == 2 { PACE * 10 } else { PACE });
                }
            }));
        }
        MixedLoad {
            stop,
            threads,
            events,
            report,
        }
    }

    /// How many events so far (a mark for [`MixedLoad::events_since`]).
    pub fn events(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    /// The events after `mark`.
    pub fn events_since(&self, mark: usize) -> Vec<String> {
        self.events.lock().unwrap()[mark..].to_vec()
    }

    /// Stops the clients and returns what they saw.
    pub fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
        std::mem::take(&mut *self.report.lock().unwrap())
    }
}

/// A stateless (2026-07-28) `tools/call add`: `Ok` when it answers the sum.
pub fn stateless_add(edge: SocketAddr, call: u32) -> Result<(), String> {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{call},"method":"tools/call","params":{{"name":"add","arguments":{{"a":{call},"b":1}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{{"name":"raw","version":"0"}},"io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}"#
    );
    let headers = [
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "add"),
    ];
    let response = try_post(edge, &headers, body.as_bytes())?;
    let sum = format!(r#""text":"{}""#, call + 1);
    if response.starts_with("HTTP/1.1 200") && response.contains(&sum) {
        Ok(())
    } else {
        Err(format!(
            "stateless add via {edge}: {}",
            response.chars().take(300).collect::<String>()
        ))
    }
}

/// `initialize` through `edge`: the session id.
pub fn start_session(edge: SocketAddr) -> Result<String, String> {
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;
    let response = try_post(edge, &[], body)?;
    response
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("mcp-session-id")
                .then(|| value.trim().to_owned())
        })
        .ok_or_else(|| {
            format!(
                "initialize via {edge}: {}",
                response.chars().take(300).collect::<String>()
            )
        })
}
