//! MLflow 3.17's basic-auth rules: users, roles and role permissions, how grants resolve to a permission,
//! the configuration file (`basic_auth.ini`), and passwords.
//!
//! Everything here is pure: the [`AuthStore`] trait is implemented in `ferroflow-store`, the HTTP side
//! (authentication, the route → rule table, response filtering) lives in `ferroflow-server`.
//!
//! The model is MLflow's, with workspaces disabled (ferroflow has none): every grant lives on a role of
//! the `default` workspace. A user's own grants live on a hidden role named `__user_<id>__`, which the
//! user is assigned to. A request's permission on a resource is the fold of the user's grants matching
//! the resource: `DENY` among them wins, else the highest level; no grant at all means
//! `default_permission`. A positive grant never resolves below `default_permission`. A workspace-wide
//! `MANAGE` grant (`resource_type = "workspace"`, pattern `*`) makes the user an admin of everything.

use crate::{Error, Result};
use async_trait::async_trait;
use ferroflow_proto::ErrorCode;
use serde::Serialize;

/// The workspace every grant lives in: ferroflow serves no workspaces, like MLflow without
/// `MLFLOW_ENABLE_WORKSPACES`.
pub const DEFAULT_WORKSPACE: &str = "default";

/// The alembic revision of MLflow 3.17.2's auth database (`alembic_version_auth`).
pub const AUTH_SCHEMA_REVISION: &str = "f1a2b3c4d5e6";

/// The admin password older MLflow versions shipped; an admin logging in with it is refused.
pub const LEGACY_DEFAULT_ADMIN_PASSWORD: &str = "password1234";

/// The prefix of the hidden per-user roles; roles created through the API may not use it.
pub const SYNTHETIC_ROLE_PREFIX: &str = "__user_";

/// The name of `user_id`'s hidden role.
pub fn synthetic_role_name(user_id: i64) -> String {
    format!("{SYNTHETIC_ROLE_PREFIX}{user_id}__")
}

/// A permission level of MLflow 3.17.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    Read,
    Use,
    Edit,
    Manage,
    Deny,
    NoPermissions,
}

/// Every permission, in MLflow's order (its error messages list them so).
pub const ALL_PERMISSIONS: [Permission; 6] = [
    Permission::Read,
    Permission::Use,
    Permission::Edit,
    Permission::Manage,
    Permission::NoPermissions,
    Permission::Deny,
];

impl Permission {
    pub fn name(self) -> &'static str {
        match self {
            Permission::Read => "READ",
            Permission::Use => "USE",
            Permission::Edit => "EDIT",
            Permission::Manage => "MANAGE",
            Permission::Deny => "DENY",
            Permission::NoPermissions => "NO_PERMISSIONS",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        ALL_PERMISSIONS
            .into_iter()
            .find(|permission| permission.name() == name)
    }

    /// The order `max` folds by; DENY is below everything so it never wins a `max`.
    fn priority(self) -> i8 {
        match self {
            Permission::Deny => -1,
            Permission::NoPermissions => 0,
            Permission::Read => 1,
            Permission::Use => 2,
            Permission::Edit => 3,
            Permission::Manage => 4,
        }
    }

    pub fn max(self, other: Self) -> Self {
        if self.priority() >= other.priority() {
            self
        } else {
            other
        }
    }

    pub fn can_read(self) -> bool {
        matches!(
            self,
            Permission::Read | Permission::Use | Permission::Edit | Permission::Manage
        )
    }

    pub fn can_use(self) -> bool {
        matches!(
            self,
            Permission::Use | Permission::Edit | Permission::Manage
        )
    }

    pub fn can_update(self) -> bool {
        matches!(self, Permission::Edit | Permission::Manage)
    }

    pub fn can_delete(self) -> bool {
        self == Permission::Manage
    }

    pub fn can_manage(self) -> bool {
        self == Permission::Manage
    }

    /// A positive grant never resolves below `default`; DENY and NO_PERMISSIONS stay as they are.
    pub fn floored(self, default: Permission) -> Permission {
        match self {
            Permission::Deny | Permission::NoPermissions => self,
            _ => self.max(default),
        }
    }
}

/// The resource types a grant may name, and whether a grant may name one resource (`true`) or only
/// `*` (`false`), as MLflow 3.17's `permissions.TYPE`.
pub const RESOURCE_TYPES: [(&str, bool); 18] = [
    ("workspace", false),
    ("experiment", true),
    ("registered_model", true),
    ("prompt", true),
    ("scorer", true),
    ("gateway_secret", true),
    ("gateway_endpoint", true),
    ("gateway_model_definition", true),
    ("mcp_server", true),
    ("run", false),
    ("trace", false),
    ("assessment", false),
    ("logged_model", false),
    ("review_queue", false),
    ("registered_model_version", false),
    ("prompt_version", false),
    ("scorer_version", false),
    ("mcp_server_version", false),
];

fn quoted_tuple<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.into_iter().map(|name| format!("'{name}'")).collect();
    format!("({})", names.join(", "))
}

