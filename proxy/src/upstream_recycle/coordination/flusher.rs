//! The flusher: every [`FLUSH_INTERVAL`], this replica's routed requests go to the shared
//! counters, off the request path.

use super::{Coordination, ServerKey, FLUSH_INTERVAL};
use crate::generation::LiveConfig;
use crate::health::ServerState;
use std::sync::Arc;
use tokio::time::MissedTickBehavior;

/// Flushes the routed requests of the live generation's recyclable servers every
/// [`FLUSH_INTERVAL`], until aborted.
pub async fn flush_loop(coordination: Arc<Coordination>, live: Arc<LiveConfig>) {
    let mut ticker = tokio::time::interval(FLUSH_INTERVAL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let generation = live.current();
        let servers: Vec<(ServerKey, Arc<ServerState>)> = generation
            .routes
            .groups()
            .iter()
            .filter(|group| group.recycle_hook.is_some())
            .flat_map(|group| {
                group.servers.iter().map(|server| {
                    let key = ServerKey {
                        group: group.name.clone(),
                        server: server.address.clone(),
                    };
                    (key, server.health.clone())
                })
            })
            .collect();
        coordination.flush(&servers).await;
    }
}
