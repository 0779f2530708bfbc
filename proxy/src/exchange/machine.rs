//! The exchange state machine: one request's response, from the upstream's head to the
//! end of both legs.
//!
//! ```text
//!   AwaitingHead ──head──▶ Relaying ──upstream ends──▶ Done(Complete)
//!        │                  │  │  └─process drains──▶ Relaying (until the pool deadline)
//!        │ client gone      │  │                          └─deadline / standing──▶ Done(Drained)
//!        ▼                  │  └─upstream error──▶ Done(UpstreamBroken)
//!   WindingDown ◀───────────┘ client gone, send_timeout, rapid_yield
//!        └─completed / deadline / cap──▶ Done(ClientGone | Closed)
//!                   └─deadline, upstream still working, parking on──▶ Parked
//! ```
//!
//! Each state is a method that runs until the next transition and returns the next state;
//! the filters decide in their hooks (plan, chunk verdicts, drain plan, drain verdicts).
//! Parked is the one state run outside the request: [`Finished::park`] hands the upstream
//! leg to [`crate::parking`], which keeps it open in a task of its own.

use super::cached_answer;
use super::encoded::opaque_event_stream;
use super::end::{DrainClose, ExchangeEnd};
use super::event_stream::{stream_kind, EventStream, StreamTracking};
use super::events::ExchangeEvents;
use super::filtered_answer;
use super::legs::{ClientLeg, ClientWriteError, Departure, Head, UpstreamLeg};
use super::small_body::{read_ahead, ReadAhead};
use crate::affinity::ResponseRewriter;
use crate::drain::DrainSignal;
use crate::hop_by_hop::strip_hop_by_hop;
use crate::list_cache::{AnswerFill, ListChangeWatch};
use crate::mcp::CallWatch;
use crate::parking::ParkTicket;
use crate::policy::event_filter::EventFilter;
use crate::policy::AnswerFilter;
use bytes::Bytes;
use mcp_edge_filters::{BodyChunk, CloseReason, ResponseHead, StreamChain, StreamPlan, Verdict};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};

mod abandon;

/// The SSE comment written on a silent stream. Keepalives are not events.
const KEEPALIVE_COMMENT: &[u8] = b": keepalive\n\n";
/// The reconnection hint sent to event-stream clients when the process drains.
const RETRY_HINT: &[u8] = b"retry: 1000\n\n";

/// What an exchange needs besides its two legs and its chain.
pub struct ExchangeEnv<'a> {
    /// Where the exchange reports what happens (the layer around counts it).
    pub events: &'a dyn ExchangeEvents,
    /// Where an event stream is registered.
    pub tracking: StreamTracking<'a>,
    /// The request method: a GET answered with an event stream is a standing stream.
    pub method: &'a http::Method,
    /// Whether the process is draining.
    pub process_drain: DrainSignal,
    /// Whether the stream's server is being retired (removed by a reload).
    pub server_retirement: DrainSignal,
    /// Longest upstream silence on an event stream.
    pub sse_idle_timeout: Option<Duration>,
    /// Whether a call is in flight: what tells an abandoned call from a client that
    /// simply closed.
    pub calls: CallWatch,
    /// Held until the upstream's response head arrives (or the exchange ends), then
    /// dropped: a standing stream's session turn, so that the session's next request
    /// reaches the server after the stream exists (`service::session_order`).
    pub held_until_head: Option<Box<dyn Send>>,
    /// The filter of a list answer, when the route hides tools, prompts or resources.
    pub answer_filter: Option<AnswerFilter>,
    /// Where a cacheable answer is stored, when the request missed the route's cache.
    pub answer_fill: Option<AnswerFill>,
    /// Finds the change notifications of an event stream, when its group's lists are
    /// cached.
    pub list_changes: Option<ListChangeWatch>,
}

/// An exchange that ended: how, and the upstream leg, for the caller to reuse, park or
/// close.
pub struct Finished<U: UpstreamLeg> {
    /// How it ended.
    pub end: ExchangeEnd<U::Error>,
    /// The upstream leg, in whatever state the end left it.
    pub upstream: U,
    /// The stream's chain. Ended, except after [`ExchangeEnd::NoResponse`]: nothing reached
    /// the client and no hook past the request ran, so the caller may retry the request
    /// with the same chain, or drop it (which ends it as an upstream error).
    pub chain: StreamChain,
    /// Set when the wind-down parked the exchange: the caller parks `upstream` with it.
    pub park: Option<ParkTicket>,
}

impl<U: UpstreamLeg> Finished<U> {
    /// True when the upstream connection may go back to the pool.
    pub fn upstream_reusable(&self) -> bool {
        matches!(self.end, ExchangeEnd::Complete) && self.upstream.is_reusable()
    }
}

