//! Tests of the upstream leg: codec units on byte slices, then exchanges with
//! real upstreams listening on 127.0.0.1.

mod decode;
mod exchange;
mod head;
mod oneshot;
mod pool;
mod request;
mod support;
mod tls;
