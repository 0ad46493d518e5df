//! `POST /v1/traces`: OpenTelemetry (OTLP/HTTP) span ingest, as MLflow's `otel_api.py` serves it.
//!
//! - `Content-Type` `application/x-protobuf` (what the mlflow client and most SDKs send) or
//!   `application/json` (OTLP JSON: camelCase names, hex ids); anything else is 400.
//! - `Content-Encoding` none, `gzip` or `deflate` (zlib or raw); anything else is 400.
//! - `x-mlflow-experiment-id` names the experiment (absent: 422, as FastAPI answers a missing header);
//!   `x-mlflow-run-id` links the finished traces to a run.
//! - The body is decoded with `opentelemetry-proto` (prost, or its serde types for JSON). A body that
//!   does not decode, or has no `resourceSpans`, is 400 and stores nothing; a span without ids is 422.
//! - The whole batch is one store transaction. The answer is an empty protobuf
//!   `ExportTraceServiceResponse`; store errors are MLflow's error JSON.
//!
//! Errors of this route are `{"detail": ...}`, FastAPI's shape, as MLflow answers them.

use crate::error::ApiError;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ferroflow_core::trace_json::OrderedJson;
use ferroflow_core::traces::{OtlpEvent, OtlpLink, OtlpResourceSpans, OtlpSpan};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;
use std::io::Read;

/// The largest OTLP body accepted, compressed or not.
const MAX_OTLP_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The OTLP route, at the server root.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/v1/traces", post(export_traces))]
}

fn detail(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({ "detail": message.into() })),
    )
        .into_response()
}