/// The states of an exchange.
enum State<E> {
    /// Waiting for the upstream's response head, watching the client.
    AwaitingHead,
    /// Forwarding the body.
    Relaying(Relay),
    /// The client is gone (or was closed): the upstream exchange is wound down.
    WindingDown(Abandoned),
    /// Ended.
    Done(ExchangeEnd<E>),
}

/// Per-body state of [`State::Relaying`].
struct Relay {
    plan: StreamPlan,
    event_stream: Option<EventStream>,
    pool_drain: ProcessDrain,
    last_activity: Instant,
    /// Body chunks read ahead of the head, relayed first.
    ahead: VecDeque<Bytes>,
    /// Whether the body ended within what was read ahead.
    ahead_ended: bool,
}

/// Where a relaying stream stands with respect to a process (or server) drain.
#[derive(Clone, Copy)]
enum ProcessDrain {
    /// Not draining: watch for it (event streams only).
    Watching,
    /// Draining, with no bound of the stream's own (the process grace period applies).
    Unbounded,
    /// Draining until this instant.
    Until(Instant),
}

/// How an exchange came to be abandoned.
struct Abandoned {
    /// Whether the upstream's head was read (the wind-down then reads only the body).
    upstream_head_read: bool,
    /// Whether the client got the response head.
    client_head_sent: bool,
    /// The filter that closed the stream, if one did; `None` when the client left.
    reason: Option<CloseReason>,
}

/// One exchange: the two legs, the stream's filter chain, and its surroundings.
pub struct Exchange<'a, C, U> {
    client: &'a mut C,
    upstream: U,
    chain: StreamChain,
    rewriter: Option<ResponseRewriter>,
    env: ExchangeEnv<'a>,
    /// Cleared when the client sent something unexpected: it is not watched any more.
    watch_client: bool,
    /// Set when the wind-down parks the exchange.
    park: Option<ParkTicket>,
    /// Where an event stream's list answer stands ([`ExchangeEnv::answer_filter`]).
    events: EventFilter,
}

impl<'a, C: ClientLeg, U: UpstreamLeg> Exchange<'a, C, U> {
    /// An exchange whose request was sent on `upstream`.
    pub fn new(
        client: &'a mut C,
        upstream: U,
        chain: StreamChain,
        rewriter: Option<ResponseRewriter>,
        env: ExchangeEnv<'a>,
    ) -> Self {
        Self {
            client,
            upstream,
            chain,
            rewriter,
            env,
            watch_client: true,
            park: None,
            events: EventFilter::default(),
        }
    }

    /// Runs the exchange to its end and tells the filters how it ended.
    pub async fn run(mut self) -> Finished<U> {
        let mut state = State::AwaitingHead;
        loop {
            state = match state {
                State::AwaitingHead => self.await_head().await,
                State::Relaying(relay) => self.relay(relay).await,
                State::WindingDown(abandoned) => self.wind_down(abandoned).await,
                State::Done(end) => {
                    if !matches!(end, ExchangeEnd::NoResponse(_)) {
                        self.chain.end(end.stream_end());
                    }
                    return Finished {
                        end,
                        upstream: self.upstream,
                        chain: self.chain,
                        park: self.park,
                    };
                }
            };
        }
    }

    /// [`State::AwaitingHead`]: reads the head, racing the client's departure, and sends
    /// it on through the filters.
    async fn await_head(&mut self) -> State<U::Error> {
        let head = tokio::select! {
            biased;
            head = self.upstream.read_head() => head,
            departure = self.client.departure(), if self.watch_client => match departure {
                // No plan is applied yet: a timed-out connection is a departure here.
                Departure::Gone | Departure::TimedOut => {
                    return State::WindingDown(Abandoned {
                        upstream_head_read: false,
                        client_head_sent: false,
                        reason: None,
                    })
                }
                Departure::Unexpected => {
                    self.watch_client = false;
                    self.upstream.read_head().await
                }
            },
        };
        drop(self.env.held_until_head.take());
        match head {
            Ok(head) => self.start_body(head).await,
            Err(error) => State::Done(ExchangeEnd::NoResponse(error)),
        }
    }