/// The permission named `name`, or MLflow's error.
pub fn parse_permission(name: &str) -> Result<Permission> {
    Permission::parse(name).ok_or_else(|| {
        Error::invalid_parameter(format!(
            "Invalid permission '{name}'. Valid permissions are: {}",
            quoted_tuple(ALL_PERMISSIONS.iter().map(|permission| permission.name()))
        ))
    })
}

/// Whether grants on `resource_type` may name one resource; MLflow's error for an unknown type.
fn resource_type_grain(resource_type: &str) -> Result<bool> {
    RESOURCE_TYPES
        .iter()
        .find(|(name, _)| *name == resource_type)
        .map(|(_, per_id)| *per_id)
        .ok_or_else(|| {
            let mut names: Vec<&str> = RESOURCE_TYPES.iter().map(|(name, _)| *name).collect();
            names.sort_unstable();
            Error::invalid_parameter(format!(
                "Invalid resource type '{resource_type}'. Valid resource types are: {}",
                quoted_tuple(names)
            ))
        })
}

pub fn validate_resource_type(resource_type: &str) -> Result<()> {
    resource_type_grain(resource_type).map(|_| ())
}

/// Checks that `permission` may be granted on `resource_type` (MLflow's
/// `_validate_permission_for_resource_type`).
pub fn validate_permission_for_resource_type(
    permission: &str,
    resource_type: &str,
) -> Result<Permission> {
    let parsed = parse_permission(permission)?;
    validate_resource_type(resource_type)?;
    if resource_type == "workspace" {
        if !matches!(parsed, Permission::Use | Permission::Manage) {
            return Err(Error::invalid_parameter(format!(
                "Invalid permission '{permission}' for resource_type='workspace'. Workspace-wide grants \
                 accept only: ('MANAGE', 'USE')."
            )));
        }
        return Ok(parsed);
    }
    if parsed == Permission::NoPermissions {
        return Err(Error::invalid_parameter(format!(
            "Invalid permission '{permission}' for resource_type='{resource_type}'. Resource-level grants \
             accept only: ('DENY', 'EDIT', 'MANAGE', 'READ', 'USE')."
        )));
    }
    Ok(parsed)
}

/// Checks that `pattern` suits `resource_type`'s grain (MLflow's `_validate_resource_pattern`).
pub fn validate_resource_pattern(pattern: &str, resource_type: &str) -> Result<()> {
    let per_id = resource_type_grain(resource_type)?;
    if pattern == "*" || per_id {
        return Ok(());
    }
    Err(Error::invalid_parameter(format!(
        "Invalid resource_pattern '{pattern}' for resource_type='{resource_type}'. This resource type \
         supports only wildcard ('*') grants."
    )))
}

/// MLflow's password rule.
pub fn validate_password(password: &str) -> Result<()> {
    if password.chars().count() < 12 {
        return Err(Error::invalid_parameter(
            "Password must be at least 12 characters.",
        ));
    }
    Ok(())
}

pub fn validate_username(username: &str) -> Result<()> {
    if username.is_empty() {
        return Err(Error::invalid_parameter("Username cannot be empty."));
    }
    Ok(())
}

/// MLflow's message for an unknown user.
pub fn user_not_found(username: &str) -> Error {
    Error::not_found(format!("User with username={username} not found"))
}

/// One grant row that applies to a user: `role_permissions` of a role they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub resource_type: String,
    pub resource_pattern: String,
    pub permission: String,
}

impl Grant {
    pub fn is_workspace_admin(&self) -> bool {
        self.resource_type == "workspace"
            && self.resource_pattern == "*"
            && self.permission == "MANAGE"
    }

    fn matches(&self, resource_type: &str, resource_id: &str) -> bool {
        if self.resource_type != resource_type {
            return false;
        }
        let Ok(per_id) = resource_type_grain(resource_type) else {
            return false;
        };
        self.resource_pattern == "*" || (per_id && self.resource_pattern == resource_id)
    }
}

/// The permission `grants` give on one key: `None` when none matches (silent), DENY when any denies,
/// else the highest. Unknown permission names in the database are ignored.
pub fn fold_grants(grants: &[Grant], resource_type: &str, resource_id: &str) -> Option<Permission> {
    let mut denied = false;
    let mut best: Option<Permission> = None;
    for grant in grants
        .iter()
        .filter(|grant| grant.matches(resource_type, resource_id))
    {
        match Permission::parse(&grant.permission) {
            Some(Permission::Deny) => denied = true,
            Some(permission) => best = Some(best.map_or(permission, |b| b.max(permission))),
            None => {}
        }
    }
    if denied {
        Some(Permission::Deny)
    } else {
        best
    }
}

/// What an operation needs of a permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Use,
    Update,
    Delete,
    Manage,
    /// A create: the key must not be denied, nothing positive is needed.
    NotDenied,
}

impl Action {
    pub fn met_by(self, permission: Permission) -> bool {
        match self {
            Action::Read => permission.can_read(),
            Action::Use => permission.can_use(),
            Action::Update => permission.can_update(),
            Action::Delete => permission.can_delete(),
            Action::Manage => permission.can_manage(),
            Action::NotDenied => permission != Permission::Deny,
        }
    }
}

