//! The local file-system backend, on `tokio::fs` and `std::fs`.
//!
//! `object_store`'s local store is not used here for three reasons: it follows symlinks out of its root,
//! it percent-encodes file names on disk (so a directory written by MLflow would not read back), and it
//! cannot check each directory it creates. This backend keeps MLflow's on-disk layout exactly: an
//! artifact `1/<run>/artifacts/a b.txt` is the file `<root>/1/<run>/artifacts/a b.txt`.
//!
//! Symlinks: every path is resolved and must stay under the canonical root, and directories are created
//! one component at a time so that no directory is ever made through a link that leaves the root.
//! Uploads go to a temporary file in the destination directory (named like MLflow's,
//! `.artifact.uploading.*`, hidden from listings) and are renamed into place once complete.

use crate::{
    internal_error, no_such_artifact, not_a_file, out_of_space, root_not_deletable,
    ArtifactDownload, ArtifactEntry, ArtifactKind, ArtifactStore, UploadStream,
};
use async_trait::async_trait;
use ferroflow_core::artifact_path::ArtifactPath;
use ferroflow_core::{Error, Result};
use ferroflow_proto::ErrorCode;
use futures::StreamExt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// MLflow's prefix for files being uploaded; names with it are reserved and never listed.
const TEMP_ARTIFACT_PREFIX: &str = ".artifact.uploading.";

/// How much a download reads at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// How much an upload buffers before writing.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// Artifacts as files under a local directory.
#[derive(Debug, Clone)]
pub struct LocalArtifactStore {
    /// The canonical root: absolute, with no symlink in it.
    root: Arc<PathBuf>,
}

impl LocalArtifactStore {
    /// Opens the store at `root`, creating the directory when it is missing.
    pub async fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        tokio::fs::create_dir_all(&root)
            .await
            .map_err(|error| root_error(&root, error))?;
        let canonical_root = tokio::fs::canonicalize(&root)
            .await
            .map_err(|error| root_error(&root, error))?;
        Ok(Self {
            root: Arc::new(canonical_root),
        })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs blocking file-system work with the root on the blocking pool.
    async fn blocking<Output: Send + 'static>(
        &self,
        work: impl FnOnce(&Path) -> Result<Output> + Send + 'static,
    ) -> Result<Output> {
        let root = Arc::clone(&self.root);
        tokio::task::spawn_blocking(move || work(&root))
            .await
            .map_err(Error::internal)?
    }
}

