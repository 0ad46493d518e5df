//! Where a run's (or logged model's) `artifact_uri` points, as the server and `ferroflow gc` read it: under
//! the served artifact root, in a local folder, in an object store, or somewhere this process must not
//! reach.

use ferroflow_core::artifact_path::ArtifactPath;
use ferroflow_core::Error;
use std::path::{Component, PathBuf};

/// Where a run's artifacts live, from its `artifact_uri`.
#[derive(Debug, Clone, PartialEq)]
pub enum RunArtifactLocation {
    /// Under the served artifact root: `mlflow-artifacts:/1/<run>/artifacts`, or an HTTP URL of this
    /// API (`http://host/api/2.0/mlflow-artifacts/artifacts/1/<run>/artifacts`).
    Proxied(ArtifactPath),
    /// An absolute local directory, from `file://` or a plain path.
    Local(PathBuf),
    /// An object store location (`s3://`, `gs://`, `wasbs://`, `abfss://`), readable when it lies under a
    /// cloud `--default-artifact-root`.
    Cloud,
    /// A location this server does not read (other schemes, other hosts).
    Unsupported,
}

impl RunArtifactLocation {
    /// Classifies `artifact_uri`; a URI whose path escapes (`..`, encoded separators) or that carries a
    /// query, fragment or control character is INVALID_PARAMETER_VALUE.
    pub fn parse(artifact_uri: &str) -> Result<Self, Error> {
        // A query or fragment could cut a later parse of the path short (MLflow CVE-2024-1593 and kin).
        if artifact_uri.contains(['?', '#']) || artifact_uri.chars().any(char::is_control) {
            return Err(Error::invalid_parameter(
                ferroflow_core::artifact_path::INVALID_PATH_MESSAGE,
            ));
        }
        let Some((scheme, rest)) = split_scheme(artifact_uri) else {
            return Ok(local_path(artifact_uri, false).map_or(Self::Unsupported, Self::Local));
        };
        match scheme.as_str() {
            "mlflow-artifacts" => {
                let path = strip_authority(rest).map_or(rest, |(_, path)| path);
                Ok(Self::Proxied(ArtifactPath::parse(
                    path.trim_start_matches('/'),
                )?))
            }
            "http" | "https" => {
                const ANCHOR: &str = "/api/2.0/mlflow-artifacts/artifacts/";
                let Some((_, path)) = strip_authority(rest) else {
                    return Ok(Self::Unsupported);
                };
                match path.split_once(ANCHOR) {
                    Some(("", root)) => Ok(Self::Proxied(ArtifactPath::parse(
                        root.trim_start_matches('/'),
                    )?)),
                    _ => Ok(Self::Unsupported),
                }
            }
            "file" => Ok(local_path(artifact_uri, false).map_or(Self::Unsupported, Self::Local)),
            "s3" | "gs" | "wasbs" | "abfss" => Ok(Self::Cloud),
            _ => Ok(Self::Unsupported),
        }
    }
}

/// `scheme:rest` with the scheme lowercased, when `uri` starts with a URI scheme of two or more
/// characters (one letter is a Windows drive).
fn split_scheme(uri: &str) -> Option<(String, &str)> {
    let (scheme, rest) = uri.split_once(':')?;
    let mut characters = scheme.chars();
    let starts_with_letter = characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic());
    let valid = starts_with_letter
        && scheme.len() >= 2
        && characters
            .all(|character| character.is_ascii_alphanumeric() || "+-.".contains(character));
    valid.then(|| (scheme.to_ascii_lowercase(), rest))
}

/// Splits `//authority/path` into the authority and `/path`; `None` when `rest` has no authority.
fn strip_authority(rest: &str) -> Option<(&str, &str)> {
    let after_slashes = rest.strip_prefix("//")?;
    Some(match after_slashes.find('/') {
        Some(index) => after_slashes.split_at(index),
        None => (after_slashes, ""),
    })
}

