//! From an artifact location string to a store: `--artifacts-destination`, and a cloud
//! `--default-artifact-root` that the tracking-side listing reads.
//!
//! # Locations
//!
//! ```text
//! ./mlartifacts, /data/mlartifacts, file:///data/mlartifacts     a local folder (LocalArtifactStore)
//! s3://<bucket>[/<prefix>]                                         Amazon S3 or an S3-compatible server
//! gs://<bucket>[/<prefix>]                                         Google Cloud Storage
//! wasbs://<container>@<account>.blob.core.windows.net[/<prefix>]   Azure Blob Storage
//! abfss://<filesystem>@<account>.dfs.core.windows.net[/<prefix>]   Azure Data Lake Gen2 (blob API)
//! ```
//!
//! Azure also takes the `chinacloudapi.cn` and `usgovcloudapi.net` clouds, as MLflow does. A prefix is
//! split on `/`; empty, `.` and `..` segments are refused, so no key can leave it.
//!
//! # Credentials
//!
//! [`CloudSettings`] copies the variables MLflow's artifact repositories read, once, at start-up:
//!
//! - S3: `MLFLOW_S3_ENDPOINT_URL`, `MLFLOW_S3_IGNORE_TLS`, `MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE`,
//!   `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_DEFAULT_REGION` (then
//!   `AWS_REGION`, then `us-east-1`); every other `AWS_*` variable `object_store` knows (web identity,
//!   ECS and EKS credentials, instance metadata) is passed through.
//! - GCS: `GOOGLE_APPLICATION_CREDENTIALS` (a service account or authorized-user file), the
//!   `GOOGLE_SERVICE_ACCOUNT*` variables of `object_store`, else the metadata server;
//!   `STORAGE_EMULATOR_HOST` points at an emulator without OAuth, as for Google's client.
//! - Azure: `AZURE_STORAGE_CONNECTION_STRING` (`AccountName`, `AccountKey`, `SharedAccessSignature`,
//!   `BlobEndpoint`, `DefaultEndpointsProtocol`, `EndpointSuffix`, `UseDevelopmentStorage`), else
//!   `AZURE_STORAGE_ACCESS_KEY` (the key of the URI's account), else `AZURE_STORAGE_SAS_TOKEN`, else the
//!   `AZURE_*` variables of `object_store` (client secret, workload identity, managed identity).
//!
//! Values are never logged, and no error message quotes one: [`CloudSettings`]' `Debug` shows names
//! only.

use crate::{ArtifactStore, LocalArtifactStore, ObjectStoreArtifactStore};
use ferroflow_core::{Error, Result};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::path::{Path as ObjectPath, PathPart};
use object_store::ClientOptions;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The Azure clouds MLflow accepts in `wasbs://` and `abfss://` hosts.
const AZURE_DOMAINS: [&str; 3] = ["core.windows.net", "chinacloudapi.cn", "usgovcloudapi.net"];

/// Prefixes of the environment variables the cloud backends read.
const CAPTURED_PREFIXES: [&str; 5] = ["AWS_", "MLFLOW_S3_", "MLFLOW_BOTO_", "GOOGLE_", "AZURE_"];

/// Single environment variables the cloud backends read.
const CAPTURED_NAMES: [&str; 1] = ["STORAGE_EMULATOR_HOST"];

/// Where artifacts live, parsed from a location string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactLocation {
    /// A local folder (relative paths are kept relative).
    Local(PathBuf),
    S3 {
        bucket: String,
        /// Key segments below the bucket.
        prefix: Vec<String>,
    },
    Gcs {
        bucket: String,
        prefix: Vec<String>,
    },
    Azure {
        /// `wasbs` or `abfss`.
        scheme: String,
        /// The container (a file system for `abfss`).
        container: String,
        account: String,
        /// `core.windows.net` or another Azure cloud's domain.
        domain: String,
        prefix: Vec<String>,
    },
}

