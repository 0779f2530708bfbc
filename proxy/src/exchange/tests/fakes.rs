//! Fake legs for the state-machine tests: an upstream scripted through a channel and a
//! client that records what it was sent and can be made to leave or to stop reading.

use super::super::legs::{ClientLeg, ClientWriteError, Departure, Head, UpstreamLeg};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use mcp_edge_filters::StreamPlan;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};

/// What the scripted upstream does next.
pub enum Upstream {
    Head(Head),
    Chunk(&'static [u8]),
    End,
    Fail(&'static str),
}

/// A head with `content_type`.
pub fn head(content_type: &'static str) -> Upstream {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    Upstream::Head(Head {
        status: StatusCode::OK,
        headers,
    })
}

/// An upstream leg that does what the test sends it, and waits for ever when told nothing.
pub struct FakeUpstream {
    script: mpsc::UnboundedReceiver<Upstream>,
    read_timeout: Option<Duration>,
    ended: bool,
    /// Body reads performed (relay and wind-down alike).
    pub reads: u64,
}

impl FakeUpstream {
    pub fn new() -> (Self, mpsc::UnboundedSender<Upstream>) {
        let (send, script) = mpsc::unbounded_channel();
        let upstream = Self {
            script,
            read_timeout: None,
            ended: false,
            reads: 0,
        };
        (upstream, send)
    }

    /// The next scripted step, bounded by the read timeout. `recv` is cancel-safe.
    async fn next(&mut self) -> Result<Upstream, String> {
        let step = async {
            match self.script.recv().await {
                Some(step) => step,
                // A dropped script is an upstream that says nothing more.
                None => std::future::pending().await,
            }
        };
        match self.read_timeout {
            Some(limit) => tokio::time::timeout(limit, step)
                .await
                .map_err(|_| "read timeout".to_string()),
            None => Ok(step.await),
        }
    }
}

impl UpstreamLeg for FakeUpstream {
    type Error = String;

    async fn read_head(&mut self) -> Result<Head, String> {
        match self.next().await? {
            Upstream::Head(head) => Ok(head),
            Upstream::Fail(reason) => Err(reason.to_string()),
            _ => Err("script: a body step before the head".to_string()),
        }
    }

    async fn read_body(&mut self) -> Result<Option<Bytes>, String> {
        match self.next().await? {
            Upstream::Chunk(bytes) => {
                self.reads += 1;
                Ok(Some(Bytes::from_static(bytes)))
            }
            Upstream::End => {
                self.ended = true;
                Ok(None)
            }
            Upstream::Fail(reason) => Err(reason.to_string()),
            Upstream::Head(_) => Err("script: a second head".to_string()),
        }
    }

    fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    fn is_reusable(&self) -> bool {
        self.ended
    }
}

/// What the fake client was sent, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Head { status: u16 },
    Body(Bytes),
    Finish,
    Abort,
}

/// The shared side of a fake client: what it received, and switches for the test.
#[derive(Clone)]
pub struct ClientProbe {
    sent: Arc<Mutex<Vec<Sent>>>,
    wrote: Arc<Notify>,
    leave: Arc<watch::Sender<Option<Departure>>>,
    stuck: Arc<watch::Sender<bool>>,
}

impl ClientProbe {
    /// Everything sent so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    /// Body bytes sent so far, concatenated.
    pub fn body(&self) -> Vec<u8> {
        self.sent()
            .into_iter()
            .filter_map(|sent| match sent {
                Sent::Body(bytes) => Some(bytes.to_vec()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Waits until at least `count` things were sent.
    pub async fn wait_sent(&self, count: usize) {
        loop {
            let notified = self.wrote.notified();
            if self.sent.lock().unwrap().len() >= count {
                return;
            }
            notified.await;
        }
    }

    /// The client closes its connection.
    pub fn leave(&self) {
        self.leave.send_replace(Some(Departure::Gone));
    }

    /// The kernel gives up on the client (its socket's user timeout, `ETIMEDOUT`): reads
    /// and writes fail as timed out from now on.
    pub fn time_out(&self) {
        self.leave.send_replace(Some(Departure::TimedOut));
    }

    /// The client stops reading: writes never complete from now on.
    pub fn stop_reading(&self) {
        self.stuck.send_replace(true);
    }
}

/// A client leg recording into a [`ClientProbe`].
pub struct FakeClient {
    probe: ClientProbe,
    departure: watch::Receiver<Option<Departure>>,
    stuck: watch::Receiver<bool>,
    send_timeout: Option<Duration>,
}

impl FakeClient {
    pub fn new() -> (Self, ClientProbe) {
        let (leave, departure) = watch::channel(None);
        let (stuck_tx, stuck) = watch::channel(false);
        let probe = ClientProbe {
            sent: Arc::default(),
            wrote: Arc::default(),
            leave: Arc::new(leave),
            stuck: Arc::new(stuck_tx),
        };
        let client = Self {
            probe: probe.clone(),
            departure,
            stuck,
            send_timeout: None,
        };
        (client, probe)
    }

    fn record(&self, sent: Sent) {
        self.probe.sent.lock().unwrap().push(sent);
        self.probe.wrote.notify_waiters();
    }

    /// A write: fails when the client left, never completes when it is stuck (unless the
    /// plan's send timeout cuts it).
    async fn write(&mut self, sent: Sent) -> Result<(), ClientWriteError> {
        match *self.departure.borrow() {
            Some(Departure::TimedOut) => return Err(ClientWriteError::TimedOut),
            Some(_) => return Err(ClientWriteError::Failed),
            None => {}
        }
        if *self.stuck.borrow() {
            return match self.send_timeout {
                Some(limit) => {
                    tokio::time::sleep(limit).await;
                    Err(ClientWriteError::TimedOut)
                }
                None => std::future::pending().await,
            };
        }
        self.record(sent);
        Ok(())
    }
}

impl ClientLeg for FakeClient {
    fn apply_plan(&mut self, plan: &StreamPlan) {
        self.send_timeout = plan.send_timeout;
    }

    async fn write_head(&mut self, head: Head) -> Result<(), ClientWriteError> {
        let sent = Sent::Head {
            status: head.status.as_u16(),
        };
        self.write(sent).await
    }

    async fn write_body(&mut self, chunk: Bytes) -> Result<(), ClientWriteError> {
        self.write(Sent::Body(chunk)).await
    }

    async fn finish(&mut self) -> Result<(), ClientWriteError> {
        self.write(Sent::Finish).await
    }

    async fn departure(&mut self) -> Departure {
        let departure = match self.departure.wait_for(Option::is_some).await {
            Ok(departure) => *departure,
            Err(_) => None,
        };
        match departure {
            Some(departure) => departure,
            None => std::future::pending().await,
        }
    }

    async fn abort(&mut self) {
        self.record(Sent::Abort);
    }
}
