//! The `object_store` backend: S3, GCS, Azure or memory, under a key prefix.
//!
//! Keys are MLflow's: the artifact `1/<run>/artifacts/a b.txt` under the prefix `mlflow` is the object
//! `mlflow/1/<run>/artifacts/a b.txt`, byte for byte, so a bucket written by `mlflow server` (or by
//! clients with `--no-serve-artifacts`) reads back and the other way round. Every key starts with the
//! prefix and each artifact segment is one key segment, so no path reaches outside the prefix.
//!
//! Object stores have no directories: a directory is any prefix that has objects below it, and an empty
//! one does not exist. Uploads go through `object_store`'s buffered writer, which switches to a multipart
//! upload past one part, so memory stays at a few parts whatever the size. An object only becomes
//! visible when the upload completes; a cancelled multipart upload may leave parts that the bucket's
//! lifecycle rules must clean.
//!
//! On S3 the store also offers [`MultipartUploads`]: the server starts the upload and presigns one URL
//! per part (valid for [`PRESIGNED_PART_TTL`], like boto3's default), the client PUTs the parts straight
//! to S3 and the server completes the upload.

use crate::{
    check_part_count, internal_error, no_such_artifact, not_a_file, ordered_parts,
    root_not_deletable, sigv4, ArtifactDownload, ArtifactEntry, ArtifactKind, ArtifactStore,
    CreatedMultipartUpload, MultipartUploadCredential, MultipartUploads, UploadStream,
    UploadedPart,
};
use async_trait::async_trait;
use ferroflow_core::artifact_path::{ArtifactPath, INVALID_PATH_MESSAGE};
use ferroflow_core::{Error, Result};
use ferroflow_proto::ErrorCode;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3;
use object_store::buffered::BufWriter;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::{Path as ObjectPath, PathPart};
use object_store::signer::Signer;
use object_store::ObjectStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How long the presigned URL of a part stays valid (boto3's default for `generate_presigned_url`).
pub const PRESIGNED_PART_TTL: Duration = Duration::from_secs(3600);

/// The size of one part of a multipart upload.
const PART_BYTES: usize = 8 * 1024 * 1024;

/// How many parts are uploaded at once.
const PART_CONCURRENCY: usize = 2;

/// Artifacts as objects under `prefix` in an object store.
#[derive(Debug, Clone)]
pub struct ObjectStoreArtifactStore {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// The same bucket as `store` when it is S3: presigned multipart uploads.
    s3: Option<S3Multipart>,
    /// Credential values configured for this store, scrubbed from error texts before they are logged.
    secrets: Arc<[String]>,
}

#[derive(Debug, Clone)]
struct S3Multipart {
    s3: Arc<AmazonS3>,
    /// The region `s3` signs for.
    region: String,
}

impl ObjectStoreArtifactStore {
    pub fn new(store: Arc<dyn ObjectStore>, prefix: ObjectPath) -> Self {
        Self {
            store,
            prefix,
            s3: None,
            secrets: Arc::from(Vec::new()),
        }
    }

    /// Credential values that must never reach a log line; they are replaced by `***` in errors.
    pub fn with_secrets(mut self, secrets: Vec<String>) -> Self {
        self.secrets = Arc::from(secrets);
        self
    }

    /// A store on an S3 bucket, with presigned multipart uploads. `region` must be the one `s3` was
    /// built with.
    pub fn s3(s3: AmazonS3, prefix: ObjectPath, region: String) -> Self {
        let s3 = Arc::new(s3);
        Self {
            store: Arc::clone(&s3) as Arc<dyn ObjectStore>,
            prefix,
            s3: Some(S3Multipart { s3, region }),
            secrets: Arc::from(Vec::new()),
        }
    }

    /// An object store failure as an internal error whose cause holds no credential.
    fn store_error(
        &self,
        action: &str,
        path: &ArtifactPath,
        error: impl std::fmt::Display,
    ) -> Error {
        internal_error(action, path, scrub(&error.to_string(), &self.secrets))
    }

    /// The object key of `path`: the prefix, then each segment verbatim as one key part (MLflow's key).
    fn location(&self, path: &ArtifactPath) -> Result<ObjectPath> {
        let mut parts: Vec<PathPart<'_>> = self.prefix.parts().collect();
        for segment in path.segments() {
            // `ArtifactPath` already refused what `PathPart` refuses (`/`, control characters, dots).
            let part = PathPart::parse(segment)
                .map_err(|_| Error::invalid_parameter(INVALID_PATH_MESSAGE))?;
            parts.push(part);
        }
        Ok(parts.into_iter().collect())
    }

    /// Whether any object lies below `location`.
    async fn has_children(&self, location: &ObjectPath, path: &ArtifactPath) -> Result<bool> {
        match self.store.list(Some(location)).next().await {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(error)) => Err(self.store_error("listing", path, error)),
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
            BufWriter::with_capacity(Arc::clone(&self.store), self.location(path)?, PART_BYTES)
                .with_max_concurrency(PART_CONCURRENCY);
        while let Some(chunk) = body.next().await {
            let failure = match chunk {
                Ok(bytes) => match writer.put(bytes).await {
                    Ok(()) => continue,
                    Err(error) => self.store_error("writing", path, error),
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
            .map_err(|error| self.store_error("writing", path, error))
    }

    async fn get(&self, path: &ArtifactPath) -> Result<ArtifactDownload> {
        let location = self.location(path)?;
        match self.store.get(&location).await {
            Ok(result) => {
                let size = result.meta.size;
                let secrets = Arc::clone(&self.secrets);
                let stream = result
                    .into_stream()
                    .map_err(move |error| {
                        std::io::Error::other(scrub(&error.to_string(), &secrets))
                    })
                    .boxed();
                Ok(ArtifactDownload { size, stream })
            }
            Err(object_store::Error::NotFound { .. }) => {
                if path.is_root() || self.has_children(&location, path).await? {
                    Err(not_a_file(path))
                } else {
                    Err(no_such_artifact(path))
                }
            }
            Err(error) => Err(self.store_error("reading", path, error)),
        }
    }

    async fn head(&self, path: &ArtifactPath) -> Result<Option<ArtifactKind>> {
        if path.is_root() {
            return Ok(Some(ArtifactKind::Directory));
        }
        let location = self.location(path)?;
        match self.store.head(&location).await {
            Ok(meta) => Ok(Some(ArtifactKind::File { size: meta.size })),
            Err(object_store::Error::NotFound { .. }) => Ok(self
                .has_children(&location, path)
                .await?
                .then_some(ArtifactKind::Directory)),
            Err(error) => Err(self.store_error("reading", path, error)),
        }
    }

    async fn list(&self, path: &ArtifactPath) -> Result<Option<Vec<ArtifactEntry>>> {
        let location = self.location(path)?;
        let listing = self
            .store
            .list_with_delimiter(Some(&location))
            .await
            .map_err(|error| self.store_error("listing", path, error))?;
        if listing.common_prefixes.is_empty() && listing.objects.is_empty() && !path.is_root() {
            return Ok(None);
        }
        let directories = listing.common_prefixes.iter().filter_map(|prefix| {
            Some(ArtifactEntry {
                name: prefix.filename()?.to_owned(),
                is_dir: true,
                size: None,
            })
        });
        // A directory marker (`dir/`, written by some tools) reads back as the directory itself.
        let files = listing
            .objects
            .iter()
            .filter(|object| object.location != location)
            .filter_map(|object| {
                Some(ArtifactEntry {
                    name: object.location.filename()?.to_owned(),
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
        let location = self.location(path)?;
        match self.store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(self.store_error("deleting", path, error)),
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
                Err(error) => return Err(self.store_error("deleting", path, error)),
            }
        }
        Ok(())
    }

    fn multipart_uploads(&self) -> Option<&dyn MultipartUploads> {
        self.s3.as_ref().map(|_| self as &dyn MultipartUploads)
    }
}

#[async_trait]
impl MultipartUploads for ObjectStoreArtifactStore {
    async fn create_multipart_upload(
        &self,
        path: &ArtifactPath,
        num_parts: u32,
    ) -> Result<CreatedMultipartUpload> {
        let s3 = self.presigning_s3()?;
        check_part_count(num_parts)?;
        if path.is_root() {
            return Err(Error::invalid_parameter(
                "Artifact path must include a filename",
            ));
        }
        let location = self.location(path)?;
        let upload_id = s3
            .s3
            .create_multipart(&location)
            .await
            .map_err(|error| self.store_error("starting a multipart upload of", path, error))?;
        // `object_store` presigns the object's URL; the part's parameters are signed here.
        let mut object_url = s3
            .s3
            .signed_url(http::Method::PUT, &location, PRESIGNED_PART_TTL)
            .await
            .map_err(|error| self.store_error("presigning", path, error))?;
        object_url.set_query(None);
        let credential = s3
            .s3
            .credentials()
            .get_credential()
            .await
            .map_err(|error| self.store_error("presigning", path, error))?;
        let now = chrono::Utc::now();
        let credentials = (1..=num_parts)
            .map(|part_number| {
                let mut url = object_url.clone();
                url.query_pairs_mut()
                    .append_pair("partNumber", &part_number.to_string())
                    .append_pair("uploadId", &upload_id);
                sigv4::presign(
                    &mut url,
                    "PUT",
                    &credential,
                    &s3.region,
                    now,
                    PRESIGNED_PART_TTL,
                );
                MultipartUploadCredential {
                    part_number,
                    url: url.into(),
                    headers: Vec::new(),
                }
            })
            .collect();
        Ok(CreatedMultipartUpload {
            upload_id,
            credentials,
        })
    }

    async fn complete_multipart_upload(
        &self,
        path: &ArtifactPath,
        upload_id: &str,
        parts: Vec<UploadedPart>,
    ) -> Result<()> {
        let s3 = self.presigning_s3()?;
        let parts = ordered_parts(parts)?
            .into_iter()
            .map(|part| PartId {
                content_id: part.etag,
            })
            .collect();
        let location = self.location(path)?;
        s3.s3
            .complete_multipart(&location, &upload_id.to_owned(), parts)
            .await
            .map_err(|error| self.multipart_error("completing", path, error))?;
        Ok(())
    }

    async fn abort_multipart_upload(&self, path: &ArtifactPath, upload_id: &str) -> Result<()> {
        let s3 = self.presigning_s3()?;
        let location = self.location(path)?;
        s3.s3
            .abort_multipart(&location, &upload_id.to_owned())
            .await
            .map_err(|error| self.multipart_error("aborting", path, error))
    }
}

impl ObjectStoreArtifactStore {
    fn presigning_s3(&self) -> Result<&S3Multipart> {
        self.s3.as_ref().ok_or_else(|| {
            Error::not_implemented(
                "Multipart upload is not supported for the current artifact repository",
            )
        })
    }
}

impl ObjectStoreArtifactStore {
    /// A failed complete or abort: an unknown upload id is the client's mistake, the rest is internal.
    fn multipart_error(
        &self,
        action: &str,
        path: &ArtifactPath,
        error: object_store::Error,
    ) -> Error {
        match error {
            object_store::Error::NotFound { .. } => {
                Error::not_found(format!("No such multipart upload for artifact '{path}'"))
            }
            error => self.store_error(&format!("{action} a multipart upload of"), path, error),
        }
    }
}

/// Where a cloud echoes request credentials in an error: S3's `SignatureDoesNotMatch` body repeats the
/// canonical request (with the `x-amz-security-token` header) and the string to sign; URLs may carry
/// presigned parameters or an Azure SAS.
const ECHOED_ELEMENTS: [&str; 4] = [
    "CanonicalRequest",
    "CanonicalRequestBytes",
    "StringToSign",
    "StringToSignBytes",
];
const ECHOED_VALUES: [&str; 4] = [
    "x-amz-security-token:",
    "x-amz-security-token=",
    "x-amz-signature=",
    "sig=",
];

/// `text` without credentials: each known secret value, the XML elements that echo a signed request,
/// and the values after [`ECHOED_VALUES`] become `***`.
pub(crate) fn scrub(text: &str, secrets: &[String]) -> String {
    let mut scrubbed = text.to_owned();
    for secret in secrets.iter().filter(|secret| secret.len() >= 4) {
        scrubbed = scrubbed.replace(secret.as_str(), "***");
    }
    for element in ECHOED_ELEMENTS {
        let (open, close) = (format!("<{element}>"), format!("</{element}>"));
        let mut searched = 0;
        while let Some(start) = scrubbed[searched..]
            .find(&open)
            .map(|index| index + searched)
        {
            let content = start + open.len();
            let end = scrubbed[content..]
                .find(&close)
                .map_or(scrubbed.len(), |index| index + content);
            scrubbed.replace_range(content..end, "***");
            searched = content + 3;
        }
    }
    for marker in ECHOED_VALUES {
        let mut searched = 0;
        loop {
            // ASCII lowercasing keeps byte offsets, so indices found here apply to `scrubbed`.
            let lowercase = scrubbed.to_ascii_lowercase();
            let Some(start) = lowercase[searched..]
                .find(marker)
                .map(|index| index + searched)
            else {
                break;
            };
            let value = start + marker.len();
            let end = scrubbed[value..]
                .find(|character: char| character.is_whitespace() || "&<\"'\n".contains(character))
                .map_or(scrubbed.len(), |index| index + value);
            scrubbed.replace_range(value..end, "***");
            searched = value + 3;
        }
    }
    scrubbed
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn credentials_are_scrubbed_from_error_texts() {
        let body = "Server returned non-2xx status code: 403 Forbidden: <Error><Code>SignatureDoesNotMatch\
            </Code><AWSAccessKeyId>AKID</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256\n20240101T000000Z\
            </StringToSign><CanonicalRequest>PUT\n/b/k\n\nhost:s3\nx-amz-security-token:TOKEN-VALUE\n\
            </CanonicalRequest></Error> url http://s3/b/k?X-Amz-Security-Token=TOKEN%2BVALUE&X-Amz-Signature=abc \
            https://account.blob.core.windows.net/c/b?sv=2024&sig=SAS%2Fsig&se=x secret SECRET-VALUE";
        let scrubbed = scrub(body, &["SECRET-VALUE".to_owned(), "".to_owned()]);
        for leaked in [
            "TOKEN",
            "SECRET-VALUE",
            "SAS%2Fsig",
            "abc",
            "20240101T000000Z",
        ] {
            assert!(!scrubbed.contains(leaked), "{leaked} in {scrubbed}");
        }
        assert!(scrubbed.contains("SignatureDoesNotMatch"), "{scrubbed}");
        assert!(scrubbed.contains("sv=2024&sig=***&se=x"), "{scrubbed}");
        assert_eq!(scrub("no secrets here", &[]), "no secrets here");
    }
}
