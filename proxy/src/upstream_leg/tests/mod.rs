//! Tests of the upstream leg: codec units on byte slices, property tests of the
//! codec (`props`: any cut, any chunking, garbage; `props_oracle`: httparse and
//! hyper read the same bytes), then exchanges with real upstreams on 127.0.0.1.

mod decode;
mod exchange;
mod head;
mod oneshot;
mod pool;
mod props;
mod props_oracle;
mod request;
mod support;
mod tls;
mod wire;
