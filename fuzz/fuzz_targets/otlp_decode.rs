//! The OTLP decoder of `POST /v1/traces` (`ferroflow-server/src/otlp_decode.rs`, compiled here by path so
//! the target does not build the whole server): any body, in either encoding and under any
//! `Content-Encoding`, decodes or is refused, never panics, and never grows beyond the byte limit.
#![no_main]

#[path = "../../crates/ferroflow-server/src/otlp_decode.rs"]
#[allow(dead_code)]
mod otlp_decode;

use libfuzzer_sys::fuzz_target;

const ENCODINGS: [Option<&str>; 4] = [None, Some("gzip"), Some("deflate"), Some("br")];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let encoding = ENCODINGS[usize::from(selector & 3)];
    let json = selector & 4 != 0;
    let _ = otlp_decode::decode_export(body, encoding, json, 1 << 20);
});
