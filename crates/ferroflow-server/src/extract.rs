//! `MlflowRequest<T>`: one extractor for MLflow's two request encodings. GET carries the message as query
//! parameters (a repeated field is a repeated key); other methods carry it as a JSON body, where POST must
//! say `Content-Type: application/json`. Every failure answers MLflow's error JSON.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, Method};
use ferroflow_core::Error;
use ferroflow_proto::ErrorCode;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The decoded request message of an MLflow endpoint.
pub struct MlflowRequest<T>(pub T);

/// Largest JSON body accepted, a little above MLflow's 1 MB log-batch limit.
const MAX_JSON_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Turns `a=1&b=x&b=y` into `{"a": "1", "b": ["x", "y"]}`.
pub fn query_to_json(query: &str) -> Value {
    let mut object = Map::new();
    for (key, value) in form_urlencoded_pairs(query) {
        match object.get_mut(&key) {
            None => {
                object.insert(key, Value::String(value));
            }
            Some(Value::Array(items)) => items.push(Value::String(value)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(value)]);
            }
        }
    }
    Value::Object(object)
}

fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(key), decode_component(value))
        })
        .collect()
}

fn decode_component(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

fn decode_message<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|error| {
        ApiError(Error::invalid_parameter(format!(
            "Invalid request: {error}"
        )))
    })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for MlflowRequest<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        read_message(request)
            .await
            .map(|(message, _)| MlflowRequest(message))
    }
}

/// Decodes the message of `request` and returns it with the size of its JSON body (0 for GET).
pub async fn read_message<T: DeserializeOwned>(request: Request) -> Result<(T, usize), ApiError> {
    if request.method() == Method::GET {
        let value = query_to_json(request.uri().query().unwrap_or(""));
        return decode_message(value).map(|message| (message, 0));
    }
    if request.method() == Method::POST {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(ApiError(Error::invalid_parameter(
                "Bad Request. Content-Type must be one of ['application/json'].",
            )));
        }
    }
    let body = http_body_util::Limited::new(request.into_body(), MAX_JSON_BODY_BYTES);
    let bytes: Bytes = http_body_util::BodyExt::collect(body)
        .await
        .map_err(|error| {
            ApiError(Error::invalid_parameter(format!(
                "Invalid request body: {error}"
            )))
        })?
        .to_bytes();
    let size = bytes.len();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return decode_message(Value::Object(Map::new())).map(|message| (message, size));
    }
    let malformed = |error: serde_json::Error| {
        ApiError(Error::new(
            ErrorCode::BadRequest,
            format!("Malformed JSON request body: {error}"),
        ))
    };
    let mut value: Value = serde_json::from_slice(&bytes).map_err(malformed)?;
    // A legacy client sends the message as a JSON string holding JSON.
    if let Value::String(inner) = &value {
        value = serde_json::from_str(inner).map_err(malformed)?;
    }
    decode_message(value).map(|message| (message, size))
}

/// The parameters of a route's path (`{trace_id}`, `{model_id}` and `{tag_key}`, ...), decoded once by the
/// router. A segment that does not decode (not UTF-8, say) is refused with MLflow's error JSON instead of
/// axum's plain-text rejection.
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T> FromRequestParts<S> for PathParams<T>
where
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(params) =
            Path::<T>::from_request_parts(parts, state)
                .await
                .map_err(|rejection| {
                    ApiError::invalid_parameter(format!("Invalid path parameter: {rejection}"))
                })?;
        Ok(Self(params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_become_lists() {
        assert_eq!(
            query_to_json("run_id=a&run_id=b&metric_key=loss%20x&max_results=5"),
            serde_json::json!({"run_id": ["a", "b"], "metric_key": "loss x", "max_results": "5"})
        );
        assert_eq!(query_to_json(""), serde_json::json!({}));
    }
}
