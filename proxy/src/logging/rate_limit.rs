//! A rate limit on log lines, per call site: a line that repeats in a loop (Pingora's
//! `Accept() failed …` on a runtime that is shutting down, say) cannot flood the log.
//!
//! Each call site (the `log` record's file and line for Pingora's lines, the tracing call
//! site for ours) may write [`BURST`] lines per [`WINDOW`]; the rest of the window's lines
//! are dropped and counted. The first line of a later window from that call site is
//! preceded by one line saying how many were suppressed, and [`report_suppressed`] writes
//! what is still pending (the process calls it before it exits).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tracing::callsite::{Callsite, Identifier};
use tracing::field::{FieldSet, Value};
use tracing::metadata::Kind;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer};

/// Lines one call site may write per window.
pub const BURST: u32 = 10;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(1);
/// Call sites tracked at most; past it the book starts afresh.
const MAX_SITES: usize = 4096;

/// One call site's window.
struct Site {
    started: Instant,
    written: u32,
    suppressed: u64,
    /// The call site, for the summary line.
    name: String,
}

/// The counts of every call site, shared with [`report_suppressed`].
#[derive(Default)]
struct Book {
    sites: Mutex<HashMap<u64, Site>>,
}

/// What to do with one line.
enum Decision {
    /// Write it.
    Write,
    /// Write a summary of `suppressed` lines of `name`, then the line.
    SummaryThenWrite { suppressed: u64, name: String },
    /// Drop it.
    Drop,
}

impl Book {
    fn decide(&self, key: u64, name: impl FnOnce() -> String, now: Instant) -> Decision {
        let Ok(mut sites) = self.sites.lock() else {
            return Decision::Write;
        };
        if sites.len() >= MAX_SITES && !sites.contains_key(&key) {
            sites.clear();
        }
        let site = sites.entry(key).or_insert_with(|| Site {
            started: now,
            written: 0,
            suppressed: 0,
            name: name(),
        });
        if now.duration_since(site.started) >= WINDOW {
            site.started = now;
            site.written = 1;
            let suppressed = std::mem::take(&mut site.suppressed);
            return if suppressed > 0 {
                Decision::SummaryThenWrite {
                    suppressed,
                    name: site.name.clone(),
                }
            } else {
                Decision::Write
            };
        }
        if site.written < BURST {
            site.written += 1;
            Decision::Write
        } else {
            site.suppressed += 1;
            Decision::Drop
        }
    }

    /// Takes every pending suppressed count.
    fn take_pending(&self) -> Vec<(String, u64)> {
        let Ok(mut sites) = self.sites.lock() else {
            return Vec::new();
        };
        sites
            .values_mut()
            .filter(|site| site.suppressed > 0)
            .map(|site| (site.name.clone(), std::mem::take(&mut site.suppressed)))
            .collect()
    }
}

/// The book of the installed layer, for [`report_suppressed`].
static INSTALLED: OnceLock<Arc<Book>> = OnceLock::new();

/// Writes one line per call site with lines still suppressed. Call it outside any log
/// event (it logs through the global subscriber), e.g. just before the process exits.
pub fn report_suppressed() {
    let Some(book) = INSTALLED.get() else { return };
    for (site, suppressed) in book.take_pending() {
        tracing::warn!(suppressed, site = %site, "log lines suppressed by the rate limit");
    }
}

/// Wraps the layer that writes lines, rate-limiting them per call site.
pub struct RateLimited<L> {
    inner: L,
    book: Arc<Book>,
}

impl<L> RateLimited<L> {
    /// Rate-limits `inner`. The first one made is the one [`report_suppressed`] reports.
    pub fn new(inner: L) -> Self {
        let book = Arc::new(Book::default());
        let _ = INSTALLED.set(book.clone());
        Self { inner, book }
    }
}