/// One thing an operation requires: `action` on a resource, and where to look (in order) when the user
/// holds no grant on the resource's own key (MLflow's `Requirement` with `fallback_if_no_grant`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub resource_type: &'static str,
    pub resource_id: String,
    pub action: Action,
    pub fallbacks: Vec<(&'static str, String)>,
}

impl Requirement {
    pub fn new(
        resource_type: &'static str,
        resource_id: impl Into<String>,
        action: Action,
    ) -> Self {
        Self {
            resource_type,
            resource_id: resource_id.into(),
            action,
            fallbacks: Vec::new(),
        }
    }

    pub fn or_else(mut self, resource_type: &'static str, resource_id: impl Into<String>) -> Self {
        self.fallbacks.push((resource_type, resource_id.into()));
        self
    }

    /// The resource types whose grants decide this requirement.
    pub fn resource_types(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(self.resource_type).chain(self.fallbacks.iter().map(|(kind, _)| *kind))
    }
}

/// The permission that governs `requirement`: the first key (own, then fallbacks) holding a grant,
/// floored to `default`; with no grant anywhere, `default`.
pub fn governing_permission(
    requirement: &Requirement,
    grants: &[Grant],
    default: Permission,
) -> Permission {
    if grants.iter().any(Grant::is_workspace_admin) {
        return Permission::Manage;
    }
    let keys = std::iter::once((requirement.resource_type, requirement.resource_id.as_str()))
        .chain(
            requirement
                .fallbacks
                .iter()
                .map(|(kind, id)| (*kind, id.as_str())),
        );
    for (resource_type, resource_id) in keys {
        if let Some(permission) = fold_grants(grants, resource_type, resource_id) {
            return permission.floored(default);
        }
    }
    default
}

/// Whether every requirement is met.
pub fn authorize(requirements: &[Requirement], grants: &[Grant], default: Permission) -> bool {
    requirements.iter().all(|requirement| {
        requirement
            .action
            .met_by(governing_permission(requirement, grants, default))
    })
}

// ------------------------------------------------------------------------------------------------------
// Configuration.
// ------------------------------------------------------------------------------------------------------

/// The `[mlflow]` section of MLflow's `basic_auth.ini`, with the admin's name and password resolved
/// against `MLFLOW_AUTH_ADMIN_USERNAME` / `MLFLOW_AUTH_ADMIN_PASSWORD`.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub default_permission: Permission,
    pub database_uri: String,
    pub admin_username: Option<String>,
    pub admin_password: Option<String>,
    pub authorization_function: String,
    /// How long a verified credential is remembered (`auth_cache_ttl_seconds`; 0, MLflow's default,
    /// turns the cache off).
    pub auth_cache_ttl: std::time::Duration,
    /// The most credentials remembered at once (`auth_cache_max_size`).
    pub auth_cache_max_size: usize,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AuthConfig")
            .field("default_permission", &self.default_permission)
            .field("admin_username", &self.admin_username)
            .field("auth_cache_ttl", &self.auth_cache_ttl)
            .field("auth_cache_max_size", &self.auth_cache_max_size)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "<hidden>"),
            )
            .finish_non_exhaustive()
    }
}

/// MLflow's default `basic_auth.ini` (its keys and values, without the comments).
pub const DEFAULT_AUTH_INI: &str = "[mlflow]\n\
default_permission = READ\n\
database_uri = sqlite:///basic_auth.db\n\
admin_username = admin\n\
authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n";

/// The authorization function MLflow's basic-auth app uses; ferroflow implements only this one.
pub const DEFAULT_AUTHORIZATION_FUNCTION: &str =
    "mlflow.server.auth:authenticate_request_basic_auth";

/// Reads the `[mlflow]` section of an INI text as Python's `configparser` does for MLflow's file:
/// `key = value` or `key: value`, `#`/`;` comment lines, keys case-insensitive. `admin_username` and
/// `admin_password` from the environment win when set, even when empty (an empty value counts as unset).
pub fn parse_auth_config(
    ini: &str,
    env_admin_username: Option<&str>,
    env_admin_password: Option<&str>,
) -> std::result::Result<AuthConfig, String> {
    let mut section = String::new();
    let mut values: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for line in ini.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(name) = trimmed
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            section = name.trim().to_owned();
            continue;
        }
        if section != "mlflow" {
            continue;
        }
        let split = trimmed.find(['=', ':']);
        let Some(split) = split else {
            return Err(format!(
                "cannot read the line {trimmed:?} of the auth configuration"
            ));
        };
        let key = trimmed[..split].trim().to_ascii_lowercase();
        let value = trimmed[split + 1..].trim().to_owned();
        values.insert(key, value);
    }
    let required = |key: &str| {
        values
            .get(key)
            .cloned()
            .ok_or_else(|| format!("the auth configuration has no `{key}` in its [mlflow] section"))
    };
    let default_permission_name = required("default_permission")?;
    let default_permission = Permission::parse(&default_permission_name).ok_or_else(|| {
        format!("the auth configuration's default_permission {default_permission_name:?} is not a permission")
    })?;
    let non_empty = |value: Option<String>| value.filter(|value| !value.is_empty());
    let admin_username = non_empty(match env_admin_username {
        Some(value) => Some(value.to_owned()),
        None => values.get("admin_username").cloned(),
    });
    let admin_password = non_empty(match env_admin_password {
        Some(value) => Some(value.to_owned()),
        None => values.get("admin_password").cloned(),
    });
    let authorization_function = values
        .get("authorization_function")
        .cloned()
        .unwrap_or_else(|| DEFAULT_AUTHORIZATION_FUNCTION.to_owned());
    if authorization_function != DEFAULT_AUTHORIZATION_FUNCTION {
        return Err(format!(
            "the auth configuration names authorization_function {authorization_function:?}; ferroflow \
             implements only {DEFAULT_AUTHORIZATION_FUNCTION}"
        ));
    }
    let number = |key: &str, default: u64| match values.get(key) {
        None => Ok(default),
        Some(value) => value
            .parse::<u64>()
            .map_err(|_| format!("the auth configuration's {key} {value:?} is not a whole number")),
    };
    let auth_cache_ttl = std::time::Duration::from_secs(number("auth_cache_ttl_seconds", 0)?);
    let auth_cache_max_size =
        usize::try_from(number("auth_cache_max_size", 10_000)?).unwrap_or(usize::MAX);
    Ok(AuthConfig {
        default_permission,
        database_uri: required("database_uri")?,
        admin_username,
        admin_password,
        authorization_function,
        auth_cache_ttl,
        auth_cache_max_size,
    })
}

