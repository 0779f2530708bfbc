//! Parked exchanges under paused time, with the scripted upstream of the exchange tests.

use super::run::run_parked;
use super::{ParkedEnd, ParkingLot};
use crate::exchange::tests::fakes::{head, FakeUpstream, Upstream};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const AGE: Option<Duration> = Some(Duration::from_secs(60));

#[tokio::test(start_paused = true)]
async fn an_upstream_that_finishes_is_a_late_completion() {
    let lot = Arc::new(ParkingLot::default());
    let (mut upstream, script) = FakeUpstream::new();
    let parked = lot.park(4);
    assert_eq!(lot.len(), 1);
    let finish = async {
        tokio::time::sleep(Duration::from_secs(20)).await;
        script.send(Upstream::Chunk(b"data: late\n\n")).unwrap();
        script.send(Upstream::End).unwrap();
    };
    let (end, ()) = tokio::join!(run_parked(&mut upstream, parked, AGE, true), finish);
    assert_eq!(end, ParkedEnd::LateCompletion);
    assert_eq!(upstream.reads, 1, "the late bytes were read and discarded");
    assert!(lot.is_empty(), "a finished exchange leaves the lot");
}

#[tokio::test(start_paused = true)]
async fn the_head_is_read_first_when_the_deadline_came_before_it() {
    let lot = Arc::new(ParkingLot::default());
    let (mut upstream, script) = FakeUpstream::new();
    for step in [
        head("application/json"),
        Upstream::Chunk(b"{}"),
        Upstream::End,
    ] {
        script.send(step).unwrap();
    }
    let end = run_parked(&mut upstream, lot.park(4), AGE, false).await;
    assert_eq!(end, ParkedEnd::LateCompletion);
}

#[tokio::test(start_paused = true)]
async fn a_silent_upstream_is_closed_at_the_age_bound() {
    let lot = Arc::new(ParkingLot::default());
    let (mut upstream, _script) = FakeUpstream::new();
    let started = Instant::now();
    let end = run_parked(&mut upstream, lot.park(4), AGE, true).await;
    assert_eq!(end, ParkedEnd::ClosedAgeBound);
    assert!(end.closed_by_proxy());
    assert_eq!(started.elapsed(), Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn past_the_count_bound_the_oldest_is_closed_and_the_newest_keeps_running() {
    let lot = Arc::new(ParkingLot::default());
    let (mut oldest, _a) = FakeUpstream::new();
    let (mut newest, script) = FakeUpstream::new();
    let first = lot.park(1);
    let oldest_run = run_parked(&mut oldest, first, None, true);
    let second = lot.park(1);
    assert_eq!(oldest_run.await, ParkedEnd::ClosedCountBound);
    assert_eq!(lot.len(), 1, "the closed one left the lot");
    script.send(Upstream::End).unwrap();
    assert_eq!(
        run_parked(&mut newest, second, None, true).await,
        ParkedEnd::LateCompletion
    );
}

#[tokio::test(start_paused = true)]
async fn an_upstream_that_goes_away_ends_its_parked_exchange() {
    let lot = Arc::new(ParkingLot::default());
    let (mut upstream, script) = FakeUpstream::new();
    script.send(Upstream::Fail("connection reset")).unwrap();
    let end = run_parked(&mut upstream, lot.park(4), AGE, true).await;
    assert_eq!(end, ParkedEnd::UpstreamClosed);
    assert!(!end.closed_by_proxy());
}