#[async_trait]
impl ArtifactStore for LocalArtifactStore {
    async fn put(&self, path: &ArtifactPath, mut body: UploadStream) -> Result<()> {
        let Some(file_name) = path.file_name().map(str::to_owned) else {
            return Err(Error::invalid_parameter(
                "Artifact path must include a filename",
            ));
        };
        if file_name.starts_with(TEMP_ARTIFACT_PREFIX) {
            return Err(Error::invalid_parameter(format!(
                "Invalid artifact file name: '{file_name}'. Artifact names starting with \
                 '{TEMP_ARTIFACT_PREFIX}' are reserved."
            )));
        }
        let artifact = path.clone();
        // Declared before the temporary file, so dropped after it: a failed upload removes its file,
        // then the directories it created.
        let (directory, created_directories) = self
            .blocking(move |root| prepare_parent_directory(root, &artifact))
            .await?;
        let destination = directory.join(&file_name);
        if let Ok(metadata) = tokio::fs::symlink_metadata(&destination).await {
            if metadata.is_dir() {
                return Err(Error::invalid_parameter(format!(
                    "cannot write artifact '{path}': it is a directory"
                )));
            }
        }

        let temporary = TemporaryFile::new(directory.join(format!(
            "{TEMP_ARTIFACT_PREFIX}{}",
            uuid::Uuid::new_v4().simple()
        )));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temporary.path())
            .await
            .map_err(|error| write_error("creating a temporary file for", path, error))?;
        let mut writer = tokio::io::BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|error| {
                tracing::debug!(artifact = %path, %error, "upload body failed");
                Error::new(ErrorCode::BadRequest, "failed to read the upload body")
            })?;
            writer
                .write_all(&chunk)
                .await
                .map_err(|error| write_error("writing", path, error))?;
        }
        writer
            .flush()
            .await
            .map_err(|error| write_error("writing", path, error))?;
        let file = writer.into_inner();
        file.sync_data()
            .await
            .map_err(|error| write_error("writing", path, error))?;
        drop(file);
        tokio::fs::rename(temporary.path(), &destination)
            .await
            .map_err(|error| write_error("publishing", path, error))?;
        temporary.keep();
        created_directories.keep();
        Ok(())
    }

    async fn get(&self, path: &ArtifactPath) -> Result<ArtifactDownload> {
        let artifact = path.clone();
        let resolved = self
            .blocking(move |root| {
                let resolved = resolve_existing(root, &artifact)?
                    .ok_or_else(|| no_such_artifact(&artifact))?;
                let metadata = std::fs::metadata(&resolved)
                    .map_err(|error| io_error("reading", &artifact, error))?;
                if metadata.is_dir() {
                    return Err(not_a_file(&artifact));
                }
                if !metadata.is_file() {
                    // A FIFO or device: opening it could block or never end.
                    return Err(Error::invalid_parameter(format!(
                        "artifact '{artifact}' is not a regular file"
                    )));
                }
                Ok(resolved)
            })
            .await?;
        let file = tokio::fs::File::open(&resolved)
            .await
            .map_err(|error| io_error("opening", path, error))?;
        let metadata = file
            .metadata()
            .await
            .map_err(|error| io_error("reading", path, error))?;
        if !metadata.is_file() {
            return Err(not_a_file(path));
        }
        let size = metadata.len();
        // `take` keeps the body at the announced size even if the file grows while it is read.
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(size), READ_CHUNK_BYTES);
        Ok(ArtifactDownload {
            size,
            stream: stream.boxed(),
        })
    }

    async fn head(&self, path: &ArtifactPath) -> Result<Option<ArtifactKind>> {
        let artifact = path.clone();
        self.blocking(move |root| {
            let Some(resolved) = resolve_existing(root, &artifact)? else {
                return Ok(None);
            };
            let metadata =
                std::fs::metadata(&resolved).map_err(|error| io_error("reading", &artifact, error));
            Ok(match metadata {
                Ok(metadata) if metadata.is_dir() => Some(ArtifactKind::Directory),
                Ok(metadata) if metadata.is_file() => Some(ArtifactKind::File {
                    size: metadata.len(),
                }),
                Ok(_) => None,
                Err(error) if error.code == ErrorCode::ResourceDoesNotExist => None,
                Err(error) => return Err(error),
            })
        })
        .await
    }

    async fn list(&self, path: &ArtifactPath) -> Result<Option<Vec<ArtifactEntry>>> {
        let artifact = path.clone();
        self.blocking(move |root| list_directory(root, &artifact))
            .await
    }

    async fn delete(&self, path: &ArtifactPath) -> Result<()> {
        let (Some(parent), Some(file_name)) = (path.parent(), path.file_name().map(str::to_owned))
        else {
            return Err(root_not_deletable());
        };
        let artifact = path.clone();
        self.blocking(move |root| {
            let Some(parent_directory) = resolve_existing(root, &parent)? else {
                return Ok(());
            };
            // The parent is inside the root and the name is a plain segment, so the target is strictly
            // inside the root. A symlink there is removed itself; its target is never touched.
            let target = parent_directory.join(file_name);
            let metadata = match std::fs::symlink_metadata(&target) {
                Ok(metadata) => metadata,
                Err(error) if is_missing(&error) => return Ok(()),
                Err(error) => return Err(internal_error("deleting", &artifact, error)),
            };
            let removed = if metadata.is_dir() {
                // `remove_dir_all` does not follow symlinks inside the tree.
                std::fs::remove_dir_all(&target)
            } else {
                std::fs::remove_file(&target)
            };
            match removed {
                Ok(()) => Ok(()),
                Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
                Err(error) => Err(internal_error("deleting", &artifact, error)),
            }
        })
        .await
    }
}