/// How long a sign-up form's CSRF token is accepted.
pub const SIGNUP_TOKEN_LIFETIME_SECONDS: i64 = 3600;

/// The CSRF token of MLflow's sign-up form (`/signup` → `users/create-ui`): `<issued at>.<hex HMAC-SHA256
/// of "signup", the user and the time>` under the server's secret key. A page on another origin cannot
/// read it, so it cannot make the signed-in browser post the form; it is bound to the user it was shown
/// to and expires after [`SIGNUP_TOKEN_LIFETIME_SECONDS`]. Replicas that share
/// `MLFLOW_FLASK_SERVER_SECRET_KEY` accept each other's tokens, as MLflow's Flask-WTF tokens.
#[derive(Clone)]
pub struct SignupTokens {
    mac: hmac::Hmac<sha2::Sha256>,
}

impl SignupTokens {
    /// Tokens under `secret_key`; a random one when it is `None`.
    pub fn new(secret_key: Option<&[u8]>) -> Option<Self> {
        let random: [u8; 32] = rand::random();
        let key = secret_key.unwrap_or(&random);
        let mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(key).ok()?;
        Some(Self { mac })
    }

    fn signature(&self, username: &str, issued_at: i64) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        let mut mac = self.mac.clone();
        mac.update(format!("signup\n{username}\n{issued_at}").as_bytes());
        mac
    }

    /// A token for `username` at `now` (seconds since the epoch).
    pub fn issue(&self, username: &str, now: i64) -> String {
        use hmac::Mac;
        let digest = self.signature(username, now).finalize().into_bytes();
        let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        format!("{now}.{hex}")
    }

    /// Whether `token` was issued to `username` within the lifetime before `now`.
    pub fn verify(&self, token: &str, username: &str, now: i64) -> bool {
        use hmac::Mac;
        let Some((issued, hex)) = token.split_once('.') else {
            return false;
        };
        let Ok(issued_at) = issued.parse::<i64>() else {
            return false;
        };
        if !(0..=SIGNUP_TOKEN_LIFETIME_SECONDS).contains(&(now - issued_at)) || hex.len() != 64 {
            return false;
        }
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|index| u8::from_str_radix(hex.get(index..index + 2)?, 16).ok())
            .collect();
        match bytes {
            Some(bytes) => self
                .signature(username, issued_at)
                .verify_slice(&bytes)
                .is_ok(),
            None => false,
        }
    }
}

/// Successful basic-auth checks, remembered for a short time so the password hash (milliseconds of
/// Argon2, scrypt or PBKDF2) is verified once per credential and TTL rather than on every request, as
/// MLflow 3.17's `auth_cache_ttl_seconds` does.
///
/// An entry is keyed by an HMAC-SHA256 of the whole `Authorization` header under a key drawn at start, so
/// the cache holds neither passwords nor digests usable for an offline guess. It holds at most
/// `max_size` entries (expired ones are dropped first, then the oldest) and each for `ttl`. Changing a
/// user's password or admin flag, or deleting the user, on this replica drops that user's entries
/// ([`CredentialCache::forget_user`]); another replica keeps accepting the old credential until the TTL
/// has passed, as with MLflow's workers.
pub struct CredentialCache {
    /// The HMAC, keyed with 32 random bytes drawn at start.
    mac: hmac::Hmac<sha2::Sha256>,
    ttl: std::time::Duration,
    max_size: usize,
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], (User, std::time::Instant)>>,
}

