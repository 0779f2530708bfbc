//! Only calls abandoned in flight are wound down and counted: a client that closes with
//! nothing in flight has its upstream leg closed at once.

use super::fakes::{head, FakeClient, FakeUpstream, Upstream};
use super::{chain, cleanup_deadline, Harness};
use crate::exchange::{Exchange, ExchangeEnd};
use crate::mcp::{CallWatch, LegacySessions, PendingCall};
use http::Method;
use mcp_edge_filters::WindDownOutcome;
use std::sync::Arc;

fn call(id: &str, tool: &str) -> PendingCall {
    PendingCall {
        id: id.into(),
        method: "tools/call",
        tool: Arc::from(tool),
    }
}

fn calls(pending: Vec<PendingCall>) -> CallWatch {
    CallWatch::Calls {
        pending,
        scanner: None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_leaving_after_its_answer_is_not_an_abandoned_call() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head("text/event-stream")).unwrap();
    script
        .send(Upstream::Chunk(
            b"data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n",
        ))
        .unwrap();
    let post = Method::POST;
    let filters = chain(&[cleanup_deadline(5.0, 5.0)]);
    let env = harness.env_watching(&post, calls(vec![call("7", "search")]));
    let exchange = Exchange::new(&mut client, upstream, filters, None, env);
    let test = async {
        probe.wait_sent(2).await;
        probe.leave();
    };
    let (finished, ()) = tokio::join!(exchange.run(), test);
    assert!(
        matches!(
            finished.end,
            ExchangeEnd::ClientGone {
                head_sent: true,
                wind_down: None
            }
        ),
        "{:?}",
        finished.end
    );
    assert_eq!(finished.end.label(), "client_closed");
    assert_eq!(
        harness.cleanup("completed") + harness.cleanup("deadline_exceeded"),
        0
    );
    assert_eq!(
        harness.abandoned("tools/call", "search", "deadline_exceeded"),
        0
    );
    drop(script);
}

#[tokio::test(start_paused = true)]
async fn a_client_leaving_before_its_answer_abandons_the_call_and_it_is_counted_by_tool() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head("text/event-stream")).unwrap();
    script
        .send(Upstream::Chunk(
            b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n",
        ))
        .unwrap();
    let post = Method::POST;
    let filters = chain(&[cleanup_deadline(5.0, 5.0)]);
    let env = harness.env_watching(&post, calls(vec![call("7", "search")]));
    let exchange = Exchange::new(&mut client, upstream, filters, None, env);
    let test = async {
        probe.wait_sent(2).await;
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
    assert_eq!(harness.cleanup("deadline_exceeded"), 1);
    assert_eq!(
        harness.abandoned("tools/call", "search", "deadline_exceeded"),
        1
    );
    drop(script);
}

#[tokio::test(start_paused = true)]
async fn a_standing_stream_closed_at_the_end_of_its_session_is_not_wound_down() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head("text/event-stream")).unwrap();
    script
        .send(Upstream::Chunk(
            b"event: endpoint\ndata: /messages/?session_id=s1\n\n",
        ))
        .unwrap();
    let get = Method::GET;
    let filters = chain(&[cleanup_deadline(5.0, 5.0)]);
    let sessions = Arc::new(LegacySessions::default());
    let env = harness.env_watching(&get, CallWatch::standing(sessions.clone()));
    let exchange = Exchange::new(&mut client, upstream, filters, None, env);
    let test = async {
        probe.wait_sent(2).await;
        assert_eq!(sessions.len(), 1, "the session is registered");
        probe.leave();
    };
    let (finished, ()) = tokio::join!(exchange.run(), test);
    assert!(matches!(
        finished.end,
        ExchangeEnd::ClientGone {
            wind_down: None,
            ..
        }
    ));
    assert_eq!(harness.cleanup("deadline_exceeded"), 0);
    assert!(sessions.is_empty(), "the session is unregistered");
    drop(script);
}

#[tokio::test(start_paused = true)]
async fn a_legacy_session_left_with_a_call_in_flight_winds_the_stream_down() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head("text/event-stream")).unwrap();
    script
        .send(Upstream::Chunk(
            b"event: endpoint\ndata: /messages/?session_id=s1\n\n",
        ))
        .unwrap();
    let get = Method::GET;
    let filters = chain(&[cleanup_deadline(5.0, 5.0)]);
    let sessions = Arc::new(LegacySessions::default());
    let env = harness.env_watching(&get, CallWatch::standing(sessions.clone()));
    let exchange = Exchange::new(&mut client, upstream, filters, None, env);
    let test = async {
        probe.wait_sent(2).await;
        sessions
            .expect("s1", vec![call("1", "fast"), call("2", "forever")])
            .unwrap();
        script
            .send(Upstream::Chunk(
                b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
            ))
            .unwrap();
        probe.wait_sent(3).await;
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
    assert_eq!(
        harness.abandoned("tools/call", "forever", "deadline_exceeded"),
        1
    );
    assert_eq!(
        harness.abandoned("tools/call", "fast", "deadline_exceeded"),
        0
    );
    drop(script);
}
