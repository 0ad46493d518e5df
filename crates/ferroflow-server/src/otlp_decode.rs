//! The pure decoding step of `POST /v1/traces` (`routes/otlp.rs`): decompression, protobuf or OTLP JSON, and
//! the conversion to the trace service's input. No I/O and no HTTP types, so the fuzz target
//! `fuzz/fuzz_targets/otlp_decode.rs` compiles this file on its own (it is included there by path; keep
//! its imports to `ferroflow-core`, `opentelemetry-proto`, `prost`, `flate2`, `base64` and `serde_json`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ferroflow_core::trace_json::OrderedJson;
use ferroflow_core::traces::{OtlpEvent, OtlpLink, OtlpResourceSpans, OtlpSpan};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;
use std::io::Read;

/// Decodes an OTLP export body: `content_encoding` (none, `identity`, `gzip`, `deflate`) undone within
/// `max_bytes`, then protobuf or (`json`) OTLP JSON. Refusals are the `detail` MLflow answers with 400.
pub fn decode_export(
    body: &[u8],
    content_encoding: Option<&str>,
    json: bool,
    max_bytes: usize,
) -> Result<Vec<OtlpResourceSpans>, &'static str> {
    let body = decompress(body, content_encoding, max_bytes)?;
    let request = decode(&body, json).ok_or("Invalid OpenTelemetry format")?;
    if request.resource_spans.is_empty() {
        return Err("Invalid OpenTelemetry format - no spans found");
    }
    Ok(resources_of(request))
}

/// Decompresses `body` per `Content-Encoding`, refusing output beyond the body limit.
fn decompress(
    body: &[u8],
    encoding: Option<&str>,
    max_bytes: usize,
) -> Result<Vec<u8>, &'static str> {
    let limit = u64::try_from(max_bytes).unwrap_or(u64::MAX);
    let read_all = |mut reader: Box<dyn Read + '_>| -> std::io::Result<Vec<u8>> {
        let mut output = Vec::new();
        (&mut reader).take(limit + 1).read_to_end(&mut output)?;
        if output.len() > max_bytes {
            return Err(std::io::Error::other("decompressed body too large"));
        }
        Ok(output)
    };
    match encoding.map(|encoding| encoding.trim().to_ascii_lowercase()) {
        None => Ok(body.to_vec()),
        Some(encoding) if encoding.is_empty() || encoding == "identity" => Ok(body.to_vec()),
        Some(encoding) if encoding == "gzip" => {
            read_all(Box::new(flate2::read::GzDecoder::new(body)))
                .map_err(|_| "Failed to decompress gzip payload")
        }
        Some(encoding) if encoding == "deflate" => {
            read_all(Box::new(flate2::read::ZlibDecoder::new(body)))
                .or_else(|_| read_all(Box::new(flate2::read::DeflateDecoder::new(body))))
                .map_err(|_| "Failed to decompress deflate payload")
        }
        Some(_) => Err("Unsupported Content-Encoding"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_encodings_are_refused() {
        assert!(decompress(b"x", Some("br"), 10).is_err());
        assert!(decompress(b"not gzip", Some("gzip"), 10).is_err());
        assert_eq!(decompress(b"plain", None, 10).unwrap(), b"plain");
        assert_eq!(
            decode_export(b"", None, false, 10).err(),
            Some("Invalid OpenTelemetry format - no spans found")
        );
        assert_eq!(
            decode_export(b"{", None, true, 10).err(),
            Some("Invalid OpenTelemetry format")
        );
    }
}
