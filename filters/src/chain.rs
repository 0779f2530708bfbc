//! The filter chain: a list of factories built once per config generation, and the
//! per-stream chain that runs their filters in config order.

use crate::filter::{
    BodyChunk, FilterFactory, ResponseHead, StreamEnd, StreamFilter, StreamPlan, Verdict,
    WindDownPlan,
};
use crate::settings::FilterSpec;
use std::fmt;
use std::sync::Arc;
use tokio::time::Instant;

/// Why a chain could not be built from its specs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainError {
    /// The same filter kind appears twice; the indexes are positions in `filters:`.
    DuplicateKind {
        /// The repeated kind.
        kind: &'static str,
        /// Index of the first occurrence.
        first: usize,
        /// Index of the repeat.
        repeat: usize,
    },
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainError::DuplicateKind {
                kind,
                first,
                repeat,
            } => write!(
                f,
                "filter kind `{kind}` appears more than once (first at filters[{first}], again at filters[{repeat}]); each kind may appear at most once"
            ),
        }
    }
}

impl std::error::Error for ChainError {}

/// The filter chain of one config generation. Cheap to share: streams hold an `Arc` of it
/// so they finish on the chain they started with, even across a reload.
#[derive(Clone, Default)]
pub struct ChainFactory {
    specs: Vec<FilterSpec>,
    factories: Vec<Arc<dyn FilterFactory>>,
}

impl fmt::Debug for ChainFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainFactory")
            .field("kinds", &self.kinds())
            .finish()
    }
}

impl ChainFactory {
    /// Builds the chain for `specs`, in list order. Fails if a kind repeats.
    ///
    /// Specs whose filter has no per-stream part (for example `worker_recycle`, which acts
    /// on the process) are kept in [`ChainFactory::specs`] but make no stream filter.
    pub fn build(specs: &[FilterSpec]) -> Result<Self, Vec<ChainError>> {
        let mut errors = Vec::new();
        for (repeat, spec) in specs.iter().enumerate() {
            if let Some(first) = specs[..repeat].iter().position(|s| s.kind() == spec.kind()) {
                errors.push(ChainError::DuplicateKind {
                    kind: spec.kind(),
                    first,
                    repeat,
                });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let factories = specs.iter().filter_map(crate::factory_for).collect();
        Ok(Self {
            specs: specs.to_vec(),
            factories,
        })
    }

    /// The specs this chain was built from, in config order.
    pub fn specs(&self) -> &[FilterSpec] {
        &self.specs
    }

    /// The kinds of the per-stream filters, in the order they run.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.factories.iter().map(|f| f.kind()).collect()
    }

    /// Makes the per-stream chain for a new stream.
    pub fn new_stream(&self) -> StreamChain {
        StreamChain {
            filters: self.factories.iter().map(|f| f.new_stream()).collect(),
            ended: false,
        }
    }
}

/// The filters of one stream, run in config order. The first filter that asks to close
/// wins. Dropping the chain without calling [`StreamChain::end`] tells the filters the
/// upstream failed, so every filter hears about the end exactly once.
pub struct StreamChain {
    filters: Vec<Box<dyn StreamFilter>>,
    ended: bool,
}

impl StreamChain {
    /// True when the chain has no per-stream filters (the fast path).
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Runs every filter's [`StreamFilter::on_response_headers`] and returns the plan.
    pub fn on_response_headers(&mut self, head: &ResponseHead<'_>) -> StreamPlan {
        let mut plan = StreamPlan::default();
        for filter in &mut self.filters {
            filter.on_response_headers(head, &mut plan);
        }
        plan
    }

    /// Runs every filter's [`StreamFilter::on_response_chunk`]; the first close wins.
    pub fn on_response_chunk(&mut self, chunk: &BodyChunk<'_>, now: Instant) -> Verdict {
        for filter in &mut self.filters {
            if let Verdict::Close(reason) = filter.on_response_chunk(chunk, now) {
                return Verdict::Close(reason);
            }
        }
        Verdict::Continue
    }

    /// Runs every filter's [`StreamFilter::on_client_gone`] and returns the wind-down plan.
    pub fn on_client_gone(&mut self) -> WindDownPlan {
        let mut plan = WindDownPlan::default();
        for filter in &mut self.filters {
            filter.on_client_gone(&mut plan);
        }
        plan
    }

    /// Runs every filter's [`StreamFilter::on_wind_down_read`]; the first close wins.
    pub fn on_wind_down_read(&mut self, reads: u64) -> Verdict {
        for filter in &mut self.filters {
            if let Verdict::Close(reason) = filter.on_wind_down_read(reads) {
                return Verdict::Close(reason);
            }
        }
        Verdict::Continue
    }

    /// Tells every filter how the stream ended. Later calls do nothing.
    pub fn end(&mut self, end: StreamEnd) {
        if self.ended {
            return;
        }
        self.ended = true;
        for filter in &mut self.filters {
            filter.on_stream_end(end);
        }
    }
}

impl Drop for StreamChain {
    fn drop(&mut self) {
        self.end(StreamEnd::UpstreamError);
    }
}
