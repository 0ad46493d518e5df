//! The text formats of MLflow traces: JSON that keeps the order of object keys (span attributes and
//! inputs are Python dicts, whose order the client sees), Python's `json.dumps` layout (MLflow stores
//! span content and assessment values with it), and protobuf's JSON forms of `Timestamp` and
//! `Duration` (`"2026-11-26T10:16:51.833Z"`, `"0.023s"`).
//!
//! serde_json's own `Value` sorts object keys (the workspace does not enable `preserve_order`), so span
//! attributes are read into [`OrderedJson`] instead.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A JSON value whose objects keep their keys in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderedJson {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    Float(f64),
    String(String),
    Array(Vec<OrderedJson>),
    Object(Vec<(String, OrderedJson)>),
}

impl OrderedJson {
    /// Parses JSON text; `None` when it is not JSON.
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// The value of `key` in an object.
    pub fn get(&self, key: &str) -> Option<&OrderedJson> {
        match self {
            OrderedJson::Object(entries) => entries
                .iter()
                .find(|(entry_key, _)| entry_key == key)
                .map(|(_, value)| value),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            OrderedJson::String(text) => Some(text),
            _ => None,
        }
    }

    /// The number as a float (integers included).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            OrderedJson::Int(number) => Some(*number as f64),
            OrderedJson::UInt(number) => Some(*number as f64),
            OrderedJson::Float(number) => Some(*number),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            OrderedJson::Int(number) => Some(*number),
            OrderedJson::UInt(number) => i64::try_from(*number).ok(),
            _ => None,
        }
    }

    /// Python's `json.dumps(value, ensure_ascii=...)`: `", "` and `": "` separators, floats as Python
    /// writes them.
    pub fn python_dumps(&self, ensure_ascii: bool) -> String {
        let mut text = String::new();
        self.write_python(&mut text, ensure_ascii);
        text
    }

    fn write_python(&self, text: &mut String, ensure_ascii: bool) {
        match self {
            OrderedJson::Null => text.push_str("null"),
            OrderedJson::Bool(true) => text.push_str("true"),
            OrderedJson::Bool(false) => text.push_str("false"),
            OrderedJson::Int(number) => text.push_str(&number.to_string()),
            OrderedJson::UInt(number) => text.push_str(&number.to_string()),
            OrderedJson::Float(number) => text.push_str(&python_float(*number)),
            OrderedJson::String(value) => text.push_str(&python_json_string(value, ensure_ascii)),
            OrderedJson::Array(items) => {
                text.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        text.push_str(", ");
                    }
                    item.write_python(text, ensure_ascii);
                }
                text.push(']');
            }
            OrderedJson::Object(entries) => {
                text.push('{');
                for (index, (key, value)) in entries.iter().enumerate() {
                    if index > 0 {
                        text.push_str(", ");
                    }
                    text.push_str(&python_json_string(key, ensure_ascii));
                    text.push_str(": ");
                    value.write_python(text, ensure_ascii);
                }
                text.push('}');
            }
        }
    }

    /// The value as serde_json's (object keys sorted), for wire messages whose order does not matter.
    pub fn to_serde(&self) -> serde_json::Value {
        match self {
            OrderedJson::Null => serde_json::Value::Null,
            OrderedJson::Bool(flag) => serde_json::Value::Bool(*flag),
            OrderedJson::Int(number) => serde_json::Value::from(*number),
            OrderedJson::UInt(number) => serde_json::Value::from(*number),
            OrderedJson::Float(number) => serde_json::Number::from_f64(*number)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            OrderedJson::String(text) => serde_json::Value::String(text.clone()),
            OrderedJson::Array(items) => {
                serde_json::Value::Array(items.iter().map(OrderedJson::to_serde).collect())
            }
            OrderedJson::Object(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| (key.clone(), value.to_serde()))
                    .collect(),
            ),
        }
    }

    /// A serde_json value (sorted keys) as an ordered one.
    pub fn from_serde(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => OrderedJson::Null,
            serde_json::Value::Bool(flag) => OrderedJson::Bool(*flag),
            serde_json::Value::Number(number) => {
                if let Some(integer) = number.as_i64() {
                    OrderedJson::Int(integer)
                } else if let Some(integer) = number.as_u64() {
                    OrderedJson::UInt(integer)
                } else {
                    OrderedJson::Float(number.as_f64().unwrap_or(0.0))
                }
            }
            serde_json::Value::String(text) => OrderedJson::String(text.clone()),
            serde_json::Value::Array(items) => {
                OrderedJson::Array(items.iter().map(OrderedJson::from_serde).collect())
            }
            serde_json::Value::Object(entries) => OrderedJson::Object(
                entries
                    .iter()
                    .map(|(key, value)| (key.clone(), OrderedJson::from_serde(value)))
                    .collect(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for OrderedJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;

        impl<'de> Visitor<'de> for OrderedVisitor {
            type Value = OrderedJson;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("any JSON value")
            }

            fn visit_unit<E: de::Error>(self) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Null)
            }

            fn visit_none<E: de::Error>(self) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Null)
            }

            fn visit_some<D: Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<OrderedJson, D::Error> {
                OrderedJson::deserialize(deserializer)
            }

            fn visit_bool<E: de::Error>(self, value: bool) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Bool(value))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Int(value))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<OrderedJson, E> {
                Ok(match i64::try_from(value) {
                    Ok(value) => OrderedJson::Int(value),
                    Err(_) => OrderedJson::UInt(value),
                })
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Float(value))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<OrderedJson, E> {
                Ok(OrderedJson::String(value.to_owned()))
            }

            fn visit_string<E: de::Error>(self, value: String) -> Result<OrderedJson, E> {
                Ok(OrderedJson::String(value))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OrderedJson, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(OrderedJson::Array(items))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedJson, A::Error> {
                let mut entries: Vec<(String, OrderedJson)> = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, OrderedJson>()? {
                    // A repeated key keeps its first position and its last value, as Python's dict.
                    match entries.iter_mut().find(|(existing, _)| *existing == key) {
                        Some(entry) => entry.1 = value,
                        None => entries.push((key, value)),
                    }
                }
                Ok(OrderedJson::Object(entries))
            }
        }

        deserializer.deserialize_any(OrderedVisitor)
    }
}

