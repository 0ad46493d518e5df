//! Artifact storage behind one trait, [`ArtifactStore`], with a local file-system backend and an
//! `object_store` backend for the clouds.
//!
//! This crate owns the bytes of artifacts and nothing else: it knows no HTTP, no SQL and no runs. Every
//! path it takes is a [`ferroflow_core::artifact_path::ArtifactPath`], already checked for traversal; the
//! backends add what a string check cannot see (symlinks on the local disk).
//!
//! Bodies are streams both ways: an upload is written chunk by chunk and a download is read chunk by
//! chunk, so memory stays flat whatever the artifact's size.

mod local;
mod object;

use async_trait::async_trait;
use bytes::Bytes;
use ferroflow_core::artifact_path::ArtifactPath;
use ferroflow_core::{Error, Result};
use futures::stream::BoxStream;

pub use local::LocalArtifactStore;
pub use object::ObjectStoreArtifactStore;

/// The bytes of an upload, as they arrive from the client.
pub type UploadStream = BoxStream<'static, std::io::Result<Bytes>>;

/// The bytes of a download, read on demand.
pub type DownloadStream = BoxStream<'static, std::io::Result<Bytes>>;

/// An artifact opened for reading.
pub struct ArtifactDownload {
    /// The size in bytes, known before the first byte is read.
    pub size: u64,
    pub stream: DownloadStream,
}

impl std::fmt::Debug for ArtifactDownload {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ArtifactDownload")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// What is at a path: a file with its size, or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    File { size: u64 },
    Directory,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactEntry {
    /// The entry's name inside the listed directory (a basename, no `/`).
    pub name: String,
    pub is_dir: bool,
    /// The size in bytes of a file; `None` for a directory.
    pub size: Option<u64>,
}

/// Where artifacts are kept. Paths are relative to the store's root.
///
/// Errors carry MLflow codes: a missing artifact is RESOURCE_DOES_NOT_EXIST with `No such artifact`,
/// reading a directory as a file is INVALID_PARAMETER_VALUE, a path that resolves outside the root is
/// INVALID_PARAMETER_VALUE, and I/O failures are INTERNAL_ERROR with the cause kept for the log.
#[async_trait]
pub trait ArtifactStore: Send + Sync + 'static {
    /// Writes `body` to `path`, replacing any file there and creating the parent directories. Nothing
    /// is visible at `path` until the whole body has arrived: a failed or dropped upload leaves the old
    /// content, or nothing, behind.
    async fn put(&self, path: &ArtifactPath, body: UploadStream) -> Result<()>;

    /// Opens the file at `path` for streaming.
    async fn get(&self, path: &ArtifactPath) -> Result<ArtifactDownload>;

    /// What is at `path`, or `None` when nothing is.
    async fn head(&self, path: &ArtifactPath) -> Result<Option<ArtifactKind>>;

    /// The entries of the directory `path`, sorted by name; `None` when `path` is a file or missing.
    async fn list(&self, path: &ArtifactPath) -> Result<Option<Vec<ArtifactEntry>>>;

    /// Deletes the file or, recursively, the directory at `path`. A missing path is not an error. The
    /// root itself cannot be deleted.
    async fn delete(&self, path: &ArtifactPath) -> Result<()>;
}

/// MLflow's message for an artifact that is not there.
pub fn no_such_artifact(path: &ArtifactPath) -> Error {
    Error::not_found(format!("No such artifact: '{path}'"))
}

/// MLflow's message for downloading a directory.
pub fn not_a_file(path: &ArtifactPath) -> Error {
    Error::invalid_parameter(format!(
        "Artifact path refers to a directory, not a file: '{path}'"
    ))
}

fn root_not_deletable() -> Error {
    Error::invalid_parameter("the artifact root cannot be deleted")
}

/// Builds an [`Error::internal`] whose log line names what failed.
fn internal_error(action: &str, path: &ArtifactPath, cause: impl std::fmt::Display) -> Error {
    Error::internal(std::io::Error::other(format!(
        "{action} artifact '{path}': {cause}"
    )))
}