impl CredentialCache {
    /// `None` when `ttl` is zero (the cache is off) or `max_size` is zero.
    pub fn new(ttl: std::time::Duration, max_size: usize) -> Option<Self> {
        if ttl.is_zero() || max_size == 0 {
            return None;
        }
        let key: [u8; 32] = rand::random();
        let mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&key).ok()?;
        Some(Self {
            mac,
            ttl,
            max_size,
            entries: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    fn digest(&self, authorization: &[u8]) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = self.mac.clone();
        mac.update(authorization);
        mac.finalize().into_bytes().into()
    }

    /// The user an `Authorization` header value was verified as, if that is still remembered.
    pub fn get(&self, authorization: &[u8]) -> Option<User> {
        let digest = self.digest(authorization);
        let mut entries = self.entries.lock().ok()?;
        match entries.get(&digest) {
            Some((user, since)) if since.elapsed() < self.ttl => Some(user.clone()),
            Some(_) => {
                entries.remove(&digest);
                None
            }
            None => None,
        }
    }

    /// Remembers that `authorization` was verified as `user`.
    pub fn insert(&self, authorization: &[u8], user: User) {
        let digest = self.digest(authorization);
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.max_size && !entries.contains_key(&digest) {
            let ttl = self.ttl;
            entries.retain(|_, (_, since)| since.elapsed() < ttl);
            while entries.len() >= self.max_size {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, (_, since))| *since)
                    .map(|(digest, _)| *digest);
                match oldest {
                    Some(oldest) => entries.remove(&oldest),
                    None => break,
                };
            }
        }
        entries.insert(digest, (user, std::time::Instant::now()));
    }

    /// Drops every remembered credential of `username` (its password, admin flag or existence changed).
    pub fn forget_user(&self, username: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (user, _)| user.username != username);
        }
    }

    /// How many credentials are remembered.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .map(|entries| entries.len())
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Checks the admin account the server creates at start when it does not exist (MLflow's
/// `_validate_bootstrap_admin_password`).
pub fn validate_bootstrap_admin(
    username: Option<&str>,
    password: Option<&str>,
) -> std::result::Result<(), String> {
    let Some(username) = username else {
        return Err("MLflow Authentication needs a username for the admin user, but none is configured \
                    (or it is empty). Set the MLFLOW_AUTH_ADMIN_USERNAME environment variable, or set \
                    `admin_username` in the configuration file referenced by MLFLOW_AUTH_CONFIG_PATH, and \
                    restart the server."
            .to_owned());
    };
    let Some(password) = password else {
        return Err(format!(
            "MLflow Authentication needs a password to create the admin user '{username}', but none is \
             configured (or it is empty). MLflow ships no default admin password. Set the \
             MLFLOW_AUTH_ADMIN_PASSWORD environment variable, or set `admin_password` in the \
             configuration file referenced by MLFLOW_AUTH_CONFIG_PATH, and restart the server."
        ));
    };
    if password == LEGACY_DEFAULT_ADMIN_PASSWORD {
        return Err(format!(
            "Refusing to use the insecure default password that older MLflow versions shipped in \
             basic_auth.ini for the admin user '{username}'. Set MLFLOW_AUTH_ADMIN_PASSWORD or \
             `admin_password` to a different password."
        ));
    }
    validate_password(password).map_err(|error| {
        format!(
            "The configured password for the admin user '{username}' is invalid: {} Set \
             MLFLOW_AUTH_ADMIN_PASSWORD or `admin_password` to a valid password.",
            error.message
        )
    })
}

// ------------------------------------------------------------------------------------------------------
// Passwords.
// ------------------------------------------------------------------------------------------------------

/// Hashes a new password with Argon2id (a PHC string, `$argon2id$...`).
pub fn hash_password(password: &str) -> Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|error| Error::internal(PasswordHashError(error.to_string())))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| Error::internal(PasswordHashError(error.to_string())))
}

#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
struct PasswordHashError(String);

/// Whether `password` matches `stored`: an Argon2 PHC string (ferroflow's), or werkzeug's
/// `scrypt:N:r:p$salt$hex` or `pbkdf2:sha256:iterations$salt$hex` (what MLflow writes), compared in
/// constant time. Any other or malformed hash never matches.
pub fn verify_password(stored: &str, password: &str) -> bool {
    use subtle::ConstantTimeEq;
    if stored.starts_with("$argon2") {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        return PasswordHash::new(stored).is_ok_and(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
    }
    let mut parts = stored.splitn(3, '$');
    let (Some(method), Some(salt), Some(expected_hex)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(expected) = hex::decode(expected_hex) else {
        return false;
    };
    let mut fields = method.split(':');
    let derived = match fields.next() {
        Some("scrypt") => {
            let numbers: Vec<u64> = fields.filter_map(|field| field.parse().ok()).collect();
            let [n, r, p] = numbers[..] else {
                return false;
            };
            if !(2..=(1 << 20)).contains(&n)
                || !n.is_power_of_two()
                || !(1..=64).contains(&r)
                || !(1..=16).contains(&p)
            {
                return false;
            }
            let (Ok(r), Ok(p)) = (u32::try_from(r), u32::try_from(p)) else {
                return false;
            };
            let log_n = n.trailing_zeros() as u8;
            let Ok(params) = scrypt::Params::new(log_n, r, p, expected.len()) else {
                return false;
            };
            let mut output = vec![0u8; expected.len()];
            if scrypt::scrypt(password.as_bytes(), salt.as_bytes(), &params, &mut output).is_err() {
                return false;
            }
            output
        }
        Some("pbkdf2") => {
            let digest = fields.next().unwrap_or("sha256");
            let iterations: u32 = match fields.next() {
                Some(text) => match text.parse() {
                    Ok(number) => number,
                    Err(_) => return false,
                },
                None => 600_000,
            };
            if !(1..=10_000_000).contains(&iterations) || expected.is_empty() {
                return false;
            }
            let mut output = vec![0u8; expected.len()];
            match digest {
                "sha256" => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                    password.as_bytes(),
                    salt.as_bytes(),
                    iterations,
                    &mut output,
                ),
                "sha512" => pbkdf2::pbkdf2_hmac::<sha2::Sha512>(
                    password.as_bytes(),
                    salt.as_bytes(),
                    iterations,
                    &mut output,
                ),
                _ => return false,
            }
            output
        }
        _ => return false,
    };
    !expected.is_empty() && bool::from(derived.ct_eq(&expected))
}

// ------------------------------------------------------------------------------------------------------
// Entities and the store.
// ------------------------------------------------------------------------------------------------------

/// A row of `users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub is_admin: bool,
}