/// A line's call site: where a `log` record was written, or the tracing call site.
fn site_of<'e>(event: &'e Event<'e>) -> (u64, Box<dyn FnOnce() -> String + 'e>) {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    if let Some(normalized) = event.normalized_metadata() {
        let target = normalized.target().to_string();
        let file = normalized.file().map(str::to_string);
        let line = normalized.line();
        (target.as_str(), file.as_deref(), line).hash(&mut hasher);
        let name = move || match (file, line) {
            (Some(file), Some(line)) => format!("{target} {file}:{line}"),
            _ => target,
        };
        return (hasher.finish(), Box::new(name));
    }
    let metadata = event.metadata();
    metadata.callsite().hash(&mut hasher);
    let name = move || match (metadata.file(), metadata.line()) {
        (Some(file), Some(line)) => format!("{} {file}:{line}", metadata.target()),
        _ => metadata.target().to_string(),
    };
    (hasher.finish(), Box::new(name))
}

impl<S: Subscriber, L: Layer<S>> Layer<S> for RateLimited<L> {
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.inner.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.enabled(metadata, ctx)
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        self.inner.on_new_span(attrs, id, ctx);
    }

    fn on_record(
        &self,
        span: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        self.inner.on_record(span, values, ctx);
    }

    fn on_enter(&self, id: &tracing::span::Id, ctx: Context<'_, S>) {
        self.inner.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &tracing::span::Id, ctx: Context<'_, S>) {
        self.inner.on_exit(id, ctx);
    }

    fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
        self.inner.on_close(id, ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let (key, name) = site_of(event);
        match self.book.decide(key, name, Instant::now()) {
            Decision::Write => self.inner.on_event(event, ctx),
            Decision::Drop => {}
            Decision::SummaryThenWrite { suppressed, name } => {
                summary_event(suppressed, &name, |summary| {
                    self.inner.on_event(summary, ctx.clone())
                });
                self.inner.on_event(event, ctx);
            }
        }
    }
}

/// The call site of the summary line.
struct SummarySite;

static SUMMARY_SITE: SummarySite = SummarySite;
static SUMMARY_FIELDS: &[&str] = &["message", "suppressed", "site"];
static SUMMARY_METADATA: Metadata<'static> = Metadata::new(
    "log rate limit",
    "mcp_edge::logging",
    Level::WARN,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(SUMMARY_FIELDS, Identifier(&SUMMARY_SITE)),
    Kind::EVENT,
);

impl Callsite for SummarySite {
    fn set_interest(&self, _: Interest) {}

    fn metadata(&self) -> &Metadata<'_> {
        &SUMMARY_METADATA
    }
}

/// Builds the summary line and hands it to `write`. The line goes straight to the wrapped
/// layer: an event logged from inside another would be dropped by the dispatcher.
fn summary_event(suppressed: u64, site: &str, write: impl FnOnce(&Event<'_>)) {
    let fields = SUMMARY_METADATA.fields();
    let (Some(message), Some(count), Some(name)) = (
        fields.field("message"),
        fields.field("suppressed"),
        fields.field("site"),
    ) else {
        return;
    };
    let text = format_args!("log lines suppressed by the rate limit");
    let values: [(&tracing::field::Field, Option<&dyn Value>); 3] = [
        (&message, Some(&text as &dyn Value)),
        (&count, Some(&suppressed as &dyn Value)),
        (&name, Some(&site as &dyn Value)),
    ];
    let values = fields.value_set(&values);
    write(&Event::new(&SUMMARY_METADATA, &values));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_the_rest_is_counted_and_reported_with_the_next_window() {
        let book = Book::default();
        let start = Instant::now();
        let name = || "site".to_string();
        for _ in 0..BURST {
            assert!(matches!(book.decide(1, name, start), Decision::Write));
        }
        for _ in 0..1000 {
            assert!(matches!(book.decide(1, name, start), Decision::Drop));
        }
        // Another call site has a window of its own.
        assert!(matches!(book.decide(2, name, start), Decision::Write));
        match book.decide(1, name, start + WINDOW) {
            Decision::SummaryThenWrite { suppressed, name } => {
                assert_eq!(suppressed, 1000);
                assert_eq!(name, "site");
            }
            _ => panic!("expected a summary"),
        }
        assert!(matches!(
            book.decide(1, name, start + WINDOW),
            Decision::Write
        ));
    }

    #[test]
    fn pending_counts_are_taken_once() {
        let book = Book::default();
        let now = Instant::now();
        for _ in 0..BURST + 3 {
            book.decide(7, || "loop".to_string(), now);
        }
        assert_eq!(book.take_pending(), vec![("loop".to_string(), 3)]);
        assert!(book.take_pending().is_empty());
    }
}