/// A float as Python's `repr()` writes it: the shortest round-trip digits, `.0` on integral values,
/// exponent form below 1e-4 and from 1e16 (`1e+16`, `1.5e-07`).
pub fn python_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_owned();
    }
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exponent) {
        if exponent >= 0 {
            let integer_length = usize::try_from(exponent).unwrap_or(0) + 1;
            let (integer, fraction) = if digits.len() > integer_length {
                (
                    digits[..integer_length].to_owned(),
                    digits[integer_length..].to_owned(),
                )
            } else {
                (
                    format!("{digits}{}", "0".repeat(integer_length - digits.len())),
                    "0".to_owned(),
                )
            };
            format!("{sign}{integer}.{fraction}")
        } else {
            let zeros = usize::try_from(-exponent - 1).unwrap_or(0);
            format!("{sign}0.{}{digits}", "0".repeat(zeros))
        }
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{sign}{first}{fraction}e{exponent_sign}{:02}",
            exponent.unsigned_abs()
        )
    }
}

/// A JSON string as Python's `json.dumps` writes it; with `ensure_ascii`, every character outside
/// printable ASCII is a `\uXXXX` escape (surrogate pairs beyond the BMP).
pub fn python_json_string(text: &str, ensure_ascii: bool) -> String {
    let mut json = String::with_capacity(text.len() + 2);
    json.push('"');
    for character in text.chars() {
        match character {
            '"' => json.push_str("\\\""),
            '\\' => json.push_str("\\\\"),
            '\n' => json.push_str("\\n"),
            '\r' => json.push_str("\\r"),
            '\t' => json.push_str("\\t"),
            '\u{8}' => json.push_str("\\b"),
            '\u{c}' => json.push_str("\\f"),
            ' '..='~' => json.push(character),
            other if (other as u32) < 0x20 || (ensure_ascii && (other as u32) > 0x7e) => {
                let mut units = [0u16; 2];
                for unit in other.encode_utf16(&mut units) {
                    json.push_str(&format!("\\u{unit:04x}"));
                }
            }
            other => json.push(other),
        }
    }
    json.push('"');
    json
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Milliseconds since the epoch as protobuf's JSON `Timestamp`: UTC, `Z`, and 0, 3, 6 or 9 fraction
/// digits (milliseconds give 0 or 3).
pub fn timestamp_from_millis(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    let fraction = millis.rem_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let time = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    );
    if fraction == 0 {
        format!("{time}Z")
    } else {
        format!("{time}.{fraction:03}Z")
    }
}

