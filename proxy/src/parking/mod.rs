//! Parking: abandoned exchanges that outlive the cleanup deadline keep running upstream.
//!
//! When a client leaves mid-call and `task_group_cleanup_timeout` passes with the upstream
//! still working, closing the upstream connection *is* the cancellation that makes an
//! anyio handler spin. So the exchange is parked instead: its connection stays open and
//! its bytes are read and discarded, so the upstream never sees a disconnect. Parked
//! exchanges are bounded per server by a count (the oldest is closed past it) and by an
//! age; one the upstream finishes counts as a late completion.

mod lot;
mod run;
mod spawn;
#[cfg(test)]
mod tests;
mod ticket;

pub use lot::ParkingLot;
pub use run::ParkedEnd;
pub use spawn::park;
pub use ticket::ParkTicket;
