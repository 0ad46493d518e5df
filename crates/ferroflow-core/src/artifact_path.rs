//! Artifact paths: the one parser every artifact route runs a client path through.
//!
//! An [`ArtifactPath`] is a relative path inside an artifact root, made of segments joined by `/`. Once a
//! string has been parsed into one, it can be joined onto a root without escaping it: stores trust the
//! type and never re-check the text (they still guard symlinks, which no string check can see).
//!
//! # Grammar
//!
//! ```text
//! path     = "" | segments [ "/" ]        ; "" is the root; one trailing "/" is allowed and dropped
//! segments = segment *( "/" segment )
//! segment  = 1*char, not made only of "."  ; so no "", ".", "..", "..."
//! char     = any Unicode scalar except control characters (NUL included), "\" and "#"
//! ```
//!
//! On top of the grammar, a path is refused when:
//!
//! - it starts with `/` (absolute), with a drive letter such as `C:` or with `file:`;
//! - it still holds a percent-encoded `/`, `.`, `\` or NUL (`%2f`, `%2e`, `%5c`, `%00`, any case). The
//!   router has already decoded the request path once, so what is left is a double-encoded attack
//!   (`%252e%252e%252f` arrives here as `%2e%2e%2f`).
//!
//! Every refusal is INVALID_PARAMETER_VALUE with MLflow's message, `Invalid path`
//! (`mlflow.utils.uri.validate_path_is_safe`).

use crate::error::{Error, Result};
use std::fmt;

/// MLflow's message for a path that fails `validate_path_is_safe`.
pub const INVALID_PATH_MESSAGE: &str = "Invalid path";

/// Encoded bytes that must not survive the router's single decoding: `/`, `.`, `\` and NUL.
const FORBIDDEN_ENCODINGS: [&str; 4] = ["%2f", "%2e", "%5c", "%00"];

/// A validated relative path inside an artifact root. The text has no leading or trailing `/` and no
/// empty, `.` or `..` segment; the root is the empty path.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArtifactPath {
    normalized: String,
}

impl ArtifactPath {
    /// The root of the artifact store: the empty path.
    pub fn root() -> Self {
        Self::default()
    }

    /// Parses a client path, already percent-decoded once, refusing every shape in the module docs.
    pub fn parse(raw: &str) -> Result<Self> {
        if raw.is_empty() {
            return Ok(Self::root());
        }
        if raw
            .chars()
            .any(|character| character.is_control() || character == '\\' || character == '#')
        {
            return Err(invalid_path());
        }
        if contains_forbidden_encoding(raw) || raw.starts_with('/') || has_scheme_or_drive(raw) {
            return Err(invalid_path());
        }
        let without_trailing_slash = raw.strip_suffix('/').unwrap_or(raw);
        if without_trailing_slash
            .split('/')
            .any(|segment| !is_valid_segment(segment))
        {
            return Err(invalid_path());
        }
        Ok(Self {
            normalized: without_trailing_slash.to_owned(),
        })
    }

    /// The path as segments joined by `/`; empty for the root.
    pub fn as_str(&self) -> &str {
        &self.normalized
    }

    pub fn is_root(&self) -> bool {
        self.normalized.is_empty()
    }

    /// The segments in order; none for the root.
    pub fn segments(&self) -> impl Iterator<Item = &str> + '_ {
        self.normalized
            .split('/')
            .filter(|segment| !segment.is_empty())
    }

    /// The last segment, or `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        if self.is_root() {
            return None;
        }
        self.normalized.rsplit('/').next()
    }

    /// The path without its last segment, or `None` for the root.
    pub fn parent(&self) -> Option<ArtifactPath> {
        if self.is_root() {
            return None;
        }
        let parent = match self.normalized.rsplit_once('/') {
            Some((parent, _)) => parent.to_owned(),
            None => String::new(),
        };
        Some(Self { normalized: parent })
    }

    /// `self/child`. Both are valid, so the result is too.
    pub fn join(&self, child: &ArtifactPath) -> ArtifactPath {
        let normalized = match (self.is_root(), child.is_root()) {
            (true, _) => child.normalized.clone(),
            (false, true) => self.normalized.clone(),
            (false, false) => format!("{}/{}", self.normalized, child.normalized),
        };
        ArtifactPath { normalized }
    }
}

impl fmt::Display for ArtifactPath {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.normalized)
    }
}

impl AsRef<str> for ArtifactPath {
    fn as_ref(&self) -> &str {
        &self.normalized
    }
}

fn invalid_path() -> Error {
    Error::invalid_parameter(INVALID_PATH_MESSAGE)
}