/// A user as MLflow answers it (`User.to_json`): never the hash.
#[derive(Debug, Clone, Serialize)]
pub struct UserJson {
    pub id: i64,
    pub username: String,
    pub is_admin: bool,
}

impl From<&User> for UserJson {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            is_admin: user.is_admin,
        }
    }
}

/// A row of `role_permissions`, as MLflow answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolePermission {
    pub id: i64,
    pub role_id: i64,
    pub resource_type: String,
    pub resource_pattern: String,
    pub permission: String,
}

/// A row of `roles` with its permissions, as MLflow answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Role {
    pub id: i64,
    pub name: String,
    pub workspace: String,
    pub description: Option<String>,
    pub permissions: Vec<RolePermission>,
}

/// A row of `user_role_assignments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleAssignment {
    pub id: i64,
    pub user_id: i64,
    pub role_id: i64,
}

/// MLflow's auth tables. Each call is one transaction; not-found and duplicate cases come back as
/// `None` / `false` or MLflow's errors as documented per method.
#[async_trait]
pub trait AuthStore: Send + Sync {
    async fn get_user(&self, username: &str) -> Result<Option<User>>;
    async fn get_user_by_id(&self, user_id: i64) -> Result<Option<User>>;
    /// RESOURCE_ALREADY_EXISTS when the name is taken.
    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        is_admin: bool,
    ) -> Result<User>;
    async fn list_users(&self) -> Result<Vec<User>>;
    /// `false` when the user does not exist.
    async fn update_user(
        &self,
        username: &str,
        password_hash: Option<&str>,
        is_admin: Option<bool>,
    ) -> Result<bool>;
    /// Deletes the user, their hidden roles (with grants and assignments) and their other
    /// assignments; `false` when the user does not exist.
    async fn delete_user(&self, username: &str) -> Result<bool>;
    /// The grants of every role `user_id` holds in `workspace` whose type is one of `resource_types`
    /// or `workspace`.
    async fn list_grants(
        &self,
        user_id: i64,
        workspace: &str,
        resource_types: &[&str],
    ) -> Result<Vec<Grant>>;
    /// Adds (or, with `replace`, sets) a grant on the user's hidden role in `workspace`, creating and
    /// assigning the role when needed. Without `replace`, `false` when the grant already exists.
    async fn grant_user_permission(
        &self,
        user_id: i64,
        workspace: &str,
        resource_type: &str,
        resource_pattern: &str,
        permission: &str,
        replace: bool,
    ) -> Result<bool>;
    /// Removes a grant from the user's hidden role; `false` when there was none.
    async fn revoke_user_permission(
        &self,
        user_id: i64,
        workspace: &str,
        resource_type: &str,
        resource_pattern: &str,
    ) -> Result<bool>;
    /// Removes every hidden-role grant on the resource (a deleted registered model).
    async fn delete_grants_for_resource(
        &self,
        resource_type: &str,
        resource_pattern: &str,
    ) -> Result<()>;
    /// Points every hidden-role grant on the resource at its new name (a renamed registered model).
    async fn rename_grants_for_resource(
        &self,
        resource_type: &str,
        old_pattern: &str,
        new_pattern: &str,
    ) -> Result<()>;
    /// RESOURCE_ALREADY_EXISTS when the workspace has a role of that name.
    async fn create_role(
        &self,
        name: &str,
        workspace: &str,
        description: Option<&str>,
    ) -> Result<Role>;
    async fn get_role(&self, role_id: i64) -> Result<Option<Role>>;
    /// Every role, or those of `workspaces`.
    async fn list_roles(&self, workspaces: Option<&[String]>) -> Result<Vec<Role>>;
    /// `None` when the role does not exist; RESOURCE_ALREADY_EXISTS on a name clash.
    async fn update_role(
        &self,
        role_id: i64,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Option<Role>>;
    /// `false` when the role does not exist.
    async fn delete_role(&self, role_id: i64) -> Result<bool>;
    /// `None` when the role does not exist; RESOURCE_ALREADY_EXISTS on a duplicate.
    async fn add_role_permission(
        &self,
        role_id: i64,
        resource_type: &str,
        resource_pattern: &str,
        permission: &str,
    ) -> Result<Option<RolePermission>>;
    async fn get_role_permission(&self, role_permission_id: i64) -> Result<Option<RolePermission>>;
    async fn remove_role_permission(&self, role_permission_id: i64) -> Result<bool>;
    async fn update_role_permission(
        &self,
        role_permission_id: i64,
        permission: &str,
    ) -> Result<Option<RolePermission>>;
    /// RESOURCE_ALREADY_EXISTS when assigned already.
    async fn assign_role(&self, user_id: i64, role_id: i64) -> Result<RoleAssignment>;
    async fn unassign_role(&self, user_id: i64, role_id: i64) -> Result<bool>;
    async fn list_user_roles(&self, user_id: i64) -> Result<Vec<Role>>;
    async fn list_role_users(&self, role_id: i64) -> Result<Vec<RoleAssignment>>;
}

