//! Bounded config values: durations and counts that are checked once, when the config is
//! deserialized, so every later use is plain arithmetic that cannot overflow or panic.
//!
//! | type                         | YAML                | range                                 |
//! |------------------------------|---------------------|---------------------------------------|
//! | [`Seconds<MIN_MS, MAX_S>`]   | a number of seconds | `MIN_MS` ms to `MAX_S` s              |
//! | [`OptionalSeconds<MAX_S>`]   | a number of seconds | 0 (off), or 1 ms to `MAX_S` s         |
//! | [`Count<MIN, MAX>`]          | an integer          | `MIN` to `MAX`                        |
//!
//! Each type states its bounds in the JSON Schema it generates (`minimum`, `maximum`, and
//! for [`OptionalSeconds`] a `not` that excludes the gap between 0 and 1 ms), so the
//! committed schema and the typed check agree. The typed check also rejects what JSON
//! Schema cannot see: negative zero (`-0.0`), NaN and infinities.
//!
//! Use them as field types with one of the duration constants as the maximum:
//!
//! ```
//! use mcp_edge_filters::bounded::{Count, OptionalSeconds, Seconds, DAY, HOUR};
//! #[derive(serde::Deserialize)]
//! struct Example {
//!     /// 0 disables; otherwise 1 ms to 1 day.
//!     idle_timeout: OptionalSeconds<DAY>,
//!     /// At least 100 ms, at most 1 hour.
//!     probe_interval: Seconds<100, HOUR>,
//!     /// 1 to 1000.
//!     retries: Count<1, 1000>,
//! }
//! let example: Example = serde_json_like();
//! # fn serde_json_like() -> Example { Example {
//! #     idle_timeout: OptionalSeconds::from_secs(0),
//! #     probe_interval: Seconds::from_millis(100),
//! #     retries: Count::new(1),
//! # } }
//! assert_eq!(example.idle_timeout.get(), None);
//! ```

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// One minute, in seconds: a maximum for [`Seconds`] and [`OptionalSeconds`].
pub const MINUTE: u64 = 60;
/// One hour, in seconds.
pub const HOUR: u64 = 3_600;
/// One day, in seconds.
pub const DAY: u64 = 86_400;
/// One year (365 days), in seconds.
pub const YEAR: u64 = 365 * DAY;

/// The smallest non-zero duration any field accepts: 1 ms, the resolution of the timers.
pub const RESOLUTION_MS: u64 = 1;

/// A number of seconds (fractions allowed) from `MIN_MS` milliseconds to `MAX_S` seconds.
/// Deserializes from a number; serializes as a number of seconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seconds<const MIN_MS: u64, const MAX_S: u64>(Duration);

impl<const MIN_MS: u64, const MAX_S: u64> Seconds<MIN_MS, MAX_S> {
    /// The smallest accepted value.
    pub const MIN: Duration = Duration::from_millis(MIN_MS);
    /// The largest accepted value.
    pub const MAX: Duration = Duration::from_secs(MAX_S);

    /// A value of whole seconds, for defaults. Panics when out of range (a defect the
    /// defaults tests catch).
    pub const fn from_secs(secs: u64) -> Self {
        Self::from_millis(secs * 1000)
    }

    /// A value of milliseconds, for defaults. Panics when out of range.
    pub const fn from_millis(millis: u64) -> Self {
        assert!(millis >= MIN_MS && millis <= MAX_S * 1000, "out of range");
        Self(Duration::from_millis(millis))
    }