/// A temporary upload file, removed when dropped unless kept. Dropping happens when an upload fails or
/// its request is cancelled; the removal is one `unlink`, cheap enough to run in place.
struct TemporaryFile {
    path: PathBuf,
    keep: bool,
}

impl TemporaryFile {
    fn new(path: PathBuf) -> Self {
        Self { path, keep: false }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// The file has been renamed into place: nothing is left to remove.
    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        if !self.keep {
            if let Err(error) = std::fs::remove_file(&self.path) {
                if error.kind() != ErrorKind::NotFound {
                    tracing::warn!(path = %self.path.display(), %error, "could not remove a temporary upload");
                }
            }
        }
    }
}

/// The directories one upload created, deepest last. Unless kept, they are removed again when dropped,
/// deepest first and only while empty (another upload may have written into one meanwhile), so that a
/// failed upload leaves no empty directory behind in listings.
struct CreatedDirectories {
    paths: Vec<PathBuf>,
    keep: bool,
}

impl CreatedDirectories {
    fn new() -> Self {
        Self {
            paths: Vec::new(),
            keep: false,
        }
    }

    /// The upload succeeded: the directories stay.
    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for CreatedDirectories {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for directory in self.paths.iter().rev() {
            if std::fs::remove_dir(directory).is_err() {
                break;
            }
        }
    }
}

/// Whether a write failed because the file system (or the user's quota on it) is full.
fn is_storage_full(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded
    )
}

/// A failed write as the client should see it: a full disk is RESOURCE_EXHAUSTED with a message that says
/// so; anything else is an internal error.
fn write_error(action: &str, path: &ArtifactPath, error: std::io::Error) -> Error {
    if is_storage_full(&error) {
        out_of_space(path, error)
    } else {
        internal_error(action, path, error)
    }
}

fn root_error(root: &Path, error: std::io::Error) -> Error {
    Error::internal(std::io::Error::new(
        error.kind(),
        format!("opening the artifact root {}: {error}", root.display()),
    ))
}

/// The path `root/<segments>` without touching the disk.
fn lexical_path(root: &Path, path: &ArtifactPath) -> PathBuf {
    let mut joined = root.to_path_buf();
    joined.extend(path.segments());
    joined
}

/// Missing, or a component that should be a directory is a file.
fn is_missing(error: &std::io::Error) -> bool {
    matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

fn outside_root() -> Error {
    Error::invalid_parameter("Invalid path: resolved path is outside the artifact directory")
}

/// An I/O error as the client should see it: a vanished file is RESOURCE_DOES_NOT_EXIST.
fn io_error(action: &str, path: &ArtifactPath, error: std::io::Error) -> Error {
    if is_missing(&error) {
        no_such_artifact(path)
    } else {
        internal_error(action, path, error)
    }
}

/// The canonical path of `path`, all symlinks followed, or `None` when nothing is there. A path that
/// resolves outside the root is refused.
fn resolve_existing(root: &Path, path: &ArtifactPath) -> Result<Option<PathBuf>> {
    match std::fs::canonicalize(lexical_path(root, path)) {
        Ok(canonical) if canonical.starts_with(root) => Ok(Some(canonical)),
        Ok(_) => Err(outside_root()),
        Err(error) if is_missing(&error) => Ok(None),
        Err(error) => Err(internal_error("resolving", path, error)),
    }
}

/// Creates the parent directories of `path` one at a time, refusing to pass through a symlink that
/// leaves the root or through a file, and returns the canonical parent directory with the directories
/// it created (removed again if the upload fails, or here if a later one cannot be made).
fn prepare_parent_directory(
    root: &Path,
    path: &ArtifactPath,
) -> Result<(PathBuf, CreatedDirectories)> {
    let parent = path.parent().unwrap_or_default();
    let not_a_directory = || {
        Error::invalid_parameter(format!(
            "cannot write artifact '{path}': a parent path is a file"
        ))
    };
    let mut created = CreatedDirectories::new();
    let mut current = root.to_path_buf();
    for segment in parent.segments() {
        let next = current.join(segment);
        let metadata = match std::fs::symlink_metadata(&next) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == ErrorKind::NotFound => match std::fs::create_dir(&next) {
                Ok(()) => {
                    created.paths.push(next.clone());
                    current = next;
                    continue;
                }
                // Another upload made it first: look at what is there now.
                Err(error) if error.kind() == ErrorKind::AlreadyExists => {
                    std::fs::symlink_metadata(&next)
                        .map_err(|error| internal_error("creating directories for", path, error))?
                }
                Err(error) => return Err(write_error("creating directories for", path, error)),
            },
            Err(error) => return Err(internal_error("creating directories for", path, error)),
        };
        if metadata.file_type().is_symlink() {
            let target = match std::fs::canonicalize(&next) {
                Ok(target) => target,
                Err(error) if is_missing(&error) => return Err(not_a_directory()),
                Err(error) => return Err(internal_error("resolving", path, error)),
            };
            if !target.starts_with(root) {
                return Err(outside_root());
            }
            if !target.is_dir() {
                return Err(not_a_directory());
            }
            current = target;
        } else if metadata.is_dir() {
            current = next;
        } else {
            return Err(not_a_directory());
        }
    }
    Ok((current, created))
}