/// MLflow's error for a missing role.
pub fn role_not_found(role_id: i64) -> Error {
    Error::not_found(format!("Role with id={role_id} not found"))
}

/// MLflow's error for a missing role permission.
pub fn role_permission_not_found(role_permission_id: i64) -> Error {
    Error::not_found(format!(
        "Role permission with id={role_permission_id} not found"
    ))
}

/// Refuses a role name in the reserved hidden-role namespace.
pub fn reject_synthetic_role_name(name: &str) -> Result<()> {
    if name.starts_with(SYNTHETIC_ROLE_PREFIX) {
        return Err(Error::invalid_parameter(format!(
            "Role name '{name}' uses the reserved '__user_' prefix, which is held for the per-user \
             permission representation. Choose a different name."
        )));
    }
    Ok(())
}

/// MLflow's BAD_REQUEST error.
pub fn bad_request(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::BadRequest, message)
}

#[cfg(test)]
mod tests {
    fn cached_user(name: &str) -> User {
        User {
            id: 1,
            username: name.to_owned(),
            password_hash: String::new(),
            is_admin: false,
        }
    }

    #[test]
    fn signup_tokens_are_bound_to_user_key_and_time() {
        let tokens = SignupTokens::new(Some(b"key")).unwrap();
        let token = tokens.issue("admin", 1_000);
        assert!(tokens.verify(&token, "admin", 1_010));
        assert!(!tokens.verify(&token, "other", 1_010));
        assert!(!tokens.verify(&token, "admin", 1_000 + SIGNUP_TOKEN_LIFETIME_SECONDS + 1));
        assert!(!tokens.verify(&token, "admin", 999));
        let other_key = SignupTokens::new(Some(b"other key")).unwrap();
        assert!(!other_key.verify(&token, "admin", 1_010));
        assert!(SignupTokens::new(Some(b"key"))
            .unwrap()
            .verify(&token, "admin", 1_010));
        for forged in ["", "1000", "1000.zz", "x.00", &token.replace('.', "")] {
            assert!(!tokens.verify(forged, "admin", 1_010), "{forged}");
        }
    }