    /// Runs the header hooks, writes the head, and moves to [`State::Relaying`].
    async fn start_body(&mut self, mut head: Head) -> State<U::Error> {
        strip_hop_by_hop(&mut head.headers);
        let opaque = opaque_event_stream(&head, &self.env, &mut self.upstream);
        let view = ResponseHead {
            status: head.status.as_u16(),
            content_type: head.content_type().filter(|_| !opaque),
        };
        let is_event_stream = view.is_event_stream();
        self.env.calls.on_head(is_event_stream);
        let plan = self.chain.on_response_headers(&view);
        if let Some(rewriter) = self.rewriter.as_mut() {
            rewriter.rewrite_head(&mut head.headers, is_event_stream);
        }
        let event_stream = is_event_stream.then(|| {
            self.upstream.set_read_timeout(self.env.sse_idle_timeout);
            let kind = stream_kind(self.env.method, &self.env.calls);
            EventStream::open(&self.env.tracking, self.env.method.as_str(), kind)
        });
        let fill = self.env.answer_fill.take();
        let ahead = match (is_event_stream, self.env.answer_filter.as_ref(), &fill) {
            (true, _, _) => ReadAhead::default(),
            (false, Some(filter), _) if filtered_answer::applies(&head) => {
                let (upstream, fill) = (&mut self.upstream, fill.as_ref());
                filtered_answer::read_filtered(upstream, &mut head, filter, fill).await
            }
            (false, _, Some(fill)) if cached_answer::applies(&head) => {
                cached_answer::read_and_store(&mut self.upstream, &mut head, fill).await
            }
            (false, _, _) => read_ahead(&mut self.upstream, &mut head),
        };
        self.client.apply_plan(&plan);
        if let Err(error) = self.client.write_head(head).await {
            let mut abandoned = self.write_failed(error, &plan);
            abandoned.client_head_sent = false;
            return State::WindingDown(abandoned);
        }
        if let Some(error) = ahead.error {
            return State::Done(ExchangeEnd::UpstreamBroken(error));
        }
        let pool_drain = ProcessDrain::Watching;
        State::Relaying(Relay {
            plan,
            event_stream,
            pool_drain,
            last_activity: Instant::now(),
            ahead: ahead.chunks,
            ahead_ended: ahead.ended,
        })
    }

    /// [`State::Relaying`]: forwards the body until the upstream ends, fails, the client
    /// leaves, a filter closes the stream or a drain ends it.
    async fn relay(&mut self, mut relay: Relay) -> State<U::Error> {
        let keepalive = relay
            .plan
            .keepalive_interval
            .filter(|_| relay.event_stream.is_some());
        loop {
            let wake = self.next_wake(&mut relay, keepalive).await;
            match wake {
                Wake::Upstream(Ok(Some(chunk))) => {
                    relay.last_activity = Instant::now();
                    if let Some(next) = self.forward_chunk(&mut relay, chunk).await {
                        return next;
                    }
                }
                Wake::Upstream(Ok(None)) => {
                    // The upstream is done; a client that fails to take the last bytes
                    // changes nothing upstream.
                    let held = self.events.finish();
                    if !held.is_empty() {
                        let _ = self.client.write_body(held).await;
                    }
                    let _ = self.client.finish().await;
                    return State::Done(ExchangeEnd::Complete);
                }
                Wake::Upstream(Err(error)) => {
                    return State::Done(ExchangeEnd::UpstreamBroken(error));
                }
                Wake::Client(Departure::Gone) => {
                    return State::WindingDown(Abandoned {
                        upstream_head_read: true,
                        client_head_sent: true,
                        reason: None,
                    });
                }
                Wake::Client(Departure::TimedOut) => {
                    // The socket's user timeout is the plan's send_timeout: the kernel
                    // found the stuck reader before a write did.
                    return State::WindingDown(
                        self.write_failed(ClientWriteError::TimedOut, &relay.plan),
                    );
                }
                Wake::Client(Departure::Unexpected) => self.watch_client = false,
                Wake::Keepalive => {
                    relay.last_activity = Instant::now();
                    let comment = Bytes::from_static(KEEPALIVE_COMMENT);
                    if let Err(error) = self.client.write_body(comment).await {
                        return State::WindingDown(self.write_failed(error, &relay.plan));
                    }
                }
                Wake::Draining => {
                    if let Some(next) = self.begin_process_drain(&mut relay).await {
                        return next;
                    }
                }
                Wake::DrainDeadline => {
                    return self.close_for_drain(DrainClose::DeadlineExceeded).await;
                }
            }
        }
    }

