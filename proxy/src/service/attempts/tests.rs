//! The attempt loop's limits: failover on connect, one resend after a stale pooled
//! connection, nothing else.

use super::*;
use crate::config::model::Config;
use crate::config::UpstreamTlsSet;
use crate::health::HealthBook;
use crate::routing::RouteTable;
use crate::service::outcome::{AttemptPhase, UpstreamErrorKind};
use crate::service::responses::ProxyRefusal;
use std::io;

const THREE_SERVERS: &str = r#"
version: 1
listeners: [{address: "127.0.0.1:1"}]
upstreams:
  a: {servers: ["127.0.0.1:10", "127.0.0.1:11", "127.0.0.1:12"]}
routes:
  - {match: {path_prefix: /}, upstream: a}
"#;

fn table() -> RouteTable {
    let config: Config = serde_yaml::from_str(THREE_SERVERS).expect("test config parses");
    RouteTable::build(&config, &UpstreamTlsSet::default(), &HealthBook::default())
        .expect("test routes build")
}

fn refused() -> UpstreamError {
    UpstreamError::Connect(io::Error::from(io::ErrorKind::ConnectionRefused))
}

fn reset_on_write() -> UpstreamError {
    UpstreamError::Write(io::Error::from(io::ErrorKind::ConnectionReset))
}

#[test]
fn connect_failures_move_to_the_next_server_and_each_server_is_tried_once() {
    let table = table();
    let group = &table.route("/").unwrap().upstream;
    let mut attempts = Attempts::new(group, None);
    let mut tried = Vec::new();
    while let Some(target) = attempts.next_target() {
        assert!(!target.fresh);
        tried.push(target.server.address.clone());
        attempts.connect_failed(target.server, &refused(), false);
    }
    tried.sort();
    assert_eq!(tried, ["127.0.0.1:10", "127.0.0.1:11", "127.0.0.1:12"]);
    let (kind, reason) = attempts.exhausted();
    assert_eq!(kind, ProxyRefusal::UpstreamUnavailable);
    assert!(reason.contains("connect_refused"), "{reason}");
    assert_eq!(attempts.records.len(), 3);
    assert!(attempts
        .records
        .iter()
        .all(|r| r.failure == Some(UpstreamErrorKind::ConnectRefused)));
}

#[test]
fn a_stale_pooled_connection_is_resent_once_on_a_fresh_connection_to_the_same_server() {
    let table = table();
    let group = &table.route("/").unwrap().upstream;
    let mut attempts = Attempts::new(group, None);
    let first = attempts.next_target().unwrap();
    attempts.connected(first.server, None);
    assert!(attempts.failed(AttemptPhase::Send, &reset_on_write(), true));
    let again = attempts.next_target().unwrap();
    assert!(again.fresh, "the resend opens a fresh connection");
    assert_eq!(again.server.address, first.server.address);
    attempts.connected(again.server, None);
    // The same failure again is not resent: a request is sent at most twice.
    assert!(!attempts.failed(
        AttemptPhase::Response,
        &UpstreamError::ClosedBeforeResponse,
        true
    ));
    assert_eq!(
        attempts.records.last().unwrap().failure,
        Some(UpstreamErrorKind::ResponseError)
    );
}

#[test]
fn nothing_is_resent_on_a_fresh_connection_or_after_the_upstream_may_have_acted() {
    let table = table();
    let group = &table.route("/").unwrap().upstream;
    let mut attempts = Attempts::new(group, None);
    let target = attempts.next_target().unwrap();
    attempts.connected(target.server, Some(std::time::Duration::from_millis(1)));
    assert!(!attempts.failed(
        AttemptPhase::Response,
        &UpstreamError::ClosedBeforeResponse,
        false
    ));
    let mut attempts = Attempts::new(group, None);
    let target = attempts.next_target().unwrap();
    attempts.connected(target.server, None);
    assert!(!attempts.failed(AttemptPhase::Response, &UpstreamError::ReadTimeout, true));
    assert!(!attempts.failed(
        AttemptPhase::Body,
        &UpstreamError::ClosedBeforeResponse,
        true
    ));
    assert_eq!(
        attempts.records.last().unwrap().failure,
        Some(UpstreamErrorKind::BodyError)
    );
}

#[test]
fn a_pinned_session_has_one_server_and_is_told_to_start_again() {
    let table = table();
    let group = &table.route("/").unwrap().upstream;
    let pinned = group.server("127.0.0.1:11").unwrap();
    let mut attempts = Attempts::new(group, Some(pinned));
    let target = attempts.next_target().unwrap();
    assert_eq!(target.server.address, "127.0.0.1:11");
    attempts.connect_failed(target.server, &UpstreamError::ConnectTimeout, true);
    assert!(attempts.next_target().is_none());
    let (kind, reason) = attempts.exhausted();
    assert_eq!(kind, ProxyRefusal::UnknownSession);
    assert!(reason.contains("127.0.0.1:11"), "{reason}");
    assert!(attempts.records[0].ejected);
}