    #[test]
    fn credential_cache_remembers_and_forgets() {
        let minute = std::time::Duration::from_secs(60);
        assert!(CredentialCache::new(std::time::Duration::ZERO, 10).is_none());
        let cache = CredentialCache::new(minute, 2).unwrap();
        cache.insert(b"Basic YWxpY2U6cA==", cached_user("alice"));
        cache.insert(b"Basic YWxpY2U6cTI=", cached_user("alice"));
        assert_eq!(cache.get(b"Basic YWxpY2U6cA==").unwrap().username, "alice");
        assert!(cache.get(b"Basic other").is_none());
        // Bounded: a third credential evicts the oldest.
        cache.insert(b"Basic Ym9iOnA=", cached_user("bob"));
        assert_eq!(cache.len(), 2);
        assert!(cache.get(b"Basic YWxpY2U6cA==").is_none());
        // A password change or deletion of alice drops every credential of hers, and only hers.
        cache.forget_user("alice");
        assert!(cache.get(b"Basic YWxpY2U6cTI=").is_none());
        assert_eq!(cache.get(b"Basic Ym9iOnA=").unwrap().username, "bob");
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn credential_cache_entries_expire() {
        let cache = CredentialCache::new(std::time::Duration::from_millis(30), 10).unwrap();
        cache.insert(b"Basic x", cached_user("alice"));
        assert!(cache.get(b"Basic x").is_some());
        std::thread::sleep(std::time::Duration::from_millis(40));
        assert!(cache.get(b"Basic x").is_none());
        assert!(cache.is_empty());
    }

    use super::*;

    fn grant(resource_type: &str, pattern: &str, permission: &str) -> Grant {
        Grant {
            resource_type: resource_type.to_owned(),
            resource_pattern: pattern.to_owned(),
            permission: permission.to_owned(),
        }
    }

    #[test]
    fn deny_wins_within_a_key_and_the_highest_otherwise() {
        let grants = [
            grant("experiment", "1", "READ"),
            grant("experiment", "*", "EDIT"),
        ];
        assert_eq!(
            fold_grants(&grants, "experiment", "1"),
            Some(Permission::Edit)
        );
        let denied = [
            grant("experiment", "1", "MANAGE"),
            grant("experiment", "*", "DENY"),
        ];
        assert_eq!(
            fold_grants(&denied, "experiment", "1"),
            Some(Permission::Deny)
        );
        assert_eq!(fold_grants(&grants, "registered_model", "1"), None);
        // Sub-resource types take only `*`: a per-id row never matches.
        assert_eq!(
            fold_grants(&[grant("run", "abc", "EDIT")], "run", "abc"),
            None
        );
    }

    #[test]
    fn a_grant_on_the_own_key_overrides_the_fallback_and_the_default_floors_positives() {
        let run_update = Requirement::new("run", "*", Action::Update).or_else("experiment", "1");
        let editor = [grant("experiment", "1", "EDIT")];
        assert!(authorize(
            std::slice::from_ref(&run_update),
            &editor,
            Permission::Read
        ));
        let run_denied = [grant("experiment", "1", "EDIT"), grant("run", "*", "DENY")];
        assert!(!authorize(
            std::slice::from_ref(&run_update),
            &run_denied,
            Permission::Read
        ));
        let nothing: [Grant; 0] = [];
        let read = Requirement::new("experiment", "1", Action::Read);
        assert!(authorize(
            std::slice::from_ref(&read),
            &nothing,
            Permission::Read
        ));
        assert!(!authorize(
            std::slice::from_ref(&read),
            &nothing,
            Permission::NoPermissions
        ));
        assert!(authorize(
            std::slice::from_ref(&read),
            &[grant("workspace", "*", "MANAGE")],
            Permission::NoPermissions
        ));
        assert_eq!(Permission::Read.floored(Permission::Edit), Permission::Edit);
        assert_eq!(Permission::Deny.floored(Permission::Edit), Permission::Deny);
    }

    #[test]
    fn validation_messages_are_mlflows() {
        assert_eq!(
            parse_permission("ALL").map(|_| ()).unwrap_err().message,
            "Invalid permission 'ALL'. Valid permissions are: ('READ', 'USE', 'EDIT', 'MANAGE', \
             'NO_PERMISSIONS', 'DENY')"
        );
        assert!(validate_permission_for_resource_type("NO_PERMISSIONS", "experiment").is_err());
        assert!(validate_permission_for_resource_type("READ", "workspace").is_err());
        assert!(validate_resource_pattern("abc", "run").is_err());
        assert!(validate_resource_pattern("7", "experiment").is_ok());
        assert!(validate_resource_type("dataset").is_err());
        assert!(validate_password("short").is_err());
        assert!(validate_password("long-enough-pw").is_ok());
    }

    #[test]
    fn passwords_verify_in_every_format_and_never_when_malformed() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse batter"));
        // Written by werkzeug 3 (MLflow's generate_password_hash) for "abc".
        let scrypt_hash = "scrypt:32768:8:1$DmRMDvWJHKb5bByL$87a0d02cbd039a9b250b6f75b3d68cb17655b4aa5ccaaf467c310cec03f90a7b85848e88216da0026d4e0595cc6f66d19f22d325455d94b71c027e3239bf6c96";
        assert!(verify_password(scrypt_hash, "abc"));
        assert!(!verify_password(scrypt_hash, "abd"));
        let pbkdf2_hash = "pbkdf2:sha256:1000$O3zSBCANdPuohpxX$561cb015153c01fcd8766ffaff522aeb055a266ed4c10ab93febfbfced27efe4";
        assert!(verify_password(pbkdf2_hash, "abc"));
        assert!(!verify_password(pbkdf2_hash, "wrong"));
        for malformed in [
            "",
            "plain",
            "scrypt:1:1:1$a$00",
            "pbkdf2:md5:10$a$00",
            "$argon2id$x",
        ] {
            assert!(!verify_password(malformed, "abc"), "{malformed}");
        }
    }

    #[test]
    fn the_ini_is_read_like_configparser_and_the_environment_wins() {
        let config = parse_auth_config(
            "[other]\nx = 1\n[mlflow]\n# comment\ndefault_permission = EDIT\ndatabase_uri: sqlite:///a.db\n\
             admin_username = root\nadmin_password = from-the-file-1\n",
            None,
            Some("from-the-env-12"),
        )
        .unwrap();
        assert_eq!(config.default_permission, Permission::Edit);
        assert_eq!(config.database_uri, "sqlite:///a.db");
        assert_eq!(config.admin_username.as_deref(), Some("root"));
        assert_eq!(config.admin_password.as_deref(), Some("from-the-env-12"));
        let default = parse_auth_config(DEFAULT_AUTH_INI, Some(""), None).unwrap();
        assert_eq!(default.admin_username, None);
        assert_eq!(default.admin_password, None);
        assert!(parse_auth_config("[mlflow]\ndatabase_uri = x\n", None, None).is_err());
        assert!(validate_bootstrap_admin(Some("admin"), None).is_err());
        assert!(
            validate_bootstrap_admin(Some("admin"), Some(LEGACY_DEFAULT_ADMIN_PASSWORD)).is_err()
        );
        assert!(validate_bootstrap_admin(Some("admin"), Some("a-good-password")).is_ok());
    }
}
