//! One server of a group out at a time, whatever took the other one out.
//!
//! A due server is held while another server of its group cannot take new sessions: it
//! fails its active probes, is passively ejected, or is being recycled. Recycling the due
//! one then would leave the group with no server, or fewer than it can spare. The lease of
//! `worker_recycle.coordination` keeps two replicas from recycling at once while the store
//! answers; this hold covers what the lease cannot see: a lease that expired during a long
//! store outage while its holder's server was still restarting (this replica's probes see
//! that server down), and a server that crashed on its own.
//!
//! A held group shows in `mcp_edge_upstream_recycle_held{upstream}` (1 while held) and in
//! one log line when the hold begins and one when it ends.

use crate::metrics::Metrics;
use crate::routing::UpstreamServer;
use std::collections::HashMap;

/// The groups whose due server waits, each with the server it waits for.
#[derive(Debug, Default)]
pub struct Holds {
    held: HashMap<String, String>,
}

impl Holds {
    /// Whether `due`, a due server of `group` (whose servers are `servers`), must wait for
    /// another server of the group; notes the hold's beginning or end.
    pub fn holds(
        &mut self,
        group: &str,
        due: &UpstreamServer,
        servers: &[UpstreamServer],
        metrics: &Metrics,
    ) -> bool {
        let down = servers
            .iter()
            .find(|other| other.address != due.address && !other.health.available());
        match down {
            Some(other) => {
                if self.held.get(group) != Some(&other.address) {
                    tracing::warn!(
                        upstream = group,
                        server = %due.address,
                        unavailable = %other.address,
                        "worker_recycle: a due server waits: another server of its group \
                         takes no new sessions"
                    );
                    self.held.insert(group.to_string(), other.address.clone());
                    metrics
                        .upstream_recycle_held
                        .with_label_values(&[group])
                        .set(1);
                }
                true
            }
            None => {
                self.release(group, metrics);
                false
            }
        }
    }

    /// `group` has no due server waiting (any more).
    pub fn release(&mut self, group: &str, metrics: &Metrics) {
        if let Some(other) = self.held.remove(group) {
            tracing::info!(
                upstream = group,
                waited_for = %other,
                "worker_recycle: the group is whole again; its due server may recycle"
            );
            metrics
                .upstream_recycle_held
                .with_label_values(&[group])
                .set(0);
        }
    }

    /// Forgets the groups that no generation has any more.
    pub fn retain(&mut self, present: impl Fn(&str) -> bool, metrics: &Metrics) {
        let gone: Vec<String> = self
            .held
            .keys()
            .filter(|group| !present(group))
            .cloned()
            .collect();
        for group in gone {
            self.release(&group, metrics);
        }
    }
}