    /// Waits for what wakes the relay next: a chunk read ahead, then the upstream, the
    /// client leaving, a drain, or the one timer (the drain's deadline or the keepalive).
    async fn next_wake(
        &mut self,
        relay: &mut Relay,
        keepalive: Option<Duration>,
    ) -> Wake<U::Error> {
        let keepalive_at = keepalive.map(|interval| relay.last_activity + interval);
        let watch_drain =
            relay.event_stream.is_some() && matches!(relay.pool_drain, ProcessDrain::Watching);
        let drain_deadline = match relay.pool_drain {
            ProcessDrain::Until(at) => Some(at),
            ProcessDrain::Watching | ProcessDrain::Unbounded => None,
        };
        // One timer for both deadlines: each pending timer is held by every idle stream.
        let timer = match (drain_deadline, keepalive_at) {
            (Some(drain), Some(keepalive)) => Some(drain.min(keepalive)),
            (drain, keepalive) => drain.or(keepalive),
        };
        let read_ahead = match relay.ahead.pop_front() {
            Some(chunk) => Some(Wake::Upstream(Ok(Some(chunk)))),
            None if std::mem::take(&mut relay.ahead_ended) => Some(Wake::Upstream(Ok(None))),
            None => None,
        };
        if let Some(wake) = read_ahead {
            return wake;
        }
        tokio::select! {
            biased;
            read = self.upstream.read_body() => Wake::Upstream(read),
            departure = self.client.departure(), if self.watch_client => Wake::Client(departure),
            _ = self.env.process_drain.draining(), if watch_drain => Wake::Draining,
            _ = self.env.server_retirement.draining(), if watch_drain => Wake::Draining,
            _ = sleep_until_some(timer), if timer.is_some() => {
                if drain_deadline.is_some_and(|at| at <= Instant::now()) {
                    Wake::DrainDeadline
                } else {
                    Wake::Keepalive
                }
            }
        }
    }

    /// Shows one chunk to the filters and forwards it. `Some(state)` ends the relay.
    async fn forward_chunk(&mut self, relay: &mut Relay, chunk: Bytes) -> Option<State<U::Error>> {
        let events = relay
            .event_stream
            .as_mut()
            .map_or(0, |stream| stream.record(&chunk));
        if let (Some(_), Some(changes)) = (&relay.event_stream, &mut self.env.list_changes) {
            changes.scan(&chunk);
        }
        let view = BodyChunk {
            bytes: &chunk,
            events,
        };
        if let Verdict::Close(reason) = self.chain.on_response_chunk(&view, relay.last_activity) {
            return Some(State::WindingDown(Abandoned {
                upstream_head_read: true,
                client_head_sent: true,
                reason: Some(reason),
            }));
        }
        let chunk = match self.rewriter.as_mut() {
            Some(rewriter) => rewriter.rewrite_body(chunk),
            None => chunk,
        };
        let chunk = match (&self.env.answer_filter, &relay.event_stream) {
            (Some(filter), Some(_)) => self.events.feed(chunk, filter),
            _ => chunk,
        };
        if chunk.is_empty() {
            return None;
        }
        let watched = self.env.calls.wants_bytes().then(|| chunk.clone());
        match self.client.write_body(chunk).await {
            Ok(()) => {
                if let Some(relayed) = watched {
                    self.env.calls.on_relayed(&relayed);
                }
                None
            }
            Err(error) => Some(State::WindingDown(self.write_failed(error, &relay.plan))),
        }
    }

    /// The process (or the stream's server) started to drain: tells the client when to
    /// reconnect, then closes a standing stream (GET or `subscriptions/listen`) at once,
    /// or bounds one answering a request by `session_pool_cleanup_timeout`. `Some(state)`
    /// ends the relay.
    async fn begin_process_drain(&mut self, relay: &mut Relay) -> Option<State<U::Error>> {
        let hint = Bytes::from_static(RETRY_HINT);
        if let Err(error) = self.client.write_body(hint).await {
            return Some(State::WindingDown(self.write_failed(error, &relay.plan)));
        }
        if stream_kind(self.env.method, &self.env.calls).is_standing() {
            return Some(self.close_for_drain(DrainClose::StandingStreamClosed).await);
        }
        relay.pool_drain = match relay.plan.process_drain_deadline {
            None => ProcessDrain::Unbounded,
            Some(grace) if grace.is_zero() => {
                return Some(self.close_for_drain(DrainClose::DeadlineExceeded).await)
            }
            Some(grace) => ProcessDrain::Until(Instant::now() + grace),
        };
        None
    }

    /// Ends an event stream cleanly because of a drain.
    async fn close_for_drain(&mut self, close: DrainClose) -> State<U::Error> {
        tracing::info!(
            outcome = close.label(),
            "closed an event stream for the drain"
        );
        self.env.events.drain_closed(close);
        let _ = self.client.finish().await;
        State::Done(ExchangeEnd::Drained(close))
    }
}

/// What woke the relay.
enum Wake<E> {
    Upstream(Result<Option<Bytes>, E>),
    Client(Departure),
    Keepalive,
    Draining,
    DrainDeadline,
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}
