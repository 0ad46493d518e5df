//! Deserializers for MLflow's lenient request encoding.
//!
//! The MLflow server parses requests with protobuf's JSON reader: an int64 may arrive as a JSON number or a
//! string, a double may be `"NaN"`/`"Infinity"`, and GET requests carry every field as a query string. These
//! helpers accept each of those shapes so one request struct serves both GET and POST.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A scalar field as it came: a JSON number, string or bool.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Bool(bool),
    Integer(i64),
    Float(f64),
    Text(String),
}

fn scalar_type_name(scalar: &Scalar) -> &'static str {
    match scalar {
        Scalar::Bool(_) => "bool",
        Scalar::Integer(_) | Scalar::Float(_) => "number",
        Scalar::Text(_) => "str",
    }
}

fn scalar_to_i64<E: de::Error>(scalar: Scalar) -> Result<i64, E> {
    match scalar {
        Scalar::Integer(value) => Ok(value),
        Scalar::Float(value) if value.fract() == 0.0 && value.is_finite() => Ok(value as i64),
        Scalar::Text(text) => text
            .trim()
            .parse::<i64>()
            .map_err(|_| E::custom(format!("Value was of type '{}'", "str"))),
        other => Err(E::custom(format!(
            "Value was of type '{}'",
            scalar_type_name(&other)
        ))),
    }
}

/// An optional int64 that may be a number or a decimal string.
pub fn opt_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    match Option::<Scalar>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Scalar::Text(text)) if text.is_empty() => Ok(None),
        Some(scalar) => scalar_to_i64(scalar).map(Some),
    }
}

/// An optional double that may be a number, a decimal string, or `NaN` / `Infinity` / `-Infinity`.
pub fn opt_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    match Option::<Scalar>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Scalar::Integer(value)) => Ok(Some(value as f64)),
        Some(Scalar::Float(value)) => Ok(Some(value)),
        Some(Scalar::Text(text)) => parse_double(&text)
            .map(Some)
            .ok_or_else(|| de::Error::custom("Value was of type 'str'")),
        Some(other @ Scalar::Bool(_)) => Err(de::Error::custom(format!(
            "Value was of type '{}'",
            scalar_type_name(&other)
        ))),
    }
}

/// Parses a double the way protobuf's JSON reader does.
pub fn parse_double(text: &str) -> Option<f64> {
    match text.trim() {
        "NaN" | "nan" => Some(f64::NAN),
        "Infinity" | "inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        other => other.parse::<f64>().ok(),
    }
}

/// An optional bool that may be a JSON bool or `true`/`false` in any case.
pub fn opt_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    match Option::<Scalar>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Scalar::Bool(value)) => Ok(Some(value)),
        Some(Scalar::Text(text)) => match text.to_ascii_lowercase().as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(de::Error::custom("Value was of type 'str'")),
        },
        Some(other) => Err(de::Error::custom(format!(
            "Value was of type '{}'",
            scalar_type_name(&other)
        ))),
    }
}

/// An optional string that may also arrive as a number (ids sent as numbers by some clients).
pub fn opt_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    match Option::<Scalar>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Scalar::Text(text)) => Ok(Some(text)),
        Some(Scalar::Integer(value)) => Ok(Some(value.to_string())),
        Some(other) => Err(de::Error::custom(format!(
            "Value was of type '{}'",
            scalar_type_name(&other)
        ))),
    }
}

/// A repeated field: a JSON list, or one value (a GET query with the key given once), or null.
pub fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct OneOrMany<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrMany<T> {
        type Value = Vec<T>;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a list or a single value")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(item) = seq.next_element()? {
                items.push(item);
            }
            Ok(items)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_none<E: de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<Vec<T>, E> {
            T::deserialize(de::value::StrDeserializer::new(value)).map(|item| vec![item])
        }

        fn visit_string<E: de::Error>(self, value: String) -> Result<Vec<T>, E> {
            self.visit_str(&value)
        }

        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Vec<T>, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|item| vec![item])
        }
    }

    deserializer.deserialize_any(OneOrMany(std::marker::PhantomData))
}

/// Serializes a double as protobuf JSON does: a number, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
pub fn ser_f64<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.is_nan() {
        serializer.serialize_str("NaN")
    } else if value.is_infinite() && value.is_sign_positive() {
        serializer.serialize_str("Infinity")
    } else if value.is_infinite() {
        serializer.serialize_str("-Infinity")
    } else {
        value.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "opt_i64")]
        number: Option<i64>,
        #[serde(default, deserialize_with = "opt_f64")]
        double: Option<f64>,
        #[serde(default, deserialize_with = "one_or_many")]
        ids: Vec<String>,
    }

    fn probe(json: &str) -> Probe {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn int64_as_number_or_string() {
        assert_eq!(probe(r#"{"number": 5}"#).number, Some(5));
        assert_eq!(probe(r#"{"number": "17"}"#).number, Some(17));
        assert!(serde_json::from_str::<Probe>(r#"{"number": "x"}"#).is_err());
    }

    #[test]
    fn double_special_values() {
        assert!(probe(r#"{"double": "NaN"}"#).double.unwrap().is_nan());
        assert_eq!(
            probe(r#"{"double": "-Infinity"}"#).double,
            Some(f64::NEG_INFINITY)
        );
        assert_eq!(probe(r#"{"double": 1.5}"#).double, Some(1.5));
    }

    #[test]
    fn repeated_from_one_or_many() {
        assert_eq!(probe(r#"{"ids": "a"}"#).ids, vec!["a"]);
        assert_eq!(probe(r#"{"ids": ["a", "b"]}"#).ids, vec!["a", "b"]);
        assert!(probe(r#"{"ids": null}"#).ids.is_empty());
    }
}
