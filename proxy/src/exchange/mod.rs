//! One exchange (a request's response, both legs) as an explicit state machine.
//!
//! - [`legs`]: the client and upstream legs behind small traits;
//! - [`machine`]: the states (awaiting the head, relaying, winding down, done; parked is
//!   run by [`crate::parking`]) and their transitions, decided by the filter chain's hooks;
//! - [`wind_down`]: what happens to an upstream exchange whose client left;
//! - [`end`]: how an exchange ended, as a type;
//! - [`event_stream`]: the registration and counters of an open event stream;
//! - [`encoded`]: event streams an upstream compressed anyway, relayed untouched;
//! - [`filtered_answer`]: list answers filtered by the route's exposure;
//! - [`cached_answer`]: list answers stored in the route's cache;
//! - [`events`]: what an exchange reports as it happens, for the layer around to count.
//!
//! Nothing here knows Pingora: the proxy plugs its legs in (`service::client_leg`,
//! `upstream_leg`), the unit tests plug in fakes and run under paused tokio time.

pub mod cached_answer;
pub mod encoded;
pub mod end;
pub mod event_stream;
pub mod events;
pub mod filtered_answer;
pub(crate) use crate::legs;
pub mod machine;
pub mod small_body;
pub mod wind_down;

#[cfg(test)]
pub(crate) mod tests;

pub use crate::parking::ParkTicket;
pub use end::{DrainClose, ExchangeEnd};
pub use event_stream::StreamTracking;
pub use events::ExchangeEvents;
pub use legs::{ClientLeg, ClientWriteError, Departure, Head, UpstreamLeg};
pub use machine::{Exchange, ExchangeEnv, Finished};