/// A refusal of the body: its status and `detail`.
#[derive(Debug)]
struct Rejection(StatusCode, &'static str);

impl Rejection {
    fn into_response(self) -> Response {
        detail(self.0, self.1)
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Decompresses `body` per `Content-Encoding`, refusing output beyond the body limit.
fn decompress(body: Bytes, encoding: Option<&str>) -> Result<Vec<u8>, Rejection> {
    let limit = u64::try_from(MAX_OTLP_BODY_BYTES).unwrap_or(u64::MAX);
    let read_all = |mut reader: Box<dyn Read + '_>| -> std::io::Result<Vec<u8>> {
        let mut output = Vec::new();
        (&mut reader).take(limit + 1).read_to_end(&mut output)?;
        if output.len() > MAX_OTLP_BODY_BYTES {
            return Err(std::io::Error::other("decompressed body too large"));
        }
        Ok(output)
    };
    match encoding.map(|encoding| encoding.trim().to_ascii_lowercase()) {
        None => Ok(body.to_vec()),
        Some(encoding) if encoding.is_empty() || encoding == "identity" => Ok(body.to_vec()),
        Some(encoding) if encoding == "gzip" => {
            read_all(Box::new(flate2::read::GzDecoder::new(&body[..]))).map_err(|_| {
                Rejection(StatusCode::BAD_REQUEST, "Failed to decompress gzip payload")
            })
        }
        Some(encoding) if encoding == "deflate" => {
            read_all(Box::new(flate2::read::ZlibDecoder::new(&body[..])))
                .or_else(|_| read_all(Box::new(flate2::read::DeflateDecoder::new(&body[..]))))
                .map_err(|_| {
                    Rejection(
                        StatusCode::BAD_REQUEST,
                        "Failed to decompress deflate payload",
                    )
                })
        }
        Some(_) => Err(Rejection(
            StatusCode::BAD_REQUEST,
            "Unsupported Content-Encoding",
        )),
    }
}

/// An `AnyValue` as the JSON value MLflow decodes it to (bytes as base64 text).
fn any_value(value: Option<&AnyValue>) -> OrderedJson {
    match value.and_then(|value| value.value.as_ref()) {
        None => OrderedJson::Null,
        Some(any_value::Value::StringValue(text)) => OrderedJson::String(text.clone()),
        Some(any_value::Value::BoolValue(flag)) => OrderedJson::Bool(*flag),
        Some(any_value::Value::IntValue(number)) => OrderedJson::Int(*number),
        Some(any_value::Value::DoubleValue(number)) if number.is_finite() => {
            OrderedJson::Float(*number)
        }
        Some(any_value::Value::DoubleValue(_)) => OrderedJson::Null,
        Some(any_value::Value::ArrayValue(array)) => OrderedJson::Array(
            array
                .values
                .iter()
                .map(|item| any_value(Some(item)))
                .collect(),
        ),
        Some(any_value::Value::KvlistValue(list)) => OrderedJson::Object(attributes(&list.values)),
        Some(any_value::Value::BytesValue(bytes)) => OrderedJson::String(STANDARD.encode(bytes)),
        Some(any_value::Value::StringValueStrindex(index)) => OrderedJson::Int(i64::from(*index)),
    }
}

fn attributes(values: &[KeyValue]) -> Vec<(String, OrderedJson)> {
    values
        .iter()
        .map(|pair| (pair.key.clone(), any_value(pair.value.as_ref())))
        .collect()
}

/// The decoded request as the service's input.
fn resources_of(request: ExportTraceServiceRequest) -> Vec<OtlpResourceSpans> {
    request
        .resource_spans
        .into_iter()
        .map(|resource_spans| OtlpResourceSpans {
            resource_attributes: resource_spans
                .resource
                .as_ref()
                .map(|resource| attributes(&resource.attributes))
                .unwrap_or_default(),
            spans: resource_spans
                .scope_spans
                .into_iter()
                .flat_map(|scope| scope.spans)
                .map(|span| {
                    let status = span.status.unwrap_or_default();
                    OtlpSpan {
                        trace_id: span.trace_id,
                        span_id: span.span_id,
                        parent_span_id: span.parent_span_id,
                        name: span.name,
                        start_time_unix_nano: span.start_time_unix_nano,
                        end_time_unix_nano: span.end_time_unix_nano,
                        status_code: status.code,
                        status_message: status.message,
                        attributes: attributes(&span.attributes),
                        events: span
                            .events
                            .iter()
                            .map(|event| OtlpEvent {
                                name: event.name.clone(),
                                time_unix_nano: event.time_unix_nano,
                                attributes: attributes(&event.attributes),
                            })
                            .collect(),
                        links: span
                            .links
                            .iter()
                            .map(|link| OtlpLink {
                                trace_id: link.trace_id.clone(),
                                span_id: link.span_id.clone(),
                                attributes: attributes(&link.attributes),
                            })
                            .collect(),
                    }
                })
                .collect(),
        })
        .collect()
}

/// Decodes an OTLP body in either encoding.
fn decode(body: &[u8], json: bool) -> Option<ExportTraceServiceRequest> {
    if json {
        serde_json::from_slice(body).ok()
    } else {
        ExportTraceServiceRequest::decode(body).ok()
    }
}

async fn export_traces(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    let content_type = header_text(&headers, header::CONTENT_TYPE.as_str());
    let media_type = content_type.map(|value| {
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    let json = match media_type.as_deref() {
        Some("application/x-protobuf") => false,
        Some("application/json") => true,
        _ => {
            return detail(
                StatusCode::BAD_REQUEST,
                format!(
                "Invalid Content-Type: {}. Expected: application/x-protobuf or application/json",
                content_type.unwrap_or("None")
            ),
            )
        }
    };
    let Some(experiment_id) = header_text(&headers, "x-mlflow-experiment-id").map(str::to_owned)
    else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({"detail": [{
                "type": "missing",
                "loc": ["header", "x-mlflow-experiment-id"],
                "msg": "Field required",
                "input": null,
            }]})),
        )
            .into_response();
    };
    let run_id = header_text(&headers, "x-mlflow-run-id").map(str::to_owned);
    let limited = http_body_util::Limited::new(request.into_body(), MAX_OTLP_BODY_BYTES);
    let body = match http_body_util::BodyExt::collect(limited).await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return detail(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The OTLP request body is too large",
            )
        }
    };
    let encoding = header_text(&headers, header::CONTENT_ENCODING.as_str()).map(str::to_owned);
    let decoded = tokio::task::spawn_blocking(move || {
        let body = decompress(body, encoding.as_deref())?;
        let request = decode(&body, json).ok_or(Rejection(
            StatusCode::BAD_REQUEST,
            "Invalid OpenTelemetry format",
        ))?;
        if request.resource_spans.is_empty() {
            return Err(Rejection(
                StatusCode::BAD_REQUEST,
                "Invalid OpenTelemetry format - no spans found",
            ));
        }
        Ok(resources_of(request))
    })
    .await;
    let resources = match decoded {
        Ok(Ok(resources)) => resources,
        Ok(Err(rejection)) => return rejection.into_response(),
        Err(_) => {
            return detail(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Failed to decode the OpenTelemetry request",
            )
        }
    };
    match state
        .traces
        .log_spans(&experiment_id, run_id.as_deref(), &resources)
        .await
    {
        Ok(true) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            Body::empty(),
        )
            .into_response(),
        Ok(false) => detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Cannot convert OpenTelemetry span to MLflow span",
        ),
        Err(error) => ApiError(error).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_encodings_are_refused() {
        assert!(decompress(Bytes::from_static(b"x"), Some("br")).is_err());
        assert!(decompress(Bytes::from_static(b"not gzip"), Some("gzip")).is_err());
        assert_eq!(
            decompress(Bytes::from_static(b"plain"), None).unwrap(),
            b"plain"
        );
    }
}