    /// Checks a number of seconds against the bounds.
    pub fn try_from_secs_f64(value: f64) -> Result<Self, String> {
        let range = || range_text(MIN_MS, MAX_S);
        let duration = finite_non_negative(value, &range)?;
        if duration < Self::MIN {
            return Err(format!(
                "{} is less than the minimum of {} (allowed: {})",
                number(value),
                millis_number(MIN_MS),
                range()
            ));
        }
        check_max(value, duration, MAX_S, &range)?;
        Ok(Self(duration))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

/// A number of seconds (fractions allowed): 0, which turns the feature off (or means
/// "at once", as documented per field), or from 1 ms to `MAX_S` seconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct OptionalSeconds<const MAX_S: u64>(Option<Duration>);

impl<const MAX_S: u64> OptionalSeconds<MAX_S> {
    /// The off value, 0.
    pub const OFF: Self = Self(None);

    /// A value of whole seconds (0 is off), for defaults. Panics when out of range.
    pub const fn from_secs(secs: u64) -> Self {
        Self::from_millis(secs * 1000)
    }

    /// A value of milliseconds (0 is off), for defaults. Panics when out of range.
    pub const fn from_millis(millis: u64) -> Self {
        assert!(millis <= MAX_S * 1000, "out of range");
        if millis == 0 {
            Self(None)
        } else {
            Self(Some(Duration::from_millis(millis)))
        }
    }

    /// Checks a number of seconds against the bounds.
    pub fn try_from_secs_f64(value: f64) -> Result<Self, String> {
        let range = || format!("0 (off), or {}", range_text(RESOLUTION_MS, MAX_S));
        let duration = finite_non_negative(value, &range)?;
        if duration.is_zero() && value == 0.0 {
            return Ok(Self(None));
        }
        if duration < Duration::from_millis(RESOLUTION_MS) {
            return Err(format!(
                "{} is neither 0 (off) nor at least {} (allowed: {})",
                number(value),
                millis_number(RESOLUTION_MS),
                range()
            ));
        }
        check_max(value, duration, MAX_S, &range)?;
        Ok(Self(Some(duration)))
    }

    /// The duration; `None` when the value is 0.
    pub const fn get(self) -> Option<Duration> {
        self.0
    }

    /// The duration; zero when the value is 0.
    pub fn or_zero(self) -> Duration {
        self.0.unwrap_or_default()
    }
}

/// An integer from `MIN` to `MAX`. Deserializes from an integer.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Count<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> Count<MIN, MAX> {
    /// A value, for defaults. Panics when out of range.
    pub const fn new(value: u64) -> Self {
        assert!(value >= MIN && value <= MAX, "out of range");
        Self(value)
    }

    /// Checks `value` against the bounds.
    pub fn try_new(value: u64) -> Result<Self, String> {
        if (MIN..=MAX).contains(&value) {
            Ok(Self(value))
        } else {
            let side = if value < MIN {
                format!("less than the minimum of {MIN}")
            } else {
                format!("greater than the maximum of {MAX}")
            };
            Err(format!("{value} is {side} (allowed: {MIN} to {MAX})"))
        }
    }

    /// The value.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The value as a `u32`; saturates (only reachable when `MAX` exceeds `u32::MAX`).
    pub fn get_u32(self) -> u32 {
        u32::try_from(self.0).unwrap_or(u32::MAX)
    }

    /// The value as a `usize`; saturates.
    pub fn get_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// 0, for counts whose minimum is 0 (where 0 usually turns a feature off).
impl<const MAX: u64> Default for Count<0, MAX> {
    fn default() -> Self {
        Self(0)
    }
}

/// `value` as a duration when it is finite and not negative (negative zero included).
fn finite_non_negative(value: f64, range: &dyn Fn() -> String) -> Result<Duration, String> {
    if value.is_nan() {
        return Err(format!(
            "expected a number of seconds, found NaN (allowed: {})",
            range()
        ));
    }
    if value.is_infinite() {
        return Err(format!(
            "expected a finite number of seconds, found {}infinity (allowed: {})",
            if value < 0.0 { "-" } else { "" },
            range()
        ));
    }
    if value.is_sign_negative() {
        let what = if value == 0.0 {
            "-0 is negative zero; write 0".to_owned()
        } else {
            format!("{} is less than the minimum of 0", number(value))
        };
        return Err(format!("{what} (allowed: {})", range()));
    }
    // Finite and not negative: only too large to represent can fail, and that is above
    // every maximum.
    Duration::try_from_secs_f64(value).or(Ok(Duration::MAX))
}

fn check_max(
    value: f64,
    duration: Duration,
    max_s: u64,
    range: &dyn Fn() -> String,
) -> Result<(), String> {
    if duration > Duration::from_secs(max_s) {
        Err(format!(
            "{} is greater than the maximum of {max_s} (allowed: {})",
            number(value),
            range()
        ))
    } else {
        Ok(())
    }
}

/// `0.001 to 86400 seconds (1 day)`.
fn range_text(min_ms: u64, max_s: u64) -> String {
    let unit = match max_s {
        YEAR => " (1 year)",
        DAY => " (1 day)",
        HOUR => " (1 hour)",
        MINUTE => " (1 minute)",
        _ => "",
    };
    format!("{} to {max_s} seconds{unit}", millis_number(min_ms))
}

/// Milliseconds as a number of seconds: `0.001`, `1`.
fn millis_number(ms: u64) -> String {
    if ms % 1000 == 0 {
        (ms / 1000).to_string()
    } else {
        (ms as f64 / 1000.0).to_string()
    }
}

/// A number as a person writes it: `30`, `1.5`, `1e-9`, `1.8e19`.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else if value != 0.0 && (value.abs() >= 1e15 || value.abs() < 1e-4) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

/// A bound in the schema: an integer when whole, so `1000 ms` reads `1`, not `1.0`.
enum JsonNumber {
    Int(u64),
    Float(f64),
}

impl Serialize for JsonNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            JsonNumber::Int(i) => serializer.serialize_u64(*i),
            JsonNumber::Float(f) => serializer.serialize_f64(*f),
        }
    }
}