impl ArtifactLocation {
    /// Parses a location; an unknown scheme or a malformed URI is INVALID_PARAMETER_VALUE naming it.
    pub fn parse(location: &str) -> Result<Self> {
        let Some((scheme, rest)) = split_scheme(location) else {
            if location.is_empty() {
                return Err(Error::invalid_parameter("the artifact location is empty"));
            }
            return Ok(Self::Local(PathBuf::from(location)));
        };
        let invalid = |reason: &str| {
            Error::invalid_parameter(format!(
                "invalid artifact location '{}': {reason}",
                redact_userinfo(location)
            ))
        };
        if location.contains(['?', '#']) || location.chars().any(char::is_control) {
            return Err(invalid(
                "queries, fragments and control characters are refused",
            ));
        }
        let Some(after_slashes) = rest.strip_prefix("//") else {
            return match scheme.as_str() {
                "file" => Ok(Self::Local(decode_file_path(rest).ok_or_else(|| {
                    invalid("a file location must be an absolute path")
                })?)),
                _ => Err(invalid("expected <scheme>://<bucket>/<prefix>")),
            };
        };
        let (authority, path) = after_slashes.split_once('/').unwrap_or((after_slashes, ""));
        let prefix = || prefix_segments(path).ok_or_else(|| invalid("bad prefix segment"));
        match scheme.as_str() {
            "file" => match authority {
                "" | "localhost" => Ok(Self::Local(
                    decode_file_path(&format!("/{path}"))
                        .ok_or_else(|| invalid("the path is not UTF-8"))?,
                )),
                _ => Err(invalid("a file location cannot name another host")),
            },
            "s3" | "gs" => {
                if authority.is_empty() || authority.contains(['@', ':']) {
                    return Err(invalid("expected a bucket name"));
                }
                let bucket = authority.to_owned();
                let prefix = prefix()?;
                Ok(if scheme == "s3" {
                    Self::S3 { bucket, prefix }
                } else {
                    Self::Gcs { bucket, prefix }
                })
            }
            "wasbs" | "abfss" => {
                let service = if scheme == "wasbs" { "blob" } else { "dfs" };
                let (container, host) = authority.split_once('@').ok_or_else(|| {
                    invalid("expected <container>@<account>.<service>.core.windows.net")
                })?;
                let (account, service_and_domain) = host
                    .split_once('.')
                    .ok_or_else(|| invalid("expected an account host"))?;
                let domain = service_and_domain
                    .strip_prefix(service)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .filter(|domain| AZURE_DOMAINS.contains(domain))
                    .ok_or_else(|| invalid("unknown Azure storage host"))?;
                if container.is_empty() || account.is_empty() {
                    return Err(invalid("expected a container and an account"));
                }
                Ok(Self::Azure {
                    scheme: scheme.clone(),
                    container: container.to_owned(),
                    account: account.to_owned(),
                    domain: domain.to_owned(),
                    prefix: prefix()?,
                })
            }
            _ => Err(invalid(
                "supported locations are a local path, file://, s3://, gs://, wasbs:// and abfss://",
            )),
        }
    }

    /// The path of `uri` below this location, when `uri` is this location or lies inside it (same
    /// bucket, prefix segment by segment); `None` otherwise. Local locations never match here: the
    /// server compares local paths itself.
    pub fn relative_path_of(&self, uri: &str) -> Result<Option<String>> {
        let other = Self::parse(uri)?;
        let (root_prefix, other_prefix) = match (self, &other) {
            (
                Self::S3 { bucket, prefix },
                Self::S3 {
                    bucket: other_bucket,
                    prefix: other_prefix,
                },
            )
            | (
                Self::Gcs { bucket, prefix },
                Self::Gcs {
                    bucket: other_bucket,
                    prefix: other_prefix,
                },
            ) if bucket == other_bucket => (prefix, other_prefix),
            (
                Self::Azure {
                    scheme,
                    container,
                    account,
                    domain,
                    prefix,
                },
                Self::Azure {
                    scheme: other_scheme,
                    container: other_container,
                    account: other_account,
                    domain: other_domain,
                    prefix: other_prefix,
                },
            ) if (scheme, container, account, domain)
                == (other_scheme, other_container, other_account, other_domain) =>
            {
                (prefix, other_prefix)
            }
            _ => return Ok(None),
        };
        Ok(other_prefix
            .strip_prefix(root_prefix.as_slice())
            .map(|below| below.join("/")))
    }

    /// Whether this is a cloud location (not a local folder).
    pub fn is_cloud(&self) -> bool {
        !matches!(self, Self::Local(_))
    }
}

/// `scheme:rest` with the scheme lowercased, for a scheme of two or more characters (one letter is a
/// Windows drive).
fn split_scheme(location: &str) -> Option<(String, &str)> {
    let (scheme, rest) = location.split_once(':')?;
    let mut characters = scheme.chars();
    let valid = characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && scheme.len() >= 2
        && characters
            .all(|character| character.is_ascii_alphanumeric() || "+-.".contains(character));
    valid.then(|| (scheme.to_ascii_lowercase(), rest))
}

