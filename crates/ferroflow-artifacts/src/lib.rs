//! Artifact storage behind one trait, [`ArtifactStore`], with a local file-system backend and an
//! `object_store` backend for the clouds (S3, GCS, Azure Blob).
//!
//! This crate owns the bytes of artifacts and nothing else: it knows no HTTP, no SQL and no runs. Every
//! path it takes is a [`ferroflow_core::artifact_path::ArtifactPath`], already checked for traversal; the
//! backends add what a string check cannot see (symlinks on the local disk). [`open_artifact_store`] turns
//! an artifact location (`./mlartifacts`, `file://…`, `s3://…`, `gs://…`, `wasbs://…`, `abfss://…`) into
//! a store, with the credentials the [`CloudSettings`] captured from the environment at start-up.
//!
//! Bodies are streams both ways: an upload is written chunk by chunk and a download is read chunk by
//! chunk, so memory stays flat whatever the artifact's size. On S3 a large file can also skip the server:
//! [`MultipartUploads`] hands the client presigned URLs for its parts.

mod destination;
mod local;
mod object;
mod run_location;
mod sigv4;

use async_trait::async_trait;
use bytes::Bytes;
use ferroflow_core::artifact_path::ArtifactPath;
use ferroflow_core::{Error, Result};
use ferroflow_proto::ErrorCode;
use futures::stream::BoxStream;

pub use destination::{open_artifact_store, ArtifactLocation, CloudSettings};
pub use local::LocalArtifactStore;
pub use object::ObjectStoreArtifactStore;
pub use run_location::{local_path, relative_artifact_path, RunArtifactLocation};

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
/// INVALID_PARAMETER_VALUE, a full disk (local store) is RESOURCE_EXHAUSTED, and other I/O failures are
/// INTERNAL_ERROR with the cause kept for the log.
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

    /// Presigned multipart uploads, when this backend offers them (S3); `None` makes the proxy answer
    /// NOT_IMPLEMENTED, and the client falls back to one streamed PUT.
    fn multipart_uploads(&self) -> Option<&dyn MultipartUploads> {
        None
    }
}

/// The most parts one multipart upload may have (S3's limit).
pub const MAX_MULTIPART_PARTS: u32 = 10_000;

/// Where the client sends one part of a multipart upload: a presigned URL and the headers to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartUploadCredential {
    /// 1-based.
    pub part_number: u32,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// A multipart upload that was started: its id and one credential per part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedMultipartUpload {
    pub upload_id: String,
    pub credentials: Vec<MultipartUploadCredential>,
}

/// A part the client uploaded, as it reports it when completing the upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    pub part_number: u32,
    /// The `ETag` the object store answered to the part's PUT.
    pub etag: String,
}

/// Multipart uploads whose parts the client sends straight to the object store (MLflow's
/// `MultipartUploadMixin`): the server starts the upload, presigns one URL per part, and later completes
/// or aborts it. The object appears at `path` only when the upload completes.
#[async_trait]
pub trait MultipartUploads: Send + Sync {
    /// Starts an upload to `path` with `num_parts` parts (1 to [`MAX_MULTIPART_PARTS`]).
    async fn create_multipart_upload(
        &self,
        path: &ArtifactPath,
        num_parts: u32,
    ) -> Result<CreatedMultipartUpload>;

    /// Joins the parts into the object at `path`. `parts` must be numbered 1 to n with no gap; their
    /// order in the request does not matter.
    async fn complete_multipart_upload(
        &self,
        path: &ArtifactPath,
        upload_id: &str,
        parts: Vec<UploadedPart>,
    ) -> Result<()>;

    /// Cancels the upload and drops the parts already sent.
    async fn abort_multipart_upload(&self, path: &ArtifactPath, upload_id: &str) -> Result<()>;
}

/// The parts of a completed upload in order, checked to be numbered 1 to n.
fn ordered_parts(mut parts: Vec<UploadedPart>) -> Result<Vec<UploadedPart>> {
    parts.sort_by_key(|part| part.part_number);
    if parts.is_empty() || parts.len() > MAX_MULTIPART_PARTS as usize {
        return Err(Error::invalid_parameter(format!(
            "a multipart upload needs between 1 and {MAX_MULTIPART_PARTS} parts"
        )));
    }
    for (index, part) in parts.iter().enumerate() {
        if part.part_number as usize != index + 1 {
            return Err(Error::invalid_parameter(
                "the parts of a multipart upload must be numbered from 1 without gaps or repeats",
            ));
        }
        if part.etag.is_empty() {
            return Err(Error::invalid_parameter(format!(
                "part {} of the multipart upload has no etag",
                part.part_number
            )));
        }
    }
    Ok(parts)
}

fn check_part_count(num_parts: u32) -> Result<()> {
    if (1..=MAX_MULTIPART_PARTS).contains(&num_parts) {
        Ok(())
    } else {
        Err(Error::invalid_parameter(format!(
            "num_parts must be between 1 and {MAX_MULTIPART_PARTS}, got {num_parts}"
        )))
    }
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

/// A write refused because the artifact store's disk (or quota) is full: RESOURCE_EXHAUSTED, the code
/// MLflow's client knows for an exhausted resource, with a message that says what happened. The cause is
/// kept for the server log.
fn out_of_space(path: &ArtifactPath, cause: std::io::Error) -> Error {
    Error {
        code: ErrorCode::ResourceExhausted,
        message: format!("No space left on the artifact store to write '{path}'"),
        source: Some(Box::new(std::io::Error::new(
            cause.kind(),
            format!("writing artifact '{path}': {cause}"),
        ))),
    }
}

/// Builds an [`Error::internal`] whose log line names what failed.
fn internal_error(action: &str, path: &ArtifactPath, cause: impl std::fmt::Display) -> Error {
    Error::internal(std::io::Error::other(format!(
        "{action} artifact '{path}': {cause}"
    )))
}
