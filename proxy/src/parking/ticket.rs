//! What an exchange is parked with.

use mcp_edge_filters::ParkPlan;

/// An exchange to park: the upstream was still working at the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParkTicket {
    /// The bounds it is parked under.
    pub plan: ParkPlan,
    /// Whether the upstream's response head was read (the parked exchange reads it first
    /// when not).
    pub head_read: bool,
}