/// A `file:` path, percent-decoded once; it must be absolute.
fn decode_file_path(path: &str) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?
        .into_owned();
    let path = PathBuf::from(decoded);
    path.is_absolute().then_some(path)
}

/// The segments of a key prefix: leading and trailing `/` are dropped, an empty, `.` or `..` segment
/// (or one `object_store` refuses) makes it invalid.
fn prefix_segments(path: &str) -> Option<Vec<String>> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Some(Vec::new());
    }
    trimmed
        .split('/')
        .map(|segment| {
            PathPart::parse(segment).ok()?;
            (!segment.is_empty()).then(|| segment.to_owned())
        })
        .collect()
}

fn object_prefix(segments: &[String]) -> Result<ObjectPath> {
    segments
        .iter()
        .map(|segment| {
            PathPart::parse(segment)
                .map_err(|_| Error::invalid_parameter("invalid artifact location prefix"))
        })
        .collect()
}

/// `scheme://user:password@host/…` with the user information dropped, for messages.
fn redact_userinfo(location: &str) -> String {
    match location.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                // `wasbs://container@account…` keeps its container: only a `:` marks a secret.
                Some(at) if rest[..at].contains(':') => {
                    format!("{scheme}://***@{}", &rest[at + 1..])
                }
                _ => location.to_owned(),
            }
        }
        None => location.to_owned(),
    }
}

/// The environment variables the cloud backends read, copied once at start-up. `Debug` lists the names
/// that are set, never their values.
#[derive(Clone, Default)]
pub struct CloudSettings {
    variables: BTreeMap<String, String>,
}

impl std::fmt::Debug for CloudSettings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CloudSettings")
            .field("set", &self.variables.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl CloudSettings {
    /// The cloud variables of this process's environment.
    pub fn from_env() -> Self {
        Self::from_variables(std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        }))
    }

    /// The cloud variables among `variables`; the others are dropped.
    pub fn from_variables(variables: impl IntoIterator<Item = (String, String)>) -> Self {
        let variables = variables
            .into_iter()
            .filter(|(name, _)| {
                CAPTURED_NAMES.contains(&name.as_str())
                    || CAPTURED_PREFIXES
                        .iter()
                        .any(|prefix| name.starts_with(prefix))
            })
            .collect();
        Self { variables }
    }

    /// The value of `name`, when it is set and not empty.
    fn get(&self, name: &str) -> Option<&str> {
        self.variables
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// The variables whose names start with `prefix`, lowercased for `object_store`'s config keys.
    fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (String, &'a str)> + 'a {
        self.variables
            .iter()
            .filter(move |(name, value)| name.starts_with(prefix) && !value.is_empty())
            .map(|(name, value)| (name.to_ascii_lowercase(), value.as_str()))
    }

    /// The values that are credentials (by the variable's name, plus the keys inside an Azure connection
    /// string), for stores to scrub from error texts.
    pub fn secret_values(&self) -> Vec<String> {
        const SECRET_NAME_PARTS: [&str; 6] = [
            "SECRET",
            "TOKEN",
            "KEY",
            "CONNECTION_STRING",
            "SAS",
            "PASSWORD",
        ];
        let mut secrets: Vec<String> = self
            .variables
            .iter()
            .filter(|(name, value)| {
                !value.is_empty() && SECRET_NAME_PARTS.iter().any(|part| name.contains(part))
            })
            .map(|(_, value)| value.clone())
            .collect();
        if let Some(fields) = self
            .get("AZURE_STORAGE_CONNECTION_STRING")
            .and_then(|connection_string| connection_string_fields(connection_string).ok())
        {
            for name in ["accountkey", "sharedaccesssignature"] {
                if let Some(value) = fields.get(name).filter(|value| !value.is_empty()) {
                    secrets.push(value.clone());
                }
            }
        }
        secrets
    }

    /// MLflow's boolean parsing: `true`/`1` and `false`/`0`, any case.
    fn flag(&self, name: &str) -> Result<bool> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None | Some("false" | "0") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(_) => Err(Error::invalid_parameter(format!(
                "{name} must be true, false, 1 or 0"
            ))),
        }
    }
}