/// Parses protobuf's JSON `Timestamp` (RFC 3339 with `Z` or an offset) into milliseconds since the
/// epoch, truncating below a millisecond as protobuf's `ToMilliseconds` does.
pub fn millis_from_timestamp(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || !matches!(bytes[10], b'T' | b't')
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if !part.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_seconds = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let hours: i64 = rest.get(1..3)?.parse().ok()?;
            let minutes: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    Some(seconds * 1000 + millis)
}

/// Milliseconds as protobuf's JSON `Duration`: `"0s"`, `"1.500s"`, `"-0.023s"`.
pub fn duration_from_millis(millis: i64) -> String {
    let sign = if millis < 0 { "-" } else { "" };
    let magnitude = millis.unsigned_abs();
    let (seconds, fraction) = (magnitude / 1000, magnitude % 1000);
    if fraction == 0 {
        format!("{sign}{seconds}s")
    } else {
        format!("{sign}{seconds}.{fraction:03}s")
    }
}

/// Parses protobuf's JSON `Duration` (`"1.5s"`) into milliseconds, truncating below a millisecond.
pub fn millis_from_duration(text: &str) -> Option<i64> {
    let body = text.strip_suffix('s')?;
    let (negative, body) = match body.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    let (seconds, fraction) = body.split_once('.').unwrap_or((body, ""));
    if seconds.is_empty()
        || !seconds.bytes().all(|byte| byte.is_ascii_digit())
        || !fraction.bytes().all(|byte| byte.is_ascii_digit())
        || fraction.len() > 9
    {
        return None;
    }
    let seconds: i64 = seconds.parse().ok()?;
    let millis: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{:0<3}", &fraction[..fraction.len().min(3)])
            .parse()
            .ok()?
    };
    let total = seconds.checked_mul(1000)?.checked_add(millis)?;
    Some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_floats() {
        for (value, expected) in [
            (1.0, "1.0"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (0.1, "0.1"),
            (123456.789, "123456.789"),
            (1e16, "1e+16"),
            (1.5e-7, "1.5e-07"),
            (0.0001, "0.0001"),
            (1e15, "1000000000000000.0"),
            (0.0, "0.0"),
        ] {
            assert_eq!(python_float(value), expected, "{value}");
        }
    }

    #[test]
    fn python_dumps_keeps_order_and_layout() {
        let value =
            OrderedJson::parse(r#"{"b": [1, 2.0, "é"], "a": {"x": null, "y": true}}"#).unwrap();
        assert_eq!(
            value.python_dumps(false),
            r#"{"b": [1, 2.0, "é"], "a": {"x": null, "y": true}}"#
        );
        assert_eq!(
            value.python_dumps(true),
            r#"{"b": [1, 2.0, "\u00e9"], "a": {"x": null, "y": true}}"#
        );
    }

    #[test]
    fn timestamps_round_trip() {
        assert_eq!(
            timestamp_from_millis(1795688211833),
            "2026-11-26T10:16:51.833Z"
        );
        assert_eq!(timestamp_from_millis(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            millis_from_timestamp("2026-11-26T10:16:51.833Z"),
            Some(1795688211833)
        );
        assert_eq!(
            millis_from_timestamp("2026-11-26T10:16:51.833999999Z"),
            Some(1795688211833)
        );
        assert_eq!(
            millis_from_timestamp("2026-11-26T11:16:51+01:00"),
            Some(1795688211000)
        );
        assert_eq!(millis_from_timestamp("yesterday"), None);
        assert_eq!(millis_from_timestamp("2026-13-26T10:16:51Z"), None);
    }

    #[test]
    fn durations_round_trip() {
        assert_eq!(duration_from_millis(23), "0.023s");
        assert_eq!(duration_from_millis(1500), "1.500s");
        assert_eq!(duration_from_millis(2000), "2s");
        assert_eq!(millis_from_duration("0.023s"), Some(23));
        assert_eq!(millis_from_duration("1.5s"), Some(1500));
        assert_eq!(millis_from_duration("2s"), Some(2000));
        assert_eq!(millis_from_duration("-0.5s"), Some(-500));
        assert_eq!(millis_from_duration("2"), None);
        assert_eq!(millis_from_duration("x.5s"), None);
    }
}
