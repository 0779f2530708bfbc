//! Clients that time out: how a timed-out client connection is classified and counted.

use super::fakes::{head, FakeClient, FakeUpstream, Upstream};
use super::{chain, cleanup_deadline, sse_guard, Harness};
use crate::exchange::{Exchange, ExchangeEnd};
use http::Method;
use mcp_edge_filters::{CloseReason, WindDownOutcome};

#[tokio::test(start_paused = true)]
async fn a_stuck_reader_the_kernel_gives_up_on_is_closed_for_send_timeout() {
    // Every write completed; the relay waits on the upstream when the socket's user
    // timeout (sse_guard's send_timeout) fails the connection.
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head("text/event-stream")).unwrap();
    let get = Method::GET;
    let filters = chain(&[sse_guard(2.0, 0, 0.0), cleanup_deadline(0.0, 0.0)]);
    let exchange = Exchange::new(&mut client, upstream, filters, None, harness.env(&get));
    let test = async {
        probe.wait_sent(1).await;
        probe.time_out();
    };
    let (finished, ()) = tokio::join!(exchange.run(), test);
    assert!(matches!(
        finished.end,
        ExchangeEnd::Closed {
            reason: CloseReason::SendTimeout,
            wind_down: Some(WindDownOutcome::ClosedAtOnce)
        }
    ));
    assert_eq!(harness.guard_closed("send_timeout"), 1);
    assert_eq!(harness.client_closed("send_timeout"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_json_write_that_times_out_winds_down_as_a_departure_counted_as_send_timeout() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head("application/json")).unwrap();
    let post = Method::POST;
    let filters = chain(&[sse_guard(2.0, 0, 0.0), cleanup_deadline(0.0, 0.0)]);
    let exchange = Exchange::new(&mut client, upstream, filters, None, harness.env(&post));
    let test = async {
        probe.wait_sent(1).await;
        probe.time_out();
        script
            .send(Upstream::Chunk(b"{\"jsonrpc\":\"2.0\"}"))
            .unwrap();
    };
    let (finished, ()) = tokio::join!(exchange.run(), test);
    assert!(matches!(
        finished.end,
        ExchangeEnd::ClientGone {
            head_sent: true,
            wind_down: Some(WindDownOutcome::ClosedAtOnce)
        }
    ));
    assert_eq!(harness.client_closed("send_timeout"), 1);
    assert_eq!(harness.guard_closed("send_timeout"), 0);
}
