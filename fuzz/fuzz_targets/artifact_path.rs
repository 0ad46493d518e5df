//! The artifact path normalizer (`ferroflow-core/src/artifact_path.rs`): whatever a client sends, an
//! accepted path is relative, has no empty, `.` or `..` segment, no `\`, NUL or encoded separator, and
//! parses again to itself.
#![no_main]

use ferroflow_core::artifact_path::ArtifactPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(path) = ArtifactPath::parse(text) else {
        return;
    };
    let normalized = path.as_str();
    assert!(!normalized.starts_with('/'), "absolute: {normalized:?}");
    assert!(!normalized.contains('\\') && !normalized.contains('\0'));
    for segment in path.segments() {
        assert!(!segment.is_empty() && !segment.chars().all(|c| c == '.'), "segment {segment:?}");
    }
    let lowered = normalized.to_ascii_lowercase();
    for encoded in ["%2f", "%2e", "%5c", "%00"] {
        assert!(!lowered.contains(encoded), "encoded separator in {normalized:?}");
    }
    let again = ArtifactPath::parse(normalized);
    assert_eq!(again.as_ref().ok(), Some(&path), "not idempotent: {text:?}");
    if let Some(parent) = path.parent() {
        assert_eq!(ArtifactPath::parse(parent.as_str()).ok(), Some(parent));
    }
});