/// `ms` milliseconds as a JSON number of seconds.
fn json_seconds_of_millis(ms: u64) -> JsonNumber {
    if ms % 1000 == 0 {
        JsonNumber::Int(ms / 1000)
    } else {
        JsonNumber::Float(ms as f64 / 1000.0)
    }
}

impl<const MIN_MS: u64, const MAX_S: u64> JsonSchema for Seconds<MIN_MS, MAX_S> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Seconds_{MIN_MS}ms_{MAX_S}s").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "number",
            "minimum": json_seconds_of_millis(MIN_MS),
            "maximum": MAX_S,
        })
    }
}

impl<const MAX_S: u64> JsonSchema for OptionalSeconds<MAX_S> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("OptionalSeconds_{MAX_S}s").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "number",
            "minimum": 0,
            "maximum": MAX_S,
            "not": {
                "type": "number",
                "exclusiveMinimum": 0,
                "exclusiveMaximum": json_seconds_of_millis(RESOLUTION_MS),
            },
        })
    }
}

impl<const MIN: u64, const MAX: u64> JsonSchema for Count<MIN, MAX> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Count_{MIN}_{MAX}").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "integer",
            "format": "uint64",
            "minimum": MIN,
            "maximum": MAX,
        })
    }
}

impl<'de, const MIN_MS: u64, const MAX_S: u64> Deserialize<'de> for Seconds<MIN_MS, MAX_S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        Self::try_from_secs_f64(value).map_err(de::Error::custom)
    }
}

impl<'de, const MAX_S: u64> Deserialize<'de> for OptionalSeconds<MAX_S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        Self::try_from_secs_f64(value).map_err(de::Error::custom)
    }
}

/// Accepts what JSON Schema calls an integer: a whole number, also when written `2.0`.
impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Count<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CountVisitor::<MIN, MAX>)
    }
}

struct CountVisitor<const MIN: u64, const MAX: u64>;

impl<const MIN: u64, const MAX: u64> de::Visitor<'_> for CountVisitor<MIN, MAX> {
    type Value = Count<MIN, MAX>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an integer from {MIN} to {MAX}")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Count::try_new(value).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        match u64::try_from(value) {
            Ok(value) => self.visit_u64(value),
            Err(_) => Err(E::custom(format!(
                "{value} is less than the minimum of {MIN} (allowed: {MIN} to {MAX})"
            ))),
        }
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        if value.fract() != 0.0 || !value.is_finite() {
            return Err(E::custom(format!(
                "expected an integer from {MIN} to {MAX}, found {}",
                number(value)
            )));
        }
        if value == 0.0 && value.is_sign_negative() {
            return Err(E::custom(format!(
                "-0 is negative zero; write 0 (allowed: {MIN} to {MAX})"
            )));
        }
        if value < 0.0 {
            return Err(E::custom(format!(
                "{} is less than the minimum of {MIN} (allowed: {MIN} to {MAX})",
                number(value)
            )));
        }
        if value > MAX as f64 {
            return Err(E::custom(format!(
                "{} is greater than the maximum of {MAX} (allowed: {MIN} to {MAX})",
                number(value)
            )));
        }
        self.visit_u64(value as u64)
    }
}

impl<const MIN_MS: u64, const MAX_S: u64> Serialize for Seconds<MIN_MS, MAX_S> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0.as_secs_f64())
    }
}

impl<const MAX_S: u64> Serialize for OptionalSeconds<MAX_S> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.or_zero().as_secs_f64())
    }
}

impl<const MIN: u64, const MAX: u64> Serialize for Count<MIN, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<const MIN_MS: u64, const MAX_S: u64> fmt::Debug for Seconds<MIN_MS, MAX_S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<const MAX_S: u64> fmt::Debug for OptionalSeconds<MAX_S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(duration) => write!(f, "{duration:?}"),
            None => f.write_str("off"),
        }
    }
}

impl<const MIN: u64, const MAX: u64> fmt::Debug for Count<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Compares with a number of seconds, as written in a config.
impl<const MIN_MS: u64, const MAX_S: u64> PartialEq<f64> for Seconds<MIN_MS, MAX_S> {
    fn eq(&self, seconds: &f64) -> bool {
        self.0.as_secs_f64() == *seconds
    }
}

/// Compares with a number of seconds, as written in a config (0 is off).
impl<const MAX_S: u64> PartialEq<f64> for OptionalSeconds<MAX_S> {
    fn eq(&self, seconds: &f64) -> bool {
        self.or_zero().as_secs_f64() == *seconds
    }
}

/// Compares with a plain integer.
impl<const MIN: u64, const MAX: u64> PartialEq<u64> for Count<MIN, MAX> {
    fn eq(&self, value: &u64) -> bool {
        self.0 == *value
    }
}