/// The local directory named by a `file:` URI or a plain path. A plain relative path is accepted only
/// for the configured root (`allow_relative`) and made absolute against the working directory.
pub fn local_path(location: &str, allow_relative: bool) -> Option<PathBuf> {
    let path = match split_scheme(location) {
        Some((scheme, rest)) if scheme == "file" => {
            let path = match strip_authority(rest) {
                Some(("" | "localhost", path)) => path,
                Some(_) => return None,
                None => rest,
            };
            // `file:` URIs are percent-encoded (`Path.as_uri()`): decode them once.
            PathBuf::from(
                percent_encoding::percent_decode_str(path)
                    .decode_utf8()
                    .ok()?
                    .into_owned(),
            )
        }
        Some(_) => return None,
        None => PathBuf::from(location),
    };
    if path.is_absolute() {
        Some(path)
    } else if allow_relative && !location.is_empty() {
        std::path::absolute(path).ok()
    } else {
        None
    }
}

/// A relative file-system path, as found under the configured root, as an [`ArtifactPath`].
pub fn relative_artifact_path(relative: &std::path::Path) -> Result<ArtifactPath, Error> {
    let mut segments = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(segment) => segments.push(segment.to_str().ok_or_else(invalid_path)?),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(invalid_path())
            }
        }
    }
    ArtifactPath::parse(&segments.join("/"))
}

fn invalid_path() -> Error {
    Error::invalid_parameter(ferroflow_core::artifact_path::INVALID_PATH_MESSAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_location(artifact_uri: &str, expected: Result<RunArtifactLocation, ()>) {
        let parsed = RunArtifactLocation::parse(artifact_uri).map_err(|_| ());
        assert_eq!(parsed, expected, "{artifact_uri}");
    }

    #[test]
    fn run_artifact_locations() {
        let proxied = |path: &str| {
            Ok(RunArtifactLocation::Proxied(
                ArtifactPath::parse(path).unwrap(),
            ))
        };
        let local = |path: &str| Ok(RunArtifactLocation::Local(PathBuf::from(path)));
        let unsupported = Ok(RunArtifactLocation::Unsupported);
        check_location(
            "mlflow-artifacts:/1/run/artifacts",
            proxied("1/run/artifacts"),
        );
        check_location(
            "mlflow-artifacts:1/run/artifacts",
            proxied("1/run/artifacts"),
        );
        check_location(
            "mlflow-artifacts://host:5000/1/run/artifacts",
            proxied("1/run/artifacts"),
        );
        check_location("MLFLOW-ARTIFACTS:/1", proxied("1"));
        check_location("mlflow-artifacts:", proxied(""));
        check_location(
            "http://host/api/2.0/mlflow-artifacts/artifacts/1/run/artifacts",
            proxied("1/run/artifacts"),
        );
        check_location(
            "https://host:443/api/2.0/mlflow-artifacts/artifacts/1",
            proxied("1"),
        );
        check_location(
            "http://host/prefix/api/2.0/mlflow-artifacts/artifacts/1",
            unsupported.clone(),
        );
        check_location("http://host/other", unsupported.clone());
        check_location(
            "file:///data/mlruns/1/run/artifacts",
            local("/data/mlruns/1/run/artifacts"),
        );
        check_location("file://localhost/data/a%20b", local("/data/a b"));
        check_location("file:/data/mlruns", local("/data/mlruns"));
        check_location("/data/mlruns/1", local("/data/mlruns/1"));
        check_location("file://other-host/data", unsupported.clone());
        check_location("relative/mlruns", unsupported.clone());
        check_location(
            "s3://bucket/1/run/artifacts",
            Ok(RunArtifactLocation::Cloud),
        );
        check_location("gs://bucket/x", Ok(RunArtifactLocation::Cloud));
        check_location(
            "wasbs://c@account.blob.core.windows.net/x",
            Ok(RunArtifactLocation::Cloud),
        );
        check_location("hdfs://namenode/x", unsupported.clone());
        check_location("C:\\mlruns", unsupported.clone());
        // Security case 6 and 7: traversal, queries and fragments in stored URIs.
        check_location("mlflow-artifacts:/../../etc", Err(()));
        check_location("mlflow-artifacts://host/..%2f..%2fetc", Err(()));
        check_location(
            "http://host/api/2.0/mlflow-artifacts/artifacts/../../etc",
            Err(()),
        );
        check_location("http:///#/../../etc/", Err(()));
        check_location("mlflow-artifacts:/1?x=/../..", Err(()));
        check_location("mlflow-artifacts:/1\0", Err(()));
    }
}
