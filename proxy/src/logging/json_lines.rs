//! The JSON line format: one object per event with `timestamp`, `level`, `target` and
//! `message` first, then the event's own fields, flat.
//!
//! tracing-subscriber's JSON formatter, flattened, also prints the `log.target`,
//! `log.module_path`, `log.file` and `log.line` fields that the `log` bridge attaches to
//! every Pingora record (build paths, and the target twice); this format takes the target
//! from them, as the text format does, and leaves them out.

use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats each event as one JSON object on one line.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut fields = Fields::default();
        event.record(&mut fields);

        let message = fields.message.unwrap_or_default();
        let stable = [
            ("timestamp", timestamp.as_str()),
            ("level", metadata.level().as_str()),
            ("target", metadata.target()),
            ("message", message.as_str()),
        ];
        // Written in this order (a JSON map would sort the keys).
        let mut text = String::from("{");
        for (index, (name, value)) in stable.iter().enumerate() {
            if index > 0 {
                text.push(',');
            }
            text.push_str(&serde_json::Value::from(*name).to_string());
            text.push(':');
            text.push_str(&serde_json::Value::from(*value).to_string());
        }
        for (name, value) in &fields.others {
            // An event field never shadows one of the four above.
            if stable.iter().any(|(taken, _)| taken == name) {
                continue;
            }
            text.push(',');
            text.push_str(&serde_json::Value::from(name.as_str()).to_string());
            text.push(':');
            text.push_str(&value.to_string());
        }
        text.push('}');
        writeln!(writer, "{text}")
    }
}

/// An event's fields: the message apart, the `log` bridge's fields dropped.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    others: Vec<(String, serde_json::Value)>,
}

impl Fields {
    fn insert(&mut self, field: &Field, value: serde_json::Value) {
        match field.name() {
            "message" => {
                self.message = Some(match value {
                    serde_json::Value::String(text) => text,
                    other => other.to_string(),
                })
            }
            name if name.starts_with("log.") => {}
            name => self
                .others
                .push((name.trim_start_matches("r#").to_string(), value)),
        }
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field, value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.insert(field, value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.insert(field, format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_event_is_one_object_with_the_stable_fields_first_and_its_own_flat() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(generation = 3_u64, path = %"/a b", "config \"reloaded\"");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let line: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["target"], module_path!());
        assert_eq!(line["message"], "config \"reloaded\"");
        assert_eq!(line["generation"], 3);
        assert_eq!(line["path"], "/a b");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(text.starts_with("{\"timestamp\":"), "{text}");
        let order: Vec<usize> = [
            "\"level\":",
            "\"target\":",
            "\"message\":",
            "\"generation\":",
        ]
        .iter()
        .map(|key| text.find(key).unwrap())
        .collect();
        assert!(order.windows(2).all(|pair| pair[0] < pair[1]), "{text}");
    }
}
