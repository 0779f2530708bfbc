//! Relaying: whole responses, flushed heads, keepalives, filters closing a stream,
//! upstream failures and process drains.

use super::fakes::{head, FakeClient, FakeUpstream, Sent, Upstream};
use super::{chain, cleanup_deadline, sse_guard, Harness};
use crate::exchange::{DrainClose, Exchange, ExchangeEnd};
use bytes::Bytes;
use http::Method;
use mcp_edge_filters::{CloseReason, WindDownOutcome};
use std::time::Duration;
use tokio::time::Instant;

const SSE: &str = "text/event-stream";

#[tokio::test(start_paused = true)]
async fn a_json_answer_is_relayed_whole_and_its_connection_reused() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    for step in [
        head("application/json"),
        Upstream::Chunk(b"{\"id\":1}"),
        Upstream::End,
    ] {
        script.send(step).unwrap();
    }
    let post = Method::POST;
    let finished = Exchange::new(&mut client, upstream, chain(&[]), None, harness.env(&post))
        .run()
        .await;
    assert!(matches!(finished.end, ExchangeEnd::Complete));
    assert!(finished.upstream_reusable());
    assert_eq!(
        probe.sent(),
        vec![
            Sent::Head { status: 200 },
            Sent::Body(Bytes::from_static(b"{\"id\":1}")),
            Sent::Finish,
        ]
    );
    assert!(
        harness.registry.is_empty(),
        "a JSON answer is no event stream"
    );
}

#[tokio::test(start_paused = true)]
async fn an_event_stream_head_is_written_before_any_event() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head(SSE)).unwrap();
    let get = Method::GET;
    let exchange = Exchange::new(&mut client, upstream, chain(&[]), None, harness.env(&get));
    let test = async {
        probe.wait_sent(1).await;
        assert_eq!(probe.sent(), vec![Sent::Head { status: 200 }]);
        assert_eq!(harness.registry.len(), 1, "listed in /streams while open");
        assert_eq!(harness.metrics.sse_streams_active.get(), 1);
        assert_eq!(harness.server.active_streams(), 1);
        script.send(Upstream::Chunk(b"data: 1\n\n")).unwrap();
        script.send(Upstream::End).unwrap();
    };
    let (finished, ()) = tokio::join!(exchange.run(), test);
    assert!(matches!(finished.end, ExchangeEnd::Complete));
    assert_eq!(probe.body(), b"data: 1\n\n");
    assert!(harness.registry.is_empty());
    assert_eq!(harness.metrics.sse_streams_active.get(), 0);
    assert_eq!(harness.server.active_streams(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_silent_event_stream_gets_keepalives_that_are_not_events() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head(SSE)).unwrap();
    let get = Method::GET;
    // rapid_yield_max 1: two keepalives counted as events would close the stream.
    let filters = chain(&[sse_guard(5.0, 1, 15.0)]);
    let exchange = Exchange::new(&mut client, upstream, filters, None, harness.env(&get));
    let started = Instant::now();
    let test = async {
        probe.wait_sent(2).await;
        assert_eq!(started.elapsed(), Duration::from_secs(15));
        probe.wait_sent(3).await;
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        script.send(Upstream::End).unwrap();
    };
    let (finished, ()) = tokio::join!(exchange.run(), test);
    assert!(matches!(finished.end, ExchangeEnd::Complete));
    assert_eq!(probe.body(), b": keepalive\n\n: keepalive\n\n");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_closed_for_send_timeout() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head(SSE)).unwrap();
    let get = Method::GET;
    let filters = chain(&[sse_guard(2.0, 0, 0.0), cleanup_deadline(0.0, 0.0)]);
    let exchange = Exchange::new(&mut client, upstream, filters, None, harness.env(&get));
    let started = Instant::now();
    let test = async {
        probe.wait_sent(1).await;
        probe.stop_reading();
        script.send(Upstream::Chunk(b"data: 1\n\n")).unwrap();
    };
    let (finished, ()) = tokio::join!(exchange.run(), test);
    assert!(matches!(
        finished.end,
        ExchangeEnd::Closed {
            reason: CloseReason::SendTimeout,
            wind_down: Some(WindDownOutcome::ClosedAtOnce)
        }
    ));
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(probe.sent().last(), Some(&Sent::Abort));
    assert_eq!(harness.guard_closed("send_timeout"), 1);
    assert_eq!(harness.cleanup("closed_at_once"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_runaway_stream_is_closed_for_rapid_yield_before_the_extra_event_is_sent() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head(SSE)).unwrap();
    for _ in 0..4 {
        script.send(Upstream::Chunk(b"data: x\n\n")).unwrap();
    }
    let post = Method::POST;
    let filters = chain(&[sse_guard(5.0, 3, 0.0)]);
    let finished = Exchange::new(&mut client, upstream, filters, None, harness.env(&post))
        .run()
        .await;
    assert!(matches!(
        finished.end,
        ExchangeEnd::Closed {
            reason: CloseReason::RapidYield,
            ..
        }
    ));
    assert_eq!(probe.body(), b"data: x\n\ndata: x\n\ndata: x\n\n");
    assert_eq!(harness.guard_closed("rapid_yield"), 1);
    assert!(!finished.upstream_reusable());
}

