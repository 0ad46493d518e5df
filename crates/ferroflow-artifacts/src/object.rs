//! The `object_store` backend: S3, GCS, Azure or memory, under a key prefix.
//!
//! Object stores have no directories: a directory is any prefix that has objects below it, and an empty
//! one does not exist. Uploads go through `object_store`'s buffered writer, which switches to a multipart
//! upload past one part, so memory stays at a few parts whatever the size. An object only becomes
//! visible when the upload completes; a cancelled multipart upload may leave parts that the bucket's
//! lifecycle rules must clean.

use crate::{
    internal_error, no_such_artifact, not_a_file, root_not_deletable, ArtifactDownload,
    ArtifactEntry, ArtifactKind, ArtifactStore, UploadStream,
};
use async_trait::async_trait;
use ferroflow_core::artifact_path::ArtifactPath;
use ferroflow_core::{Error, Result};
use ferroflow_proto::ErrorCode;
use futures::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::{Path as ObjectPath, PathPart};
use object_store::ObjectStore;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// The size of one part of a multipart upload.
const PART_BYTES: usize = 8 * 1024 * 1024;

/// How many parts are uploaded at once.
const PART_CONCURRENCY: usize = 2;

/// Artifacts as objects under `prefix` in an object store.
#[derive(Debug, Clone)]
pub struct ObjectStoreArtifactStore {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

impl ObjectStoreArtifactStore {
    pub fn new(store: Arc<dyn ObjectStore>, prefix: ObjectPath) -> Self {
        Self { store, prefix }
    }

    /// The object key of `path`. Each segment is one key part, encoded by `object_store`.
    fn location(&self, path: &ArtifactPath) -> ObjectPath {
        self.prefix
            .parts()
            .chain(path.segments().map(PathPart::from))
            .collect()
    }

    /// Whether any object lies below `location`.
    async fn has_children(&self, location: &ObjectPath, path: &ArtifactPath) -> Result<bool> {
        match self.store.list(Some(location)).next().await {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(error)) => Err(internal_error("listing", path, error)),
        }
    }
}

#[async_trait]
impl ArtifactStore for ObjectStoreArtifactStore {
    async fn put(&self, path: &ArtifactPath, mut body: UploadStream) -> Result<()> {
        if path.is_root() {
            return Err(Error::invalid_parameter(
                "Artifact path must include a filename",
            ));
        }
        let mut writer =
            BufWriter::with_capacity(Arc::clone(&self.store), self.location(path), PART_BYTES)
                .with_max_concurrency(PART_CONCURRENCY);
        while let Some(chunk) = body.next().await {
            let failure = match chunk {
                Ok(bytes) => match writer.put(bytes).await {
                    Ok(()) => continue,
                    Err(error) => internal_error("writing", path, error),
                },
                Err(error) => {
                    tracing::debug!(artifact = %path, %error, "upload body failed");
                    Error::new(ErrorCode::BadRequest, "failed to read the upload body")
                }
            };
            if let Err(error) = writer.abort().await {
                tracing::warn!(artifact = %path, %error, "could not abort a multipart upload");
            }
            return Err(failure);
        }
        writer
            .shutdown()
            .await
            .map_err(|error| internal_error("writing", path, error))
    }

    async fn get(&self, path: &ArtifactPath) -> Result<ArtifactDownload> {
        let location = self.location(path);
        match self.store.get(&location).await {
            Ok(result) => {
                let size = result.meta.size;
                let stream = result.into_stream().map_err(std::io::Error::from).boxed();
                Ok(ArtifactDownload { size, stream })
            }
            Err(object_store::Error::NotFound { .. }) => {
                if path.is_root() || self.has_children(&location, path).await? {
                    Err(not_a_file(path))
                } else {
                    Err(no_such_artifact(path))
                }
            }
            Err(error) => Err(internal_error("reading", path, error)),
        }
    }

    async fn head(&self, path: &ArtifactPath) -> Result<Option<ArtifactKind>> {
        if path.is_root() {
            return Ok(Some(ArtifactKind::Directory));
        }
        let location = self.location(path);
        match self.store.head(&location).await {
            Ok(meta) => Ok(Some(ArtifactKind::File { size: meta.size })),
            Err(object_store::Error::NotFound { .. }) => Ok(self
                .has_children(&location, path)
                .await?
                .then_some(ArtifactKind::Directory)),
            Err(error) => Err(internal_error("reading", path, error)),
        }
    }

    async fn list(&self, path: &ArtifactPath) -> Result<Option<Vec<ArtifactEntry>>> {
        let location = self.location(path);
        let listing = self
            .store
            .list_with_delimiter(Some(&location))
            .await
            .map_err(|error| internal_error("listing", path, error))?;
        if listing.common_prefixes.is_empty() && listing.objects.is_empty() && !path.is_root() {
            return Ok(None);
        }
        let directories = listing.common_prefixes.iter().filter_map(|prefix| {
            Some(ArtifactEntry {
                name: decoded_file_name(prefix)?,
                is_dir: true,
                size: None,
            })
        });
        let files = listing.objects.iter().filter_map(|object| {
            Some(ArtifactEntry {
                name: decoded_file_name(&object.location)?,
                is_dir: false,
                size: Some(object.size),
            })
        });
        let mut entries: Vec<ArtifactEntry> = directories.chain(files).collect();
        entries.sort_by(|left, right| left.name.cmp(&right.name));
        Ok(Some(entries))
    }

    async fn delete(&self, path: &ArtifactPath) -> Result<()> {
        if path.is_root() {
            return Err(root_not_deletable());
        }
        let location = self.location(path);
        match self.store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(internal_error("deleting", path, error)),
        }
        let below = self
            .store
            .list(Some(&location))
            .map_ok(|meta| meta.location)
            .boxed();
        let mut deletions = self.store.delete_stream(below);
        while let Some(deletion) = deletions.next().await {
            match deletion {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(internal_error("deleting", path, error)),
            }
        }
        Ok(())
    }
}

/// The last part of an object key, decoded back to the artifact name it was made from.
fn decoded_file_name(location: &ObjectPath) -> Option<String> {
    let encoded = location.filename()?;
    Some(
        percent_encoding::percent_decode_str(encoded)
            .decode_utf8_lossy()
            .into_owned(),
    )
}
