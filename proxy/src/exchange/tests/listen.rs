//! A 2026-07-28 `subscriptions/listen` response stream is a standing stream: its client
//! leaving closes the upstream leg at once (no wind-down, no parking, no abandoned call),
//! a drain closes it at once, and `/streams` lists it as `listen`.

use super::fakes::{head, FakeClient, FakeUpstream, Upstream};
use super::{chain, cleanup_deadline, sse_guard, Harness};
use crate::exchange::{DrainClose, Exchange, ExchangeEnd};
use crate::mcp::CallWatch;
use http::Method;
use mcp_edge_filters::bounded::{Count, OptionalSeconds};
use mcp_edge_filters::{CleanupDeadlineSettings, FilterSpec};

/// `cleanup_deadline` with parking on: what an abandoned call would get.
fn parking_deadline() -> FilterSpec {
    FilterSpec::CleanupDeadline(CleanupDeadlineSettings {
        session_pool_cleanup_timeout: OptionalSeconds::try_from_secs_f64(5.0).unwrap(),
        task_group_cleanup_timeout: OptionalSeconds::try_from_secs_f64(2.0).unwrap(),
        park_max_per_server: Count::new(8),
        park_max_age: OptionalSeconds::try_from_secs_f64(60.0).unwrap(),
    })
}

const ACK: &[u8] = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/subscriptions/acknowledged\",\"params\":{}}\n\n";

#[tokio::test(start_paused = true)]
async fn a_listen_stream_left_by_its_client_is_closed_at_once_and_not_abandoned() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head("text/event-stream")).unwrap();
    script.send(Upstream::Chunk(ACK)).unwrap();
    let post = Method::POST;
    let filters = chain(&[parking_deadline()]);
    let env = harness.env_watching(&post, CallWatch::Listen);
    let exchange = Exchange::new(&mut client, upstream, filters, None, env);
    let started = tokio::time::Instant::now();
    let test = async {
        probe.wait_sent(2).await;
        let listed = harness.registry.describe();
        assert_eq!(listed["streams"][0]["kind"], "listen", "{listed}");
        probe.leave();
    };
    let (finished, ()) = tokio::join!(exchange.run(), test);
    assert!(
        matches!(
            finished.end,
            ExchangeEnd::ClientGone {
                wind_down: None,
                ..
            }
        ),
        "{:?}",
        finished.end
    );
    assert!(finished.park.is_none());
    assert_eq!(
        started.elapsed(),
        std::time::Duration::ZERO,
        "no wind-down wait"
    );
    assert_eq!(
        harness.cleanup("completed") + harness.cleanup("deadline_exceeded"),
        0
    );
    assert_eq!(
        harness.abandoned("subscriptions/listen", "", "deadline_exceeded"),
        0
    );
    drop(script);
}

#[tokio::test(start_paused = true)]
async fn a_silent_listen_stream_gets_keepalives() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head("text/event-stream")).unwrap();
    let post = Method::POST;
    let filters = chain(&[sse_guard(0.0, 0, 1.0)]);
    let env = harness.env_watching(&post, CallWatch::Listen);
    let exchange = Exchange::new(&mut client, upstream, filters, None, env);
    let test = async {
        probe.wait_sent(3).await;
        probe.leave();
    };
    let (_finished, ()) = tokio::join!(exchange.run(), test);
    assert_eq!(probe.body(), b": keepalive\n\n: keepalive\n\n");
    drop(script);
}

#[tokio::test(start_paused = true)]
async fn a_process_drain_closes_a_listen_stream_at_once() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head("text/event-stream")).unwrap();
    let post = Method::POST;
    let filters = chain(&[cleanup_deadline(5.0, 5.0)]);
    let env = harness.env_watching(&post, CallWatch::Listen);
    let exchange = Exchange::new(&mut client, upstream, filters, None, env);
    let test = async {
        probe.wait_sent(1).await;
        harness.process_drain.start();
    };
    let (finished, ()) = tokio::join!(exchange.run(), test);
    assert!(matches!(
        finished.end,
        ExchangeEnd::Drained(DrainClose::StandingStreamClosed)
    ));
    assert_eq!(harness.cleanup("pool_standing_stream_closed"), 1);
    drop(script);
}