fn contains_forbidden_encoding(raw: &str) -> bool {
    let lowercase = raw.to_ascii_lowercase();
    FORBIDDEN_ENCODINGS
        .iter()
        .any(|encoding| lowercase.contains(encoding))
}

/// A first segment like `C:` or `c:foo` (a Windows drive) or a `file:` URI.
fn has_scheme_or_drive(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let is_drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    let is_file_uri = bytes.len() >= 5 && bytes[..5].eq_ignore_ascii_case(b"file:");
    is_drive || is_file_uri
}

fn is_valid_segment(segment: &str) -> bool {
    !segment.is_empty() && !segment.chars().all(|character| character == '.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflow_proto::ErrorCode;
    use proptest::prelude::*;

    /// `expected` is the normalized path, or `None` when the input must be refused.
    fn check(input: &str, expected: Option<&str>) {
        let parsed = ArtifactPath::parse(input);
        match (parsed, expected) {
            (Ok(path), Some(expected)) => assert_eq!(path.as_str(), expected, "input {input:?}"),
            (Err(error), None) => {
                assert_eq!(
                    error.code,
                    ErrorCode::InvalidParameterValue,
                    "input {input:?}"
                );
                assert_eq!(error.message, "Invalid path", "input {input:?}");
            }
            (Ok(path), None) => panic!("{input:?} was accepted as {path:?}"),
            (Err(error), Some(_)) => panic!("{input:?} was refused: {error}"),
        }
    }

    #[test]
    fn accepts_ordinary_paths() {
        check("", Some(""));
        check("a.txt", Some("a.txt"));
        check(
            "1/0123abcd/artifacts/model/MLmodel",
            Some("1/0123abcd/artifacts/model/MLmodel"),
        );
        check("dir/", Some("dir"));
        check("a/b/", Some("a/b"));
        check(".hidden", Some(".hidden"));
        check("a/.b/c..d/..e", Some("a/.b/c..d/..e"));
        check("with space/naïve ✓.txt", Some("with space/naïve ✓.txt"));
        check("100%.txt", Some("100%.txt"));
        check("%41%20b", Some("%41%20b"));
        check("time 12:30.txt", Some("time 12:30.txt"));
        check("a;b/c?d", Some("a;b/c?d"));
    }

    /// Security case 1 (relative traversal) and 5 (the same shapes on delete).
    #[test]
    fn refuses_relative_traversal() {
        check("..", None);
        check("../etc/passwd", None);
        check("../../../../etc/passwd", None);
        check("1/run/artifacts/../../../../etc/passwd", None);
        check("a/..", None);
        check("a/../b", None);
        check("a/../", None);
        check("./a", None);
        check("a/./b", None);
        check(".", None);
        check("...", None);
        check("a/..../b", None);
    }

    /// Security case 2: absolute paths.
    #[test]
    fn refuses_absolute_paths() {
        check("/", None);
        check("/etc/passwd", None);
        check("//etc/passwd", None);
        check("C:\\Windows\\win.ini", None);
        check("C:/Windows/win.ini", None);
        check("c:", None);
        check("z:foo", None);
        check("file:///etc/passwd", None);
        check("FILE:/etc/passwd", None);
        check("file:relative", None);
    }

    /// Security case 3: backslashes, as separators or in `file:` URIs.
    #[test]
    fn refuses_backslashes() {
        check("\\..\\..\\file", None);
        check("..\\..\\etc\\passwd", None);
        check("a\\b", None);
        check("dir/\\x", None);
        check("file:\\..\\..\\etc", None);
    }

    /// Security case 4: encodings left after the router's one decoding are attacks.
    #[test]
    fn refuses_encoded_separators_and_dots() {
        check("%2e%2e%2fetc%2fpasswd", None);
        check("%2E%2E%2Fetc", None);
        check("%2e%2E/secret", None);
        check("a%2fb", None);
        check("a%2Fb", None);
        check("a%5cb", None);
        check("a%5Cb", None);
        check("%2e", None);
        check("..%2f..%2fetc", None);
        check("a%00.txt", None);
        // Double encoding arrives here decoded once.
        check("%252e%252e%252f", Some("%252e%252e%252f"));
        check("%2e%2e%2f", None);
    }

    /// Security case 6: a fragment could cut the path short in a later URI parse.
    #[test]
    fn refuses_fragments() {
        check("a#/../../etc", None);
        check("#", None);
    }

    #[test]
    fn refuses_empty_segments_and_control_characters() {
        check("a//b", None);
        check("a/b//", None);
        check("a\0b", None);
        check("a\u{0}", None);
        check("a\nb", None);
        check("a\rb", None);
        check("a\tb", None);
        check("a\u{7f}b", None);
        check("a\u{85}b", None);
    }

    #[test]
    fn accessors() {
        let path = ArtifactPath::parse("1/run/artifacts/model/MLmodel").unwrap();
        assert_eq!(path.file_name(), Some("MLmodel"));
        assert_eq!(
            path.segments().collect::<Vec<_>>(),
            ["1", "run", "artifacts", "model", "MLmodel"]
        );
        assert_eq!(path.parent().unwrap().as_str(), "1/run/artifacts/model");
        assert!(!path.is_root());
        assert_eq!(path.to_string(), "1/run/artifacts/model/MLmodel");

        let root = ArtifactPath::root();
        assert!(root.is_root());
        assert_eq!(root.file_name(), None);
        assert_eq!(root.parent(), None);
        assert_eq!(root.segments().count(), 0);
        assert_eq!(
            ArtifactPath::parse("a").unwrap().parent(),
            Some(ArtifactPath::root())
        );
    }

    #[test]
    fn join_keeps_paths_valid() {
        let base = ArtifactPath::parse("1/run/artifacts").unwrap();
        let child = ArtifactPath::parse("dir/a.txt").unwrap();
        assert_eq!(base.join(&child).as_str(), "1/run/artifacts/dir/a.txt");
        assert_eq!(base.join(&ArtifactPath::root()), base);
        assert_eq!(ArtifactPath::root().join(&child), child);
    }

    /// Resolves `path` against a root the way a file system would, `..` popping, and says whether the
    /// result stays inside the root.
    fn stays_under_root(path: &ArtifactPath) -> bool {
        let mut depth: usize = 0;
        for segment in path.segments() {
            match segment {
                "." | "" => {}
                ".." => match depth.checked_sub(1) {
                    Some(parent_depth) => depth = parent_depth,
                    None => return false,
                },
                _ => depth += 1,
            }
        }
        true
    }

    fn hostile_string() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "a", "b.txt", ".", "..", "/", "//", "\\", "%2e", "%2E", "%2f", "%2F", "%5c", "%25",
            "%00", "%", "2e", "2f", "C:", "file:", "#", "\0", "\n", " ", "…", "é",
        ]);
        prop::collection::vec(pieces, 0..12).prop_map(|pieces| pieces.concat())
    }

    fn valid_segment() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_ .;:?=+-]{1,12}".prop_filter("a segment of dots", |segment| {
            !segment.chars().all(|character| character == '.')
        })
    }

    proptest! {
        #[test]
        fn accepted_paths_never_escape(raw in hostile_string()) {
            if let Ok(path) = ArtifactPath::parse(&raw) {
                prop_assert!(stays_under_root(&path), "{raw:?} escapes");
                for segment in path.segments() {
                    prop_assert!(!segment.is_empty() && segment != "." && segment != "..");
                    prop_assert!(!segment.contains('\\') && !segment.contains('\0'));
                }
                prop_assert!(!path.as_str().starts_with('/') && !path.as_str().ends_with('/'));
                prop_assert!(!path.as_str().to_ascii_lowercase().contains("%2e"));
                prop_assert_eq!(ArtifactPath::parse(path.as_str()).ok(), Some(path.clone()));
            }
        }

        #[test]
        fn ordinary_paths_round_trip(segments in prop::collection::vec(valid_segment(), 1..6)) {
            let raw = segments.join("/");
            let first_is_drive = raw.as_bytes().get(1) == Some(&b':')
                && raw.as_bytes().first().is_some_and(u8::is_ascii_alphabetic);
            prop_assume!(!first_is_drive && !raw.to_ascii_lowercase().starts_with("file:"));
            let path = ArtifactPath::parse(&raw).unwrap();
            prop_assert_eq!(path.as_str(), raw.as_str());
            prop_assert_eq!(path.segments().collect::<Vec<_>>(), segments.iter().map(String::as_str).collect::<Vec<_>>());
            let with_slash = ArtifactPath::parse(&format!("{raw}/")).unwrap();
            prop_assert_eq!(with_slash, path);
        }

        #[test]
        fn join_matches_parsing_the_concatenation(
            left in prop::collection::vec(valid_segment(), 1..4),
            right in prop::collection::vec(valid_segment(), 1..4),
        ) {
            let left_raw = format!("x_{}", left.join("/"));
            let right_raw = format!("y_{}", right.join("/"));
            let joined = ArtifactPath::parse(&left_raw).unwrap().join(&ArtifactPath::parse(&right_raw).unwrap());
            prop_assert_eq!(joined, ArtifactPath::parse(&format!("{left_raw}/{right_raw}")).unwrap());
        }
    }
}