/// Opens the store at `location` (see the module docs for the forms and credentials). A local folder is
/// created when missing; cloud stores are not contacted until the first request.
pub async fn open_artifact_store(
    location: &str,
    settings: &CloudSettings,
) -> Result<Arc<dyn ArtifactStore>> {
    Ok(match ArtifactLocation::parse(location)? {
        ArtifactLocation::Local(path) => Arc::new(LocalArtifactStore::new(path).await?),
        ArtifactLocation::S3 { bucket, prefix } => {
            let (s3, region) = s3_builder(&bucket, settings)?;
            let s3 = s3.build().map_err(|error| build_error("S3", error))?;
            Arc::new(
                ObjectStoreArtifactStore::s3(s3, object_prefix(&prefix)?, region)
                    .with_secrets(settings.secret_values()),
            )
        }
        ArtifactLocation::Gcs { bucket, prefix } => {
            let gcs = gcs_builder(&bucket, settings)?
                .build()
                .map_err(|error| build_error("GCS", error))?;
            Arc::new(
                ObjectStoreArtifactStore::new(Arc::new(gcs), object_prefix(&prefix)?)
                    .with_secrets(settings.secret_values()),
            )
        }
        ArtifactLocation::Azure {
            scheme,
            container,
            account,
            domain,
            prefix,
        } => {
            let azure = azure_builder(&scheme, &container, &account, &domain, settings)?
                .build()
                .map_err(|error| build_error("Azure", error))?;
            Arc::new(
                ObjectStoreArtifactStore::new(Arc::new(azure), object_prefix(&prefix)?)
                    .with_secrets(settings.secret_values()),
            )
        }
    })
}

/// A builder error, logged by the caller: `object_store`'s configuration errors name keys and
/// malformed URLs, never a credential's value.
fn build_error(backend: &str, error: object_store::Error) -> Error {
    Error::internal(std::io::Error::other(format!(
        "cannot configure the {backend} artifact store: {error}"
    )))
}

fn client_options(settings: &CloudSettings) -> Result<ClientOptions> {
    Ok(
        ClientOptions::new()
            .with_allow_invalid_certificates(settings.flag("MLFLOW_S3_IGNORE_TLS")?),
    )
}

/// The S3 builder for `bucket`, and the region it signs for.
fn s3_builder(bucket: &str, settings: &CloudSettings) -> Result<(AmazonS3Builder, String)> {
    let mut builder = AmazonS3Builder::new().with_client_options(client_options(settings)?);
    for (name, value) in settings.with_prefix("AWS_") {
        if let Ok(key) = name.parse::<AmazonS3ConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    // boto3 reads AWS_DEFAULT_REGION; AWS_REGION is what the other SDKs read.
    let region = settings
        .get("AWS_DEFAULT_REGION")
        .or_else(|| settings.get("AWS_REGION"))
        .unwrap_or("us-east-1")
        .to_owned();
    builder = builder.with_bucket_name(bucket).with_region(region.clone());
    if let Some(key_id) = settings.get("AWS_ACCESS_KEY_ID") {
        builder = builder.with_access_key_id(key_id);
    }
    if let Some(secret) = settings.get("AWS_SECRET_ACCESS_KEY") {
        builder = builder.with_secret_access_key(secret);
    }
    if let Some(token) = settings.get("AWS_SESSION_TOKEN") {
        builder = builder.with_token(token);
    }
    let virtual_hosted = match settings
        .get("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("auto" | "path") => false,
        Some("virtual") => true,
        Some(_) => {
            return Err(Error::invalid_parameter(
                "MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE must be auto, path or virtual",
            ))
        }
    };
    builder = builder.with_virtual_hosted_style_request(virtual_hosted);
    if let Some(endpoint) = settings.get("MLFLOW_S3_ENDPOINT_URL") {
        let endpoint = endpoint.trim_end_matches('/');
        let endpoint = if virtual_hosted {
            // `object_store` expects the bucket in a virtual-hosted endpoint; boto3 adds it itself.
            virtual_hosted_endpoint(endpoint, bucket).ok_or_else(|| {
                Error::invalid_parameter("MLFLOW_S3_ENDPOINT_URL must be an http(s) URL")
            })?
        } else {
            endpoint.to_owned()
        };
        builder = builder
            .with_allow_http(endpoint.starts_with("http://"))
            .with_endpoint(endpoint);
    }
    Ok((builder, region))
}

/// `scheme://bucket.host[:port][/path]` from `scheme://host[:port][/path]`.
fn virtual_hosted_endpoint(endpoint: &str, bucket: &str) -> Option<String> {
    let (scheme, rest) = endpoint.split_once("://")?;
    matches!(scheme, "http" | "https").then(|| format!("{scheme}://{bucket}.{rest}"))
}

fn gcs_builder(bucket: &str, settings: &CloudSettings) -> Result<GoogleCloudStorageBuilder> {
    let mut builder = GoogleCloudStorageBuilder::new();
    for (name, value) in settings.with_prefix("GOOGLE_") {
        if let Ok(key) = name.parse::<GoogleConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    builder = builder.with_bucket_name(bucket);
    if let Some(emulator) = settings.get("STORAGE_EMULATOR_HOST") {
        // Google's clients talk to an emulator without OAuth; `object_store` does so for a service
        // account key that names the emulator's URL and disables OAuth.
        let base_url = if emulator.contains("://") {
            emulator.trim_end_matches('/').to_owned()
        } else {
            format!("http://{}", emulator.trim_end_matches('/'))
        };
        let key = serde_json_object(&[
            ("private_key", ""),
            ("private_key_id", ""),
            ("client_email", ""),
            ("gcs_base_url", &base_url),
        ]);
        builder = builder
            .with_service_account_key(key)
            .with_client_options(ClientOptions::new().with_allow_http(true));
    } else if let Some(path) = settings.get("GOOGLE_APPLICATION_CREDENTIALS") {
        builder = builder.with_application_credentials(path);
    }
    Ok(builder)
}

/// A JSON object of string fields plus `"disable_oauth": true`, for an emulator's service account key.
fn serde_json_object(fields: &[(&str, &str)]) -> String {
    let mut json = String::from("{");
    for (name, value) in fields {
        json.push_str(&format!("{}:{},", json_string(name), json_string(value)));
    }
    json.push_str("\"disable_oauth\":true}");
    json
}

fn json_string(text: &str) -> String {
    let mut quoted = String::from("\"");
    for character in text.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            character if character.is_control() => {
                quoted.push_str(&format!("\\u{:04x}", character as u32));
            }
            character => quoted.push(character),
        }
    }
    quoted.push('"');
    quoted
}

