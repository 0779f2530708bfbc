//! A parked exchange, run to its end: the upstream's bytes are read and discarded until
//! the upstream finishes (a late completion), closes, or a bound closes it.

use super::lot::Parked;
use crate::legs::UpstreamLeg;
use std::time::Duration;
use tokio::time::{sleep, Instant};

/// How a parked exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParkedEnd {
    /// The upstream finished the response: its handler completed after all.
    LateCompletion,
    /// The upstream closed or broke the connection (its worker went away, say).
    UpstreamClosed,
    /// The server's parked count passed its bound and this was the oldest: closed.
    ClosedCountBound,
    /// It ran past the age bound: closed.
    ClosedAgeBound,
}

impl ParkedEnd {
    /// The `mcp_edge_parked_ended_total` outcome label.
    pub fn label(self) -> &'static str {
        match self {
            ParkedEnd::LateCompletion => "late_completion",
            ParkedEnd::UpstreamClosed => "upstream_closed",
            ParkedEnd::ClosedCountBound => "closed_count_bound",
            ParkedEnd::ClosedAgeBound => "closed_age_bound",
        }
    }

    /// True when the proxy closed the exchange (a possible spin upstream).
    pub fn closed_by_proxy(self) -> bool {
        matches!(
            self,
            ParkedEnd::ClosedCountBound | ParkedEnd::ClosedAgeBound
        )
    }
}

/// Reads and discards `upstream`'s response (its head first unless `head_read`) until it
/// ends, the lot evicts `parked`, or `max_age` passes. Dropping the leg afterwards closes
/// the connection.
pub async fn run_parked<U: UpstreamLeg>(
    upstream: &mut U,
    mut parked: Parked,
    max_age: Option<Duration>,
    head_read: bool,
) -> ParkedEnd {
    upstream.set_read_timeout(None);
    let started = Instant::now();
    let age_bound = async {
        match max_age {
            Some(age) => sleep(age).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(age_bound);
    let mut head_read = head_read;
    loop {
        let read = async {
            if head_read {
                let piece = upstream.read_body().await?;
                Ok(if piece.is_some() {
                    Step::Piece
                } else {
                    Step::End
                })
            } else {
                upstream.read_head().await.map(|_| Step::Head)
            }
        };
        tokio::select! {
            biased;
            _ = &mut parked.evicted => return ParkedEnd::ClosedCountBound,
            _ = &mut age_bound => return ParkedEnd::ClosedAgeBound,
            read = read => match read {
                Ok(Step::Head) => head_read = true,
                Ok(Step::Piece) => {}
                Ok(Step::End) => {
                    let elapsed_ms = started.elapsed().as_millis() as u64;
                    tracing::debug!(elapsed_ms, "parked exchange completed");
                    return ParkedEnd::LateCompletion;
                }
                Err(_) => return ParkedEnd::UpstreamClosed,
            },
        }
    }
}

/// What one read of a parked exchange found.
enum Step {
    Head,
    Piece,
    End,
}
