//! The `observability` section: the access log and the bounds of MCP metric labels.

use mcp_edge_filters::bounded::Count;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What mcp-edge reports about the traffic it serves, beyond the fixed metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObservabilityConfig {
    /// One line per request. Omit to turn the access log off (it then costs nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<AccessLogConfig>,
    /// How many distinct tool names get a `tool` label of their own in the metrics; later
    /// names share the label `other`. Read at start-up.
    #[serde(default = "default_tool_labels")]
    pub tool_labels: Count<0, 1000>,
}

impl Default for ObservabilityConfig {
    fn default() -> Self {
        Self {
            access_log: None,
            tool_labels: default_tool_labels(),
        }
    }
}

fn default_tool_labels() -> Count<0, 1000> {
    Count::new(50)
}

/// The access log: one line per request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessLogConfig {
    /// `json` (one JSON object per line) or `text` (key=value pairs).
    #[serde(default)]
    pub format: AccessLogFormat,
    /// `stderr`, or a file appended to and reopened on SIGUSR1 (for logrotate).
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// The key of the session hash (`session` field: a short keyed hash, never the id).
    /// At least 16 characters; by default a random key per process, so hashes compare
    /// only within one process. Use `${ENV}` to keep it out of the file.
    #[serde(default, skip_serializing)]
    #[schemars(length(min = 16))]
    pub session_hash_key: Option<String>,
}

fn default_path() -> PathBuf {
    PathBuf::from("stderr")
}

/// The line format of the access log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessLogFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// `key=value` pairs, values quoted when they need it.
    Text,
}
