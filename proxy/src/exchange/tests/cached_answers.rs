//! Answers for the route's list cache: a whole JSON answer is stored and relayed as it
//! came; one past the bound is relayed and not stored; a change notification on an event
//! stream moves the group's list epoch.

use super::fakes::{head, FakeClient, FakeUpstream, Upstream};
use super::{chain, Harness};
use crate::config::list_cache::ListCacheConfig;
use crate::exchange::{Exchange, ExchangeEnd};
use crate::list_cache::{AnswerFill, CacheRequest, ListCache, ListChangeWatch, ListSignal};
use crate::policy::list_filter::MAX_ANSWER_BYTES;
use http::Method;
use std::sync::Arc;

const ANSWER: &[u8] =
    br#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"a"}],"ttlMs":60000,"cacheScope":"public"}}"#;

fn fill() -> (AnswerFill, Arc<ListCache>) {
    let cache = Arc::new(ListCache::new(&ListCacheConfig::default(), [0; 32]));
    let request = Arc::new(CacheRequest {
        public: [1; 32],
        private: None,
        call_id: "7".into(),
    });
    let fill = AnswerFill::new(cache.clone(), request, Arc::new(ListSignal::default()), 0);
    (fill, cache)
}

#[tokio::test(start_paused = true)]
async fn a_whole_json_answer_is_stored_and_relayed_as_it_came() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head("application/json")).unwrap();
    let (first, rest) = ANSWER.split_at(20);
    for step in [Upstream::Chunk(first), Upstream::Chunk(rest), Upstream::End] {
        script.send(step).unwrap();
    }
    let (fill, cache) = fill();
    let post = Method::POST;
    let mut env = harness.env(&post);
    env.answer_fill = Some(fill);
    let finished = Exchange::new(&mut client, upstream, chain(&[]), None, env)
        .run()
        .await;
    assert!(matches!(finished.end, ExchangeEnd::Complete));
    assert_eq!(probe.body(), ANSWER);
    let stored = cache.get(&[1; 32], 0).expect("stored");
    assert_eq!(stored.render("7"), ANSWER);
}

#[tokio::test(start_paused = true)]
async fn an_answer_past_the_bound_is_relayed_whole_and_not_stored() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head("application/json")).unwrap();
    let chunk: &'static [u8] = Box::leak(vec![b' '; 1 << 20].into_boxed_slice());
    let chunks = MAX_ANSWER_BYTES / chunk.len() + 2;
    script.send(Upstream::Chunk(ANSWER)).unwrap();
    for _ in 0..chunks {
        script.send(Upstream::Chunk(chunk)).unwrap();
    }
    script.send(Upstream::End).unwrap();
    let (fill, cache) = fill();
    let post = Method::POST;
    let mut env = harness.env(&post);
    env.answer_fill = Some(fill);
    let finished = Exchange::new(&mut client, upstream, chain(&[]), None, env)
        .run()
        .await;
    assert!(matches!(finished.end, ExchangeEnd::Complete));
    assert_eq!(probe.body().len(), ANSWER.len() + chunks * chunk.len());
    assert!(cache.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_change_notification_on_an_event_stream_moves_the_epoch() {
    let harness = Harness::new();
    let (mut client, probe) = FakeClient::new();
    let (upstream, script) = FakeUpstream::new();
    script.send(head("text/event-stream")).unwrap();
    let changed =
        b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n";
    script.send(Upstream::Chunk(changed)).unwrap();
    script.send(Upstream::End).unwrap();
    let signal = Arc::new(ListSignal::default());
    signal.watch();
    let get = Method::GET;
    let mut env = harness.env(&get);
    env.list_changes = ListChangeWatch::new(signal.clone());
    let finished = Exchange::new(&mut client, upstream, chain(&[]), None, env)
        .run()
        .await;
    assert!(matches!(finished.end, ExchangeEnd::Complete));
    assert_eq!(probe.body(), changed);
    assert_eq!(signal.epoch(), 1);
}
