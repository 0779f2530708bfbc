//! Winding down: what happens upstream after the client left or was closed.

use super::fakes::{head, FakeClient, FakeUpstream, Upstream};
use super::{cancel_cap, chain, cleanup_deadline, Harness};
use crate::exchange::{Exchange, ExchangeEnd};
use http::Method;
use mcp_edge_filters::WindDownOutcome;
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_client_gone_mid_body_lets_the_upstream_finish_within_the_deadline() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head("text/event-stream")).unwrap();
    script.send(Upstream::Chunk(b"data: 1\n\n")).unwrap();
    let post = Method::POST;
    let filters = chain(&[cleanup_deadline(5.0, 5.0)]);
    let exchange = Exchange::new(&mut client, upstream, filters, None, harness.env(&post));
    let test = async {
        probe.wait_sent(2).await;
        probe.leave();
        tokio::time::sleep(Duration::from_secs(4)).await;
        script.send(Upstream::Chunk(b"data: 2\n\n")).unwrap();
        script.send(Upstream::End).unwrap();
    };
    let (finished, ()) = tokio::join!(exchange.run(), test);
    assert!(matches!(
        finished.end,
        ExchangeEnd::ClientGone {
            head_sent: true,
            wind_down: Some(WindDownOutcome::Completed)
        }
    ));
    assert_eq!(
        finished.upstream.reads, 2,
        "the late chunk was read and discarded"
    );
    assert_eq!(probe.body(), b"data: 1\n\n");
    assert_eq!(harness.cleanup("completed"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_wind_down_stops_at_the_deadline() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head("application/json")).unwrap();
    let post = Method::POST;
    let filters = chain(&[cleanup_deadline(5.0, 5.0)]);
    let exchange = Exchange::new(&mut client, upstream, filters, None, harness.env(&post));
    let mut left_at = None;
    let test = async {
        probe.wait_sent(1).await;
        left_at = Some(Instant::now());
        probe.leave();
    };
    let (finished, ()) = tokio::join!(exchange.run(), test);
    assert!(matches!(
        finished.end,
        ExchangeEnd::ClientGone {
            wind_down: Some(WindDownOutcome::DeadlineExceeded),
            ..
        }
    ));
    assert_eq!(left_at.unwrap().elapsed(), Duration::from_secs(5));
    assert_eq!(harness.cleanup("deadline_exceeded"), 1);
    drop(script);
}

#[tokio::test(start_paused = true)]
async fn a_client_gone_before_the_head_reads_the_head_in_the_wind_down() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    let post = Method::POST;
    let filters = chain(&[cleanup_deadline(5.0, 5.0)]);
    let exchange = Exchange::new(&mut client, upstream, filters, None, harness.env(&post));
    let test = async {
        probe.leave();
        tokio::time::sleep(Duration::from_secs(3)).await;
        for step in [
            head("application/json"),
            Upstream::Chunk(b"{}"),
            Upstream::End,
        ] {
            script.send(step).unwrap();
        }
    };
    let (finished, ()) = tokio::join!(exchange.run(), test);
    assert!(matches!(
        finished.end,
        ExchangeEnd::ClientGone {
            head_sent: false,
            wind_down: Some(WindDownOutcome::Completed)
        }
    ));
    assert!(probe.sent().is_empty());
    assert_eq!(finished.upstream.reads, 1);
}

#[tokio::test(start_paused = true)]
async fn cancel_cap_terminates_a_producing_upstream_at_the_cap_before_the_deadline() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head("text/event-stream")).unwrap();
    let post = Method::POST;
    let filters = chain(&[cleanup_deadline(5.0, 5.0), cancel_cap(3)]);
    let exchange = Exchange::new(&mut client, upstream, filters, None, harness.env(&post));
    let test = async {
        probe.wait_sent(1).await;
        probe.leave();
        // A spinning peer: more than the cap, at once.
        for _ in 0..10 {
            script.send(Upstream::Chunk(b"data: spin\n\n")).unwrap();
        }
    };
    let started = Instant::now();
    let (finished, ()) = tokio::join!(exchange.run(), test);
    assert!(matches!(
        finished.end,
        ExchangeEnd::ClientGone {
            wind_down: Some(WindDownOutcome::CapExceeded),
            ..
        }
    ));
    // One read relayed (its write found the client gone), then exactly the cap.
    assert_eq!(finished.upstream.reads, 1 + 3);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(harness.metrics.cancel_cap_terminated_total.get(), 1);
    assert_eq!(harness.cleanup("cap_exceeded"), 1);
}

#[tokio::test(start_paused = true)]
async fn without_cleanup_deadline_the_upstream_is_closed_at_once() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head("text/event-stream")).unwrap();
    let get = Method::GET;
    let exchange = Exchange::new(&mut client, upstream, chain(&[]), None, harness.env(&get));
    let test = async {
        probe.wait_sent(1).await;
        probe.leave();
    };
    let started = Instant::now();
    let (finished, ()) = tokio::join!(exchange.run(), test);
    assert!(matches!(
        finished.end,
        ExchangeEnd::ClientGone {
            wind_down: Some(WindDownOutcome::ClosedAtOnce),
            ..
        }
    ));
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(finished.upstream.reads, 0);
    drop(script);
}