fn list_directory(root: &Path, path: &ArtifactPath) -> Result<Option<Vec<ArtifactEntry>>> {
    let Some(directory) = resolve_existing(root, path)? else {
        return Ok(None);
    };
    let entries = match std::fs::read_dir(&directory) {
        Ok(entries) => entries,
        Err(error) if is_missing(&error) => return Ok(None),
        Err(error) => return Err(internal_error("listing", path, error)),
    };
    let mut listing = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| internal_error("listing", path, error))?;
        let Ok(name) = entry.file_name().into_string() else {
            tracing::warn!(directory = %directory.display(), "skipping an artifact whose name is not UTF-8");
            continue;
        };
        if name.starts_with(TEMP_ARTIFACT_PREFIX) {
            continue;
        }
        let Some(metadata) = entry_metadata(root, &entry) else {
            continue;
        };
        if metadata.is_dir() {
            listing.push(ArtifactEntry {
                name,
                is_dir: true,
                size: None,
            });
        } else if metadata.is_file() {
            listing.push(ArtifactEntry {
                name,
                is_dir: false,
                size: Some(metadata.len()),
            });
        }
    }
    listing.sort_by(|left, right| left.name.cmp(&right.name));
    Ok(Some(listing))
}

/// The metadata of a listed entry, following a symlink only when it stays under the root. Entries that
/// vanish, dangle or point outside are left out of the listing.
fn entry_metadata(root: &Path, entry: &std::fs::DirEntry) -> Option<std::fs::Metadata> {
    let file_type = entry.file_type().ok()?;
    if !file_type.is_symlink() {
        return entry.metadata().ok();
    }
    let target = std::fs::canonicalize(entry.path()).ok()?;
    if !target.starts_with(root) {
        return None;
    }
    std::fs::metadata(target).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_resource_exhausted_with_a_clear_message() {
        let artifact = ArtifactPath::parse("1/run/artifacts/model.bin").unwrap();
        for kind in [ErrorKind::StorageFull, ErrorKind::QuotaExceeded] {
            let error = write_error("writing", &artifact, std::io::Error::from(kind));
            assert_eq!(error.code, ErrorCode::ResourceExhausted);
            assert_eq!(
                error.message,
                "No space left on the artifact store to write '1/run/artifacts/model.bin'"
            );
            assert!(error.source.is_some(), "the cause is kept for the log");
        }
        let error = write_error(
            "writing",
            &artifact,
            std::io::Error::from(ErrorKind::PermissionDenied),
        );
        assert_eq!(error.code, ErrorCode::InternalError);
        assert_eq!(error.message, "internal error");
    }
}