/// An Azure connection string's fields (`Name=value;…`). Values are secrets: never print them.
fn connection_string_fields(connection_string: &str) -> Result<BTreeMap<String, String>> {
    let mut fields = BTreeMap::new();
    for field in connection_string
        .split(';')
        .filter(|field| !field.trim().is_empty())
    {
        let (name, value) = field.split_once('=').ok_or_else(|| {
            Error::invalid_parameter(
                "AZURE_STORAGE_CONNECTION_STRING is not a list of Name=value fields",
            )
        })?;
        fields.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    Ok(fields)
}

fn azure_builder(
    scheme: &str,
    container: &str,
    account: &str,
    domain: &str,
    settings: &CloudSettings,
) -> Result<MicrosoftAzureBuilder> {
    let mut builder = MicrosoftAzureBuilder::new();
    for (name, value) in settings.with_prefix("AZURE_") {
        if let Ok(key) = name.parse::<AzureConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    builder = builder
        .with_container_name(container)
        .with_account(account)
        .with_endpoint(format!("https://{account}.blob.{domain}"));
    if let Some(connection_string) = settings.get("AZURE_STORAGE_CONNECTION_STRING") {
        let fields = connection_string_fields(connection_string)?;
        let field = |name: &str| {
            fields
                .get(name)
                .map(String::as_str)
                .filter(|value| !value.is_empty())
        };
        if field("usedevelopmentstorage").is_some_and(|value| value.eq_ignore_ascii_case("true")) {
            // Azurite's well-known account and key, at AZURITE_BLOB_STORAGE_URL or 127.0.0.1:10000.
            return Ok(builder
                .with_account("devstoreaccount1")
                .with_use_emulator(true));
        }
        let account = field("accountname").unwrap_or(account).to_owned();
        builder = builder.with_account(account.clone());
        if let Some(key) = field("accountkey") {
            builder = builder.with_access_key(key);
        }
        if let Some(signature) = field("sharedaccesssignature") {
            builder = builder.with_config(AzureConfigKey::SasKey, signature);
        }
        if let Some(endpoint) = field("blobendpoint") {
            let endpoint = endpoint.trim_end_matches('/').to_owned();
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint);
        } else {
            let protocol = field("defaultendpointsprotocol").unwrap_or("https");
            let suffix = field("endpointsuffix").unwrap_or(domain);
            builder = builder.with_endpoint(format!("{protocol}://{account}.blob.{suffix}"));
        }
    } else if let Some(key) = settings.get("AZURE_STORAGE_ACCESS_KEY") {
        builder = builder.with_access_key(key);
    } else if let Some(token) = settings.get("AZURE_STORAGE_SAS_TOKEN") {
        builder = builder.with_config(AzureConfigKey::SasKey, token.trim_start_matches('?'));
    } else if scheme == "abfss" {
        tracing::debug!(
            "abfss artifact location without a key: using object_store's Azure credential chain"
        );
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str, prefix: &[&str]) -> ArtifactLocation {
        ArtifactLocation::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.iter().map(|segment| (*segment).to_owned()).collect(),
        }
    }

    fn check(location: &str, expected: std::result::Result<ArtifactLocation, ()>) {
        assert_eq!(
            ArtifactLocation::parse(location).map_err(|_| ()),
            expected,
            "{location}"
        );
    }

    #[test]
    fn locations_parse() {
        let local = |path: &str| Ok(ArtifactLocation::Local(PathBuf::from(path)));
        check("./mlartifacts", local("./mlartifacts"));
        check("/data/artifacts", local("/data/artifacts"));
        check("file:///data/a%20b", local("/data/a b"));
        check("file://localhost/data", local("/data"));
        check("file:/data", local("/data"));
        check("file://other/data", Err(()));
        check("file:relative", Err(()));
        check("", Err(()));
        check("s3://bucket", Ok(s3("bucket", &[])));
        check("s3://bucket/", Ok(s3("bucket", &[])));
        check("S3://bucket/a/b/", Ok(s3("bucket", &["a", "b"])));
        check(
            "s3://bucket/with space/ü",
            Ok(s3("bucket", &["with space", "ü"])),
        );
        check("s3://bucket/a//b", Err(()));
        check("s3://bucket/a/../b", Err(()));
        check("s3://bucket/./b", Err(()));
        check("s3://bucket/a?x=1", Err(()));
        check("s3://bucket/a#x", Err(()));
        check("s3:///prefix", Err(()));
        check("s3://key:secret@bucket/prefix", Err(()));
        check("s3:bucket", Err(()));
        check(
            "gs://bucket/p",
            Ok(ArtifactLocation::Gcs {
                bucket: "bucket".to_owned(),
                prefix: vec!["p".to_owned()],
            }),
        );
        let azure = |scheme: &str, domain: &str, prefix: &[&str]| {
            Ok(ArtifactLocation::Azure {
                scheme: scheme.to_owned(),
                container: "container".to_owned(),
                account: "account".to_owned(),
                domain: domain.to_owned(),
                prefix: prefix.iter().map(|segment| (*segment).to_owned()).collect(),
            })
        };
        check(
            "wasbs://container@account.blob.core.windows.net/mlflow/x",
            azure("wasbs", "core.windows.net", &["mlflow", "x"]),
        );
        check(
            "wasbs://container@account.blob.chinacloudapi.cn",
            azure("wasbs", "chinacloudapi.cn", &[]),
        );
        check(
            "abfss://container@account.dfs.core.windows.net/p",
            azure("abfss", "core.windows.net", &["p"]),
        );
        check("wasbs://container@account.dfs.core.windows.net/p", Err(()));
        check("abfss://container@account.blob.core.windows.net/p", Err(()));
        check("wasbs://container@account.blob.example.com/p", Err(()));
        check("wasbs://account.blob.core.windows.net/p", Err(()));
        check("hdfs://namenode/p", Err(()));
        check("ftp://host/p", Err(()));
    }

    #[test]
    fn relative_paths_stay_inside_the_root() {
        let root = ArtifactLocation::parse("s3://bucket/mlflow").unwrap();
        let relative = |uri: &str| root.relative_path_of(uri).map_err(|_| ());
        assert_eq!(
            relative("s3://bucket/mlflow/1/run/artifacts"),
            Ok(Some("1/run/artifacts".to_owned()))
        );
        assert_eq!(relative("s3://bucket/mlflow"), Ok(Some(String::new())));
        assert_eq!(relative("s3://bucket/mlflowx/1"), Ok(None));
        assert_eq!(relative("s3://bucket/other/1"), Ok(None));
        assert_eq!(relative("s3://other-bucket/mlflow/1"), Ok(None));
        assert_eq!(relative("gs://bucket/mlflow/1"), Ok(None));
        assert_eq!(relative("/local/mlflow"), Ok(None));
        assert_eq!(relative("s3://bucket/mlflow/../secret"), Err(()));
        assert_eq!(relative("s3://bucket/mlflow/1?x"), Err(()));
        let azure =
            ArtifactLocation::parse("wasbs://c@account.blob.core.windows.net/root").unwrap();
        assert_eq!(
            azure
                .relative_path_of("wasbs://c@account.blob.core.windows.net/root/2/r/artifacts")
                .unwrap(),
            Some("2/r/artifacts".to_owned())
        );
        assert_eq!(
            azure
                .relative_path_of("wasbs://other@account.blob.core.windows.net/root/2")
                .unwrap(),
            None
        );
    }

    fn settings(pairs: &[(&str, &str)]) -> CloudSettings {
        CloudSettings::from_variables(
            pairs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
        )
    }

    #[test]
    fn settings_keep_cloud_variables_and_hide_values() {
        let captured = settings(&[
            ("AWS_SECRET_ACCESS_KEY", "aws-secret-value"),
            (
                "AZURE_STORAGE_CONNECTION_STRING",
                "AccountKey=azure-secret-value",
            ),
            ("STORAGE_EMULATOR_HOST", "localhost:1"),
            ("HOME", "/root"),
            ("MLFLOW_S3_ENDPOINT_URL", "http://127.0.0.1:1"),
        ]);
        assert_eq!(captured.get("HOME"), None);
        let mut secrets = captured.secret_values();
        secrets.sort();
        assert_eq!(
            secrets,
            [
                "AccountKey=azure-secret-value",
                "aws-secret-value",
                "azure-secret-value"
            ]
        );
        assert_eq!(
            captured.get("AWS_SECRET_ACCESS_KEY"),
            Some("aws-secret-value")
        );
        let debug = format!("{captured:?}");
        assert!(debug.contains("AWS_SECRET_ACCESS_KEY"), "{debug}");
        assert!(!debug.contains("secret-value"), "{debug}");
    }

    #[test]
    fn s3_settings_follow_mlflow() {
        let option = |builder: &AmazonS3Builder, key: AmazonS3ConfigKey| {
            builder.get_config_value(&key).unwrap_or_default()
        };
        let (builder, region) = s3_builder(
            "bucket",
            &settings(&[
                ("AWS_ACCESS_KEY_ID", "key-id"),
                ("AWS_SECRET_ACCESS_KEY", "secret"),
                ("AWS_SESSION_TOKEN", "token"),
                ("AWS_REGION", "eu-west-1"),
                ("AWS_DEFAULT_REGION", "eu-west-3"),
                ("MLFLOW_S3_ENDPOINT_URL", "http://127.0.0.1:9000/"),
            ]),
        )
        .unwrap();
        assert_eq!(region, "eu-west-3", "boto3 reads AWS_DEFAULT_REGION first");
        assert_eq!(option(&builder, AmazonS3ConfigKey::Region), "eu-west-3");
        assert_eq!(
            option(&builder, AmazonS3ConfigKey::Endpoint),
            "http://127.0.0.1:9000"
        );
        assert_eq!(option(&builder, AmazonS3ConfigKey::AccessKeyId), "key-id");
        assert_eq!(
            option(&builder, AmazonS3ConfigKey::SecretAccessKey),
            "secret"
        );
        assert_eq!(option(&builder, AmazonS3ConfigKey::Token), "token");
        assert_eq!(
            option(&builder, AmazonS3ConfigKey::VirtualHostedStyleRequest),
            "false"
        );

        let (builder, region) = s3_builder(
            "bucket",
            &settings(&[
                ("AWS_REGION", "ap-south-1"),
                ("MLFLOW_S3_ENDPOINT_URL", "https://minio.example:9000"),
                ("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE", "virtual"),
                ("MLFLOW_S3_IGNORE_TLS", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(region, "ap-south-1");
        assert_eq!(
            option(&builder, AmazonS3ConfigKey::Endpoint),
            "https://bucket.minio.example:9000"
        );
        assert_eq!(
            option(
                &builder,
                AmazonS3ConfigKey::Client(object_store::ClientConfigKey::AllowInvalidCertificates)
            ),
            "true"
        );

        let (_, region) = s3_builder("bucket", &settings(&[])).unwrap();
        assert_eq!(region, "us-east-1");
        assert!(s3_builder("bucket", &settings(&[("MLFLOW_S3_IGNORE_TLS", "maybe")])).is_err());
        assert!(s3_builder(
            "bucket",
            &settings(&[("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE", "sideways")])
        )
        .is_err());
    }

    #[test]
    fn azure_connection_strings_follow_mlflow() {
        let option = |builder: &MicrosoftAzureBuilder, key: AzureConfigKey| {
            builder.get_config_value(&key).unwrap_or_default()
        };
        let builder = azure_builder(
            "wasbs",
            "container",
            "uriaccount",
            "core.windows.net",
            &settings(&[(
                "AZURE_STORAGE_CONNECTION_STRING",
                "DefaultEndpointsProtocol=http;AccountName=devaccount;AccountKey=a2V5;\
                 BlobEndpoint=http://127.0.0.1:10000/devaccount;",
            )]),
        )
        .unwrap();
        assert_eq!(option(&builder, AzureConfigKey::AccountName), "devaccount");
        assert_eq!(option(&builder, AzureConfigKey::AccessKey), "a2V5");
        assert_eq!(option(&builder, AzureConfigKey::ContainerName), "container");
        assert_eq!(
            option(&builder, AzureConfigKey::Endpoint),
            "http://127.0.0.1:10000/devaccount"
        );

        let builder = azure_builder(
            "wasbs",
            "container",
            "account",
            "chinacloudapi.cn",
            &settings(&[("AZURE_STORAGE_ACCESS_KEY", "a2V5")]),
        )
        .unwrap();
        assert_eq!(option(&builder, AzureConfigKey::AccountName), "account");
        assert_eq!(option(&builder, AzureConfigKey::AccessKey), "a2V5");
        assert_eq!(
            option(&builder, AzureConfigKey::Endpoint),
            "https://account.blob.chinacloudapi.cn"
        );

        let builder = azure_builder(
            "abfss",
            "fs",
            "account",
            "core.windows.net",
            &settings(&[("AZURE_STORAGE_SAS_TOKEN", "?sv=2024&sig=abc")]),
        )
        .unwrap();
        assert_eq!(option(&builder, AzureConfigKey::SasKey), "sv=2024&sig=abc");

        let builder = azure_builder(
            "wasbs",
            "container",
            "account",
            "core.windows.net",
            &settings(&[(
                "AZURE_STORAGE_CONNECTION_STRING",
                "UseDevelopmentStorage=true",
            )]),
        )
        .unwrap();
        assert_eq!(option(&builder, AzureConfigKey::UseEmulator), "true");

        let error = azure_builder(
            "wasbs",
            "container",
            "account",
            "core.windows.net",
            &settings(&[("AZURE_STORAGE_CONNECTION_STRING", "garbage-secret-value")]),
        )
        .unwrap_err();
        assert!(!error.to_string().contains("garbage-secret-value"));
    }

    #[test]
    fn gcs_settings_follow_google() {
        let builder = gcs_builder(
            "bucket",
            &settings(&[("GOOGLE_APPLICATION_CREDENTIALS", "/secrets/key.json")]),
        )
        .unwrap();
        assert_eq!(
            builder
                .get_config_value(&GoogleConfigKey::ApplicationCredentials)
                .unwrap_or_default(),
            "/secrets/key.json"
        );
        let builder = gcs_builder(
            "bucket",
            &settings(&[("STORAGE_EMULATOR_HOST", "http://127.0.0.1:4443")]),
        )
        .unwrap();
        let key = builder
            .get_config_value(&GoogleConfigKey::ServiceAccountKey)
            .unwrap_or_default();
        assert!(
            key.contains("\"gcs_base_url\":\"http://127.0.0.1:4443\""),
            "{key}"
        );
        assert!(key.contains("\"disable_oauth\":true"), "{key}");
    }

    #[test]
    fn userinfo_is_redacted_from_messages() {
        let error = ArtifactLocation::parse("s3://key:secret-value@bucket/prefix").unwrap_err();
        assert!(!error.message.contains("secret-value"), "{}", error.message);
        assert_eq!(
            redact_userinfo("wasbs://container@account.blob.core.windows.net/p"),
            "wasbs://container@account.blob.core.windows.net/p"
        );
    }

    /// Building every cloud store with secrets set and a bad location or value never puts a secret in
    /// the error.
    #[tokio::test]
    async fn build_errors_do_not_quote_secrets() {
        let secrets = settings(&[
            ("AWS_ACCESS_KEY_ID", "AKIDSECRETVALUE"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret-value"),
            ("AWS_SESSION_TOKEN", "aws-token-value"),
            ("AZURE_STORAGE_ACCESS_KEY", "not base64 secret-value"),
            (
                "GOOGLE_APPLICATION_CREDENTIALS",
                "/nonexistent/secret-value.json",
            ),
        ]);
        for location in [
            "wasbs://container@account.blob.core.windows.net/p",
            "gs://bucket/p",
        ] {
            let Err(error) = open_artifact_store(location, &secrets).await else {
                continue;
            };
            let text = format!("{error} {error:?}");
            for secret in [
                "aws-secret-value",
                "aws-token-value",
                "not base64 secret-value",
            ] {
                assert!(!text.contains(secret), "{location}: {text}");
            }
        }
    }
}