#[tokio::test(start_paused = true)]
async fn an_upstream_failing_before_its_head_leaves_the_client_to_be_answered() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(Upstream::Fail("connection reset")).unwrap();
    let post = Method::POST;
    let finished = Exchange::new(&mut client, upstream, chain(&[]), None, harness.env(&post))
        .run()
        .await;
    assert!(matches!(finished.end, ExchangeEnd::NoResponse(ref e) if e == "connection reset"));
    assert!(probe.sent().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_upstream_failing_mid_stream_breaks_the_response() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    for step in [
        head(SSE),
        Upstream::Chunk(b"data: 1\n\n"),
        Upstream::Fail("reset"),
    ] {
        script.send(step).unwrap();
    }
    let get = Method::GET;
    let finished = Exchange::new(&mut client, upstream, chain(&[]), None, harness.env(&get))
        .run()
        .await;
    assert!(matches!(finished.end, ExchangeEnd::UpstreamBroken(_)));
    assert!(!finished.upstream_reusable());
    assert_eq!(probe.body(), b"data: 1\n\n");
    assert!(
        !probe.sent().contains(&Sent::Finish),
        "a broken body is not ended cleanly"
    );
}

#[tokio::test(start_paused = true)]
async fn a_process_drain_closes_a_standing_stream_after_the_retry_hint() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head(SSE)).unwrap();
    let get = Method::GET;
    let filters = chain(&[cleanup_deadline(5.0, 5.0)]);
    let exchange = Exchange::new(&mut client, upstream, filters, None, harness.env(&get));
    let test = async {
        probe.wait_sent(1).await;
        harness.process_drain.start();
    };
    let (finished, ()) = tokio::join!(exchange.run(), test);
    assert!(matches!(
        finished.end,
        ExchangeEnd::Drained(DrainClose::StandingStreamClosed)
    ));
    assert_eq!(probe.body(), b"retry: 1000\n\n");
    assert_eq!(probe.sent().last(), Some(&Sent::Finish));
    assert_eq!(harness.cleanup("pool_standing_stream_closed"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_retiring_server_bounds_an_answer_stream_by_the_pool_deadline() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head(SSE)).unwrap();
    let post = Method::POST;
    let filters = chain(&[cleanup_deadline(5.0, 3.0)]);
    let exchange = Exchange::new(&mut client, upstream, filters, None, harness.env(&post));
    let mut drained_at = None;
    let test = async {
        probe.wait_sent(1).await;
        harness.retirement.start();
        drained_at = Some(Instant::now());
        probe.wait_sent(2).await;
        // Still relaying within the deadline.
        script.send(Upstream::Chunk(b"data: progress\n\n")).unwrap();
        probe.wait_sent(3).await;
    };
    let (finished, ()) = tokio::join!(exchange.run(), test);
    assert!(matches!(
        finished.end,
        ExchangeEnd::Drained(DrainClose::DeadlineExceeded)
    ));
    assert_eq!(drained_at.unwrap().elapsed(), Duration::from_secs(3));
    assert_eq!(probe.body(), b"retry: 1000\n\ndata: progress\n\n");
    assert_eq!(harness.cleanup("pool_deadline_exceeded"), 1);
}
