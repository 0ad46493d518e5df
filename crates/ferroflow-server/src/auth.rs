//! MLflow's basic-auth app (`--app-name basic-auth`): authentication, the route → permission rule table,
//! and the after-request work (creator grants, search filtering).
//!
//! Every request but the open ones (`/health`, `/static…`, `/favicon.ico`, server-info) must carry HTTP
//! Basic credentials of a user in the auth database; otherwise it is answered 401 with
//! `WWW-Authenticate: Basic realm="mlflow"` and MLflow's text. Admins pass every rule. Everyone else
//! needs the [`Rule`] of the route they reached: [`rules`] is the one table, keyed by method and the
//! mounted route pattern, and a route with no row is refused with 403 (fail closed; a test walks every
//! mounted route). A refused rule answers 403 `Permission denied`, as MLflow.
//!
//! Failed logins are rate limited per (username, client IP): after [`MAX_FAILED_LOGINS`] failures within
//! [`FAILED_LOGIN_WINDOW`], further attempts for that pair are answered 429 with `Retry-After` (without
//! checking the password) until the window has passed. A success clears the pair's count.
//!
//! With `auth_cache_ttl_seconds` set (MLflow's key; 0, its default, keeps it off) a verified
//! `Authorization` header is remembered for that long ([`CredentialCache`]), so the password hash is not
//! verified on every request; the user routes drop a user's entries when its password or admin flag
//! changes or it is deleted.

use crate::error::error_response;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, MatchedPath, RawPathParams, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use ferroflow_core::auth::{
    authorize, governing_permission, hash_password, verify_password, Action, AuthConfig, AuthStore,
    CredentialCache, Grant, Permission, Requirement, SignupTokens, User, DEFAULT_WORKSPACE,
    LEGACY_DEFAULT_ADMIN_PASSWORD, RESOURCE_TYPES,
};
use ferroflow_core::Error;
use ferroflow_proto::ErrorCode;
use serde_json::Value;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Failed logins allowed per (username, IP) within [`FAILED_LOGIN_WINDOW`].
pub const MAX_FAILED_LOGINS: u32 = 10;
/// The window failed logins are counted in.
pub const FAILED_LOGIN_WINDOW: Duration = Duration::from_secs(300);
/// The most (username, IP) pairs tracked; the oldest windows are dropped past it.
const MAX_TRACKED_LOGINS: usize = 10_000;
/// The largest JSON body the rules read a resource id from.
const MAX_RULE_BODY: usize = 64 * 1024 * 1024;

const NOT_AUTHENTICATED: &str = "You are not authenticated. Please see \
     https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate.";

/// A (username, client address) pair whose failed logins are counted.
type LoginKey = (String, Option<IpAddr>);
/// Failed logins per pair: how many, since when.
type FailedLogins = HashMap<LoginKey, (u32, Instant)>;

/// The basic-auth app's state: the auth store and its settings.
#[derive(Clone)]
pub struct Auth {
    pub store: Arc<dyn AuthStore>,
    pub default_permission: Permission,
    failures: Arc<Mutex<FailedLogins>>,
    /// Verified credentials (`auth_cache_ttl_seconds`); `None` when the cache is off.
    credentials: Option<Arc<CredentialCache>>,
    /// The CSRF tokens of the sign-up form.
    signup_tokens: Option<SignupTokens>,
}

impl Auth {
    pub fn new(store: Arc<dyn AuthStore>, config: &AuthConfig) -> Self {
        Self {
            store,
            default_permission: config.default_permission,
            failures: Arc::new(Mutex::new(HashMap::new())),
            credentials: CredentialCache::new(config.auth_cache_ttl, config.auth_cache_max_size)
                .map(Arc::new),
            signup_tokens: SignupTokens::new(None),
        }
    }

    /// Signs the sign-up form's CSRF tokens with `secret_key` (`MLFLOW_FLASK_SERVER_SECRET_KEY`), so
    /// replicas sharing it accept each other's forms; without it the key is random per process.
    pub fn with_secret_key(mut self, secret_key: &str) -> Self {
        self.signup_tokens = SignupTokens::new(Some(secret_key.as_bytes()));
        self
    }

    /// A CSRF token of the sign-up form for `username`.
    pub fn signup_token(&self, username: &str, now: i64) -> String {
        self.signup_tokens
            .as_ref()
            .map(|tokens| tokens.issue(username, now))
            .unwrap_or_default()
    }

    /// Whether `token` is a sign-up form token issued to `username` that has not expired.
    pub fn signup_token_valid(&self, token: &str, username: &str, now: i64) -> bool {
        self.signup_tokens
            .as_ref()
            .is_some_and(|tokens| tokens.verify(token, username, now))
    }

    /// Drops the remembered credentials of `username`, whose password or admin flag changed or who was
    /// deleted, so the change holds at once on this replica.
    pub fn forget_credentials(&self, username: &str) {
        if let Some(cache) = &self.credentials {
            cache.forget_user(username);
        }
    }

    /// How many verified credentials are remembered (0 when the cache is off).
    pub fn remembered_credentials(&self) -> usize {
        self.credentials.as_ref().map_or(0, |cache| cache.len())
    }

    /// Creates the configured admin when it does not exist (MLflow's `create_admin_user`).
    pub async fn bootstrap_admin(&self, config: &AuthConfig) -> Result<(), String> {
        let username = config.admin_username.as_deref();
        let Some(name) = username else {
            return ferroflow_core::auth::validate_bootstrap_admin(None, None);
        };
        let existing = self
            .store
            .get_user(name)
            .await
            .map_err(|error| error.to_string())?;
        if existing.is_some() {
            return Ok(());
        }
        let password = config.admin_password.as_deref();
        ferroflow_core::auth::validate_bootstrap_admin(username, password)?;
        let password = password.unwrap_or_default().to_owned();
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| error.to_string())?;
        match self.store.create_user(name, &hash, true).await {
            Ok(_) => {
                tracing::info!(username = name, "created the admin user");
                Ok(())
            }
            Err(error) if error.code == ErrorCode::ResourceAlreadyExists => Ok(()),
            Err(error) => Err(error.to_string()),
        }
    }

    /// `Some(seconds)` to wait when the pair is locked out.
    fn locked_out(&self, key: &LoginKey) -> Option<u64> {
        let failures = self.failures.lock().ok()?;
        let (count, since) = failures.get(key)?;
        let elapsed = since.elapsed();
        if *count >= MAX_FAILED_LOGINS && elapsed < FAILED_LOGIN_WINDOW {
            return Some((FAILED_LOGIN_WINDOW - elapsed).as_secs().max(1));
        }
        None
    }

    fn record_failure(&self, key: LoginKey) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() >= MAX_TRACKED_LOGINS {
            failures.retain(|_, (_, since)| since.elapsed() < FAILED_LOGIN_WINDOW);
            if failures.len() >= MAX_TRACKED_LOGINS {
                failures.clear();
            }
        }
        let entry = failures.entry(key).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= FAILED_LOGIN_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    fn clear_failures(&self, key: &LoginKey) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(key);
        }
    }

    /// The user the request's Basic credentials name, or the response refusing it.
    async fn authenticate(
        &self,
        headers: &HeaderMap,
        ip: Option<IpAddr>,
    ) -> Result<User, Response> {
        let Some((username, password)) = basic_credentials(headers) else {
            return Err(not_authenticated());
        };
        let key = (username.clone(), ip);
        if let Some(retry_after) = self.locked_out(&key) {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed login attempts. Try again later.",
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return Err(response);
        }
        let authorization = headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if let Some(user) = self
            .credentials
            .as_ref()
            .and_then(|cache| cache.get(authorization))
        {
            return Ok(user);
        }
        let user = match self.store.get_user(&username).await {
            Ok(user) => user,
            Err(error) => return Err(crate::error::ApiError(error).into_response()),
        };
        // A missing user still costs a hash, so timing does not tell which names exist.
        let stored = user.as_ref().map(|user| user.password_hash.clone());
        let candidate = password.clone();
        let verified = tokio::task::spawn_blocking(move || match stored {
            Some(stored) => verify_password(&stored, &candidate),
            None => {
                let _ = hash_password(&candidate);
                false
            }
        })
        .await
        .unwrap_or(false);
        match user {
            Some(user)
                if verified && !(user.is_admin && password == LEGACY_DEFAULT_ADMIN_PASSWORD) =>
            {
                self.clear_failures(&key);
                if let Some(cache) = &self.credentials {
                    cache.insert(authorization, user.clone());
                }
                Ok(user)
            }
            _ => {
                self.record_failure(key);
                Err(not_authenticated())
            }
        }
    }

    /// The user's grants in the default workspace, on every resource type.
    async fn grants(&self, user: &User) -> Result<Vec<Grant>, Error> {
        let types: Vec<&str> = RESOURCE_TYPES.iter().map(|(name, _)| *name).collect();
        self.store
            .list_grants(user.id, DEFAULT_WORKSPACE, &types)
            .await
    }
}

/// The user a request authenticated as, for the handlers of the auth routes.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser(pub User);

/// Handlers take the acting user as an extractor; without the basic-auth app there is none (401).
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AuthenticatedUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AuthenticatedUser>()
            .cloned()
            .ok_or_else(not_authenticated)
    }
}

/// Marks a 403 given because no rule covers the route (the route-coverage test looks for it).
#[derive(Debug, Clone, Copy)]
pub struct NoRule;

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (username, password) = text.split_once(':')?;
    Some((username.to_owned(), password.to_owned()))
}

fn not_authenticated() -> Response {
    let mut response = (StatusCode::UNAUTHORIZED, NOT_AUTHENTICATED).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"mlflow\""),
    );
    response
}

fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, "Permission denied").into_response()
}

/// Paths MLflow serves without authentication.
pub fn is_unprotected(path: &str) -> bool {
    if path.starts_with("/static")
        || path.starts_with("/favicon.ico")
        || path.starts_with("/health")
    {
        return true;
    }
    matches!(
        path,
        "/api/3.0/mlflow/server-info" | "/ajax-api/3.0/mlflow/server-info"
    )
}

// ------------------------------------------------------------------------------------------------------
// The rule table.
// ------------------------------------------------------------------------------------------------------

/// Where a rule reads an id from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A query parameter (GET) or a field of the JSON body (other methods), like MLflow's
    /// `_get_request_param`; `run_id` falls back to `run_uuid`.
    Param(&'static str),
    /// A segment of the route pattern (`{trace_id}`).
    Path(&'static str),
}

/// What a non-admin needs to reach a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Any signed-in user.
    Authenticated,
    /// Admins only.
    Admin,
    /// Admins, and users who hold the workspace-wide MANAGE grant (MLflow's workspace admins).
    WorkspaceAdmin,
    /// The `username` parameter names the caller.
    SelfUser,
    /// The caller is `username`, or an admin.
    SelfOrWorkspaceAdmin,
    /// Roles the caller holds a role in (any role, or a workspace-wide grant).
    ViewRoles,
    /// MANAGE on the resource named by `resource_type` / `resource_id` (grant and revoke).
    ManageResource,
    /// `action` on the experiment with the id.
    Experiment(Source, Action),
    /// `action` on the experiment named by `experiment_name`.
    ExperimentByName(Action),
    /// `action` on every experiment of a list parameter; an empty list is refused.
    Experiments(&'static str, Action),
    /// A new experiment: the `experiment` type is not denied.
    CreateExperiment,
    /// A new `tier` object in the experiment: UPDATE on it and `tier` not denied.
    CreateInExperiment(Source, &'static str),
    /// A new trace (StartTraceV3): the experiment of the trace location.
    StartTrace,
    /// An OTLP export: the experiment of the `x-mlflow-experiment-id` header.
    Otlp,
    /// `action` on a run (READ on its experiment, `action` on the run tier, else on the experiment).
    Run(Source, Action),
    /// `action` on every run of a list parameter.
    Runs(&'static str, Action),
    /// Run searches: READ on each requested experiment; the answer is filtered.
    SearchRuns,
    /// `action` on a logged model (through its experiment).
    LoggedModel(Source, Action),
    /// `action` on a trace (through its experiment).
    Trace(Source, Action),
    /// `action` on every trace of a list parameter.
    Traces(&'static str, Action),
    /// Trace searches: READ on each location's experiment; the answer is filtered.
    SearchTraces,
    /// Delete traces: DELETE on the trace tier of the experiment.
    DeleteTraces,
    /// `action` on an assessment of the trace in the path.
    Assessment(Action),
    /// `action` on a registered model or prompt named by `name` (prompt when its tags say so).
    RegisteredModel(Action),
    /// `action` on a model or prompt version of the model named by `name`.
    ModelVersion(Action),
    /// A new registered model or prompt: its type is not denied.
    CreateRegisteredModel,
    /// `action` on every experiment the dataset in the path belongs to.
    Dataset(Action),
    /// Attaching a dataset to experiments: UPDATE on the dataset and the experiments.
    DatasetExperiments,
    /// `action` on a scorer (`experiment_id` and `name`).
    Scorer(Action),
    /// Listing scorers: READ on `experiment_id` when given; the answer is filtered.
    ListScorers,
    /// Proxied artifacts: `action` on what the path names (`<experiment>/<run>/artifacts/…`).
    ArtifactPath(Action),
    /// Searches whose answers are filtered to what the caller may read.
    Filtered,
}

impl Rule {
    fn reads_body(self) -> bool {
        !matches!(
            self,
            Rule::Authenticated
                | Rule::Admin
                | Rule::WorkspaceAdmin
                | Rule::Otlp
                | Rule::ArtifactPath(_)
                | Rule::Filtered
                | Rule::ViewRoles
                | Rule::LoggedModel(Source::Path(_), _)
                | Rule::Trace(Source::Path(_), _)
                | Rule::Assessment(_)
                | Rule::Dataset(_)
        )
    }
}

const V2: [&str; 2] = ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"];
const V3: [&str; 2] = ["/api/3.0/mlflow", "/ajax-api/3.0/mlflow"];
const ARTIFACTS: [&str; 2] = ["/api/2.0", "/ajax-api/2.0"];

/// Every rule: (method, route pattern as mounted, rule).
pub fn rules() -> Vec<(Method, String, Rule)> {
    use Action::*;
    use Rule::*;
    use Source::*;
    let get = Method::GET;
    let post = Method::POST;
    let patch = Method::PATCH;
    let delete = Method::DELETE;
    let put = Method::PUT;
    let mut table: Vec<(Method, String, Rule)> = Vec::new();
    let mut under = |prefixes: &[&str], rows: Vec<(Method, &str, Rule)>| {
        for prefix in prefixes {
            for (method, path, rule) in &rows {
                table.push((method.clone(), format!("{prefix}{path}"), *rule));
            }
        }
    };
    let experiment = Experiment(Param("experiment_id"), Read);
    let run_read = Run(Param("run_id"), Read);
    let run_update = Run(Param("run_id"), Update);
    under(
        &V2,
        vec![
            (post.clone(), "/experiments/create", CreateExperiment),
            (get.clone(), "/experiments/get", experiment),
            (
                get.clone(),
                "/experiments/get-by-name",
                ExperimentByName(Read),
            ),
            (
                post.clone(),
                "/experiments/delete",
                Experiment(Param("experiment_id"), Delete),
            ),
            (
                post.clone(),
                "/experiments/restore",
                Experiment(Param("experiment_id"), Delete),
            ),
            (
                post.clone(),
                "/experiments/update",
                Experiment(Param("experiment_id"), Update),
            ),
            (
                post.clone(),
                "/experiments/set-experiment-tag",
                Experiment(Param("experiment_id"), Update),
            ),
            (
                post.clone(),
                "/experiments/delete-experiment-tag",
                Experiment(Param("experiment_id"), Update),
            ),
            (post.clone(), "/experiments/search", Filtered),
            (get.clone(), "/experiments/search", Filtered),
            (
                post.clone(),
                "/runs/create",
                CreateInExperiment(Param("experiment_id"), "run"),
            ),
            (get.clone(), "/runs/get", run_read),
            (post.clone(), "/runs/update", run_update),
            (post.clone(), "/runs/delete", Run(Param("run_id"), Delete)),
            (post.clone(), "/runs/restore", Run(Param("run_id"), Delete)),
            (post.clone(), "/runs/log-metric", run_update),
            (post.clone(), "/runs/log-parameter", run_update),
            (post.clone(), "/runs/set-tag", run_update),
            (post.clone(), "/runs/delete-tag", run_update),
            (post.clone(), "/runs/log-batch", run_update),
            (post.clone(), "/runs/log-inputs", run_update),
            (post.clone(), "/runs/outputs", run_update),
            (post.clone(), "/runs/search", SearchRuns),
            (get.clone(), "/runs/search", SearchRuns),
            (get.clone(), "/metrics/get-history", run_read),
            (
                get.clone(),
                "/metrics/get-history-bulk-interval",
                Runs("run_ids", Read),
            ),
            // Logged models.
            (
                post.clone(),
                "/logged-models",
                CreateInExperiment(Param("experiment_id"), "logged_model"),
            ),
            (post.clone(), "/logged-models/search", Filtered),
            (
                get.clone(),
                "/logged-models/{model_id}",
                LoggedModel(Path("model_id"), Read),
            ),
            (
                patch.clone(),
                "/logged-models/{model_id}",
                LoggedModel(Path("model_id"), Update),
            ),
            (
                delete.clone(),
                "/logged-models/{model_id}",
                LoggedModel(Path("model_id"), Delete),
            ),
            (
                patch.clone(),
                "/logged-models/{model_id}/tags",
                LoggedModel(Path("model_id"), Update),
            ),
            (
                delete.clone(),
                "/logged-models/{model_id}/tags/{tag_key}",
                LoggedModel(Path("model_id"), Delete),
            ),
            (
                post.clone(),
                "/logged-models/{model_id}/params",
                LoggedModel(Path("model_id"), Update),
            ),
            (
                get.clone(),
                "/logged-models/{model_id}/artifacts/directories",
                LoggedModel(Path("model_id"), Read),
            ),
            // Model registry and prompts.
            (
                post.clone(),
                "/registered-models/create",
                CreateRegisteredModel,
            ),
            (get.clone(), "/registered-models/get", RegisteredModel(Read)),
            (
                post.clone(),
                "/registered-models/rename",
                RegisteredModel(Update),
            ),
            (
                patch.clone(),
                "/registered-models/update",
                RegisteredModel(Update),
            ),
            (
                delete.clone(),
                "/registered-models/delete",
                RegisteredModel(Delete),
            ),
            (get.clone(), "/registered-models/search", Filtered),
            (
                post.clone(),
                "/registered-models/get-latest-versions",
                ModelVersion(Read),
            ),
            (
                get.clone(),
                "/registered-models/get-latest-versions",
                ModelVersion(Read),
            ),
            (
                post.clone(),
                "/registered-models/set-tag",
                RegisteredModel(Update),
            ),
            (
                delete.clone(),
                "/registered-models/delete-tag",
                RegisteredModel(Update),
            ),
            (
                post.clone(),
                "/registered-models/alias",
                ModelVersion(Update),
            ),
            (
                delete.clone(),
                "/registered-models/alias",
                ModelVersion(Update),
            ),
            (get.clone(), "/registered-models/alias", ModelVersion(Read)),
            (
                post.clone(),
                "/model-versions/create",
                RegisteredModel(Update),
            ),
            (get.clone(), "/model-versions/get", ModelVersion(Read)),
            (
                patch.clone(),
                "/model-versions/update",
                ModelVersion(Update),
            ),
            (
                delete.clone(),
                "/model-versions/delete",
                ModelVersion(Delete),
            ),
            (
                post.clone(),
                "/model-versions/transition-stage",
                ModelVersion(Update),
            ),
            (get.clone(), "/model-versions/search", Filtered),
            (
                get.clone(),
                "/model-versions/get-download-uri",
                ModelVersion(Read),
            ),
            (
                post.clone(),
                "/model-versions/set-tag",
                ModelVersion(Update),
            ),
            (
                delete.clone(),
                "/model-versions/delete-tag",
                ModelVersion(Delete),
            ),
            // Webhooks are admin-only in MLflow.
            (post.clone(), "/webhooks", Admin),
            (get.clone(), "/webhooks", Admin),
            (get.clone(), "/webhooks/{webhook_id}", Admin),
            (patch.clone(), "/webhooks/{webhook_id}", Admin),
            (delete.clone(), "/webhooks/{webhook_id}", Admin),
            (post.clone(), "/webhooks/{webhook_id}/test", Admin),
            // Traces under 2.0.
            (
                post.clone(),
                "/traces/link-to-run",
                Run(Param("run_id"), Update),
            ),
            (
                post.clone(),
                "/traces/link-prompts",
                Trace(Param("trace_id"), Update),
            ),
            (
                patch.clone(),
                "/traces/{trace_id}/tags",
                Trace(Path("trace_id"), Update),
            ),
            (
                delete.clone(),
                "/traces/{trace_id}/tags",
                Trace(Path("trace_id"), Update),
            ),
            (post.clone(), "/traces/delete-traces", DeleteTraces),
            // Users (MLflow's auth routes under 2.0).
            (post.clone(), "/users/create", WorkspaceAdmin),
            (post.clone(), "/users/create-ui", WorkspaceAdmin),
            (get.clone(), "/users/get", SelfUser),
            (get.clone(), "/users/current", Authenticated),
            (get.clone(), "/users/list", Authenticated),
            (patch.clone(), "/users/update-password", SelfUser),
            (patch.clone(), "/users/update-admin", Admin),
            (delete.clone(), "/users/delete", Admin),
        ],
    );
    under(
        &V2[1..],
        vec![
            (
                get.clone(),
                "/metrics/get-history-bulk",
                Runs("run_id", Read),
            ),
            (
                post.clone(),
                "/experiments/search-datasets",
                Experiments("experiment_ids", Read),
            ),
        ],
    );
    under(
        &V3,
        vec![
            (post.clone(), "/traces", StartTrace),
            (get.clone(), "/traces/get", Trace(Param("trace_id"), Read)),
            (get.clone(), "/traces/batchGet", Traces("trace_ids", Read)),
            (
                post.clone(),
                "/traces/batchGetInfos",
                Traces("trace_ids", Read),
            ),
            (post.clone(), "/traces/search", SearchTraces),
            (
                get.clone(),
                "/traces/{trace_id}",
                Trace(Path("trace_id"), Read),
            ),
            (
                post.clone(),
                "/traces/{trace_id}/assessments",
                Assessment(Update),
            ),
            (
                get.clone(),
                "/traces/{trace_id}/assessments/{assessment_id}",
                Assessment(Read),
            ),
            (
                patch.clone(),
                "/traces/{trace_id}/assessments/{assessment_id}",
                Assessment(Update),
            ),
            (
                delete.clone(),
                "/traces/{trace_id}/assessments/{assessment_id}",
                Assessment(Delete),
            ),
            (
                patch.clone(),
                "/traces/{trace_id}/tags",
                Trace(Path("trace_id"), Update),
            ),
            (
                delete.clone(),
                "/traces/{trace_id}/tags",
                Trace(Path("trace_id"), Update),
            ),
            (post.clone(), "/traces/delete-traces", DeleteTraces),
            // Evaluation datasets.
            (
                post.clone(),
                "/datasets/create",
                Experiments("experiment_ids", Update),
            ),
            (
                post.clone(),
                "/datasets/search",
                Experiments("experiment_ids", Read),
            ),
            (
                get.clone(),
                "/datasets/search",
                Experiments("experiment_ids", Read),
            ),
            (get.clone(), "/datasets/{dataset_id}", Dataset(Read)),
            (delete.clone(), "/datasets/{dataset_id}", Dataset(Delete)),
            (
                patch.clone(),
                "/datasets/{dataset_id}/tags",
                Dataset(Update),
            ),
            (
                delete.clone(),
                "/datasets/{dataset_id}/tags/{key}",
                Dataset(Update),
            ),
            (
                post.clone(),
                "/datasets/{dataset_id}/records",
                Dataset(Update),
            ),
            (get.clone(), "/datasets/{dataset_id}/records", Dataset(Read)),
            (
                delete.clone(),
                "/datasets/{dataset_id}/records",
                Dataset(Update),
            ),
            (
                get.clone(),
                "/datasets/{dataset_id}/experiment-ids",
                Dataset(Read),
            ),
            (
                post.clone(),
                "/datasets/{dataset_id}/add-experiments",
                DatasetExperiments,
            ),
            (
                post.clone(),
                "/datasets/{dataset_id}/remove-experiments",
                DatasetExperiments,
            ),
            // Registered scorers.
            (
                post.clone(),
                "/scorers/register",
                Experiment(Param("experiment_id"), Update),
            ),
            (get.clone(), "/scorers/list", ListScorers),
            (get.clone(), "/scorers/versions", Scorer(Read)),
            (get.clone(), "/scorers/get", Scorer(Read)),
            (delete.clone(), "/scorers/delete", Scorer(Delete)),
            (get.clone(), "/scorers/online-configs", ListScorers),
            // MLflow 3.17's auth routes under 3.0.
            (get.clone(), "/users/current/permissions", Authenticated),
            (get.clone(), "/users/permissions/list", SelfOrWorkspaceAdmin),
            (post.clone(), "/users/permissions/grant", ManageResource),
            (post.clone(), "/users/permissions/revoke", ManageResource),
            (get.clone(), "/users/permissions/get", SelfOrWorkspaceAdmin),
            (get.clone(), "/users/roles/list", SelfOrWorkspaceAdmin),
            (post.clone(), "/roles/create", WorkspaceAdmin),
            (get.clone(), "/roles/get", ViewRoles),
            (get.clone(), "/roles/list", ViewRoles),
            (patch.clone(), "/roles/update", WorkspaceAdmin),
            (delete.clone(), "/roles/delete", WorkspaceAdmin),
            (post.clone(), "/roles/permissions/add", WorkspaceAdmin),
            (delete.clone(), "/roles/permissions/remove", WorkspaceAdmin),
            (get.clone(), "/roles/permissions/list", ViewRoles),
            (patch.clone(), "/roles/permissions/update", WorkspaceAdmin),
            (post.clone(), "/roles/assign", WorkspaceAdmin),
            (delete.clone(), "/roles/unassign", WorkspaceAdmin),
            (get.clone(), "/roles/users/list", WorkspaceAdmin),
        ],
    );
    under(
        &ARTIFACTS,
        vec![
            (
                get.clone(),
                "/mlflow-artifacts/artifacts",
                ArtifactPath(Read),
            ),
            (
                get.clone(),
                "/mlflow-artifacts/artifacts/{*artifact_path}",
                ArtifactPath(Read),
            ),
            (
                put.clone(),
                "/mlflow-artifacts/artifacts/{*artifact_path}",
                ArtifactPath(Update),
            ),
            (
                delete.clone(),
                "/mlflow-artifacts/artifacts/{*artifact_path}",
                ArtifactPath(Manage),
            ),
            (
                post.clone(),
                "/mlflow-artifacts/mpu/create/{*artifact_path}",
                ArtifactPath(Update),
            ),
            (
                post.clone(),
                "/mlflow-artifacts/mpu/complete/{*artifact_path}",
                ArtifactPath(Update),
            ),
            (
                post.clone(),
                "/mlflow-artifacts/mpu/abort/{*artifact_path}",
                ArtifactPath(Update),
            ),
            (
                get.clone(),
                "/mlflow-artifacts/presigned/{*artifact_path}",
                ArtifactPath(Read),
            ),
            (get.clone(), "/mlflow/artifacts/list", run_read),
        ],
    );
    under(
        &[""],
        vec![
            (get.clone(), "/get-artifact", run_read),
            (
                get.clone(),
                "/model-versions/get-artifact",
                ModelVersion(Read),
            ),
            (post.clone(), "/v1/traces", Otlp),
            (get.clone(), "/version", Authenticated),
            (get.clone(), "/metrics", Authenticated),
            (get.clone(), crate::openapi::OPENAPI_PATH, Authenticated),
            (get.clone(), crate::routes::auth::SIGNUP, WorkspaceAdmin),
        ],
    );
    table
}

fn rule_table() -> &'static HashMap<(Method, String), Rule> {
    static TABLE: OnceLock<HashMap<(Method, String), Rule>> = OnceLock::new();
    TABLE.get_or_init(|| {
        rules()
            .into_iter()
            .map(|(method, path, rule)| ((method, path), rule))
            .collect()
    })
}

/// The rule of a mounted route pattern (HEAD is GET's).
pub fn rule_for(method: &Method, pattern: &str) -> Option<Rule> {
    let method = if method == Method::HEAD {
        Method::GET
    } else {
        method.clone()
    };
    rule_table().get(&(method, pattern.to_owned())).copied()
}

// ------------------------------------------------------------------------------------------------------
// Request parameters.
// ------------------------------------------------------------------------------------------------------

/// The request's parameters, read the way MLflow's `_get_request_param` does.
struct Params {
    query: Vec<(String, String)>,
    body: Value,
    path: HashMap<String, String>,
    is_get: bool,
}

fn value_to_string(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

impl Params {
    fn one(&self, name: &str) -> Option<String> {
        let found = if self.is_get {
            self.query
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        } else {
            self.body.get(name).and_then(value_to_string).or_else(|| {
                // DELETE may carry its parameters in the query.
                self.query
                    .iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.clone())
            })
        };
        found.or_else(|| self.path.get(name).cloned())
    }

    fn required(&self, name: &str) -> Result<String, Error> {
        self.one(name)
            .or_else(|| (name == "run_id").then(|| self.one("run_uuid")).flatten())
            .ok_or_else(|| Error::missing_parameter(name))
    }

    fn source(&self, source: Source) -> Result<String, Error> {
        match source {
            Source::Param(name) => self.required(name),
            Source::Path(name) => self
                .path
                .get(name)
                .cloned()
                .ok_or_else(|| Error::missing_parameter(name)),
        }
    }

    fn list(&self, name: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .query
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect();
        match self.body.get(name) {
            Some(Value::Array(items)) => values.extend(items.iter().filter_map(value_to_string)),
            Some(item) => values.extend(value_to_string(item)),
            None => {}
        }
        values
    }
}

// ------------------------------------------------------------------------------------------------------
// The middleware.
// ------------------------------------------------------------------------------------------------------

/// What to do with the answer once the handler has run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    Nothing,
    GrantExperiment,
    GrantRegisteredModel,
    RenameRegisteredModel,
    DeleteRegisteredModel,
    GrantScorer,
    Filter,
    /// Filtered, then refilled up to `max_results` (MLflow's `filter_search_experiments`).
    FilterExperiments,
    /// Filtered, then refilled up to `max_results` (MLflow's `filter_search_registered_models`).
    FilterRegisteredModels,
}

fn after_for(pattern: &str, method: &Method) -> After {
    let tail = pattern
        .strip_prefix("/api/2.0/mlflow")
        .or_else(|| pattern.strip_prefix("/ajax-api/2.0/mlflow"))
        .or_else(|| pattern.strip_prefix("/api/3.0/mlflow"))
        .or_else(|| pattern.strip_prefix("/ajax-api/3.0/mlflow"))
        .unwrap_or(pattern);
    match (method.as_str(), tail) {
        ("POST", "/experiments/create") => After::GrantExperiment,
        ("POST", "/registered-models/create") => After::GrantRegisteredModel,
        ("POST", "/registered-models/rename") => After::RenameRegisteredModel,
        ("DELETE", "/registered-models/delete") => After::DeleteRegisteredModel,
        ("POST", "/scorers/register") => After::GrantScorer,
        (_, "/experiments/search") => After::FilterExperiments,
        (_, "/registered-models/search") => After::FilterRegisteredModels,
        (
            _,
            "/model-versions/search"
            | "/runs/search"
            | "/logged-models/search"
            | "/traces/search"
            | "/scorers/list",
        ) => After::Filter,
        _ => After::Nothing,
    }
}

/// The basic-auth middleware: authenticates, applies the route's rule, then the after-request work.
pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(auth) = state.auth.clone() else {
        return next.run(request).await;
    };
    if is_unprotected(request.uri().path()) {
        return next.run(request).await;
    }
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let user = match auth.authenticate(request.headers(), ip).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let mut request = request;
    request
        .extensions_mut()
        .insert(AuthenticatedUser(user.clone()));
    let Some(pattern) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned())
    else {
        // No route matched: the fallback answers 404.
        return next.run(request).await;
    };
    let method = request.method().clone();
    let after = after_for(&pattern, &method);
    if !user.is_admin {
        let Some(rule) = rule_for(&method, &pattern) else {
            tracing::warn!(%method, route = pattern, "no permission rule covers the route; refused");
            let mut response = forbidden();
            response.extensions_mut().insert(NoRule);
            return response;
        };
        let (rebuilt, params) = match read_params(request, rule.reads_body()).await {
            Ok(parts) => parts,
            Err(response) => return response,
        };
        request = rebuilt;
        match check(&state, &auth, &user, rule, &params, request.headers()).await {
            Ok(true) => {}
            Ok(false) => return forbidden(),
            Err(error) => return crate::error::ApiError(error).into_response(),
        }
    }
    let refills = matches!(
        after,
        After::FilterExperiments | After::FilterRegisteredModels
    ) && !user.is_admin;
    let request_body = if matches!(
        after,
        After::RenameRegisteredModel | After::DeleteRegisteredModel
    ) || refills
    {
        let query = request.uri().query().unwrap_or("").to_owned();
        let (rebuilt, params) = match read_params(request, true).await {
            Ok(parts) => parts,
            Err(response) => return response,
        };
        request = rebuilt;
        if params.is_get {
            crate::extract::query_to_json(&query)
        } else {
            params.body
        }
    } else {
        Value::Null
    };
    let response = next.run(request).await;
    if after == After::Nothing || !response.status().is_success() {
        return response;
    }
    if matches!(
        after,
        After::Filter | After::FilterExperiments | After::FilterRegisteredModels
    ) && user.is_admin
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return error_response(ErrorCode::InternalError, "internal error".to_owned());
    };
    let Ok(mut answer) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    match after_request(&state, &auth, &user, after, &request_body, &mut answer).await {
        Ok(true) => {
            let encoded = serde_json::to_vec(&answer).unwrap_or_default();
            let mut response = Response::from_parts(parts, Body::from(encoded));
            response.headers_mut().remove(header::CONTENT_LENGTH);
            response
        }
        Ok(false) => Response::from_parts(parts, Body::from(bytes)),
        Err(error) => crate::error::ApiError(error).into_response(),
    }
}

/// Reads the query, the path parameters and (when asked and JSON) the body, and rebuilds the request.
async fn read_params(request: Request, read_body: bool) -> Result<(Request, Params), Response> {
    let (mut parts, body) = request.into_parts();
    let query: Vec<(String, String)> = parts.uri.query().map(url_decoded_pairs).unwrap_or_default();
    let path: HashMap<String, String> = {
        use axum::extract::FromRequestParts;
        match RawPathParams::from_request_parts(&mut parts, &()).await {
            Ok(params) => params
                .iter()
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect(),
            Err(_) => HashMap::new(),
        }
    };
    let is_get = parts.method == Method::GET || parts.method == Method::HEAD;
    let is_json_like = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_none_or(|value| value.contains("json") || value.starts_with("text/plain"));
    let (body, json) = if read_body && !is_get && is_json_like {
        let bytes: Bytes = match axum::body::to_bytes(body, MAX_RULE_BODY).await {
            Ok(bytes) => bytes,
            Err(_) => {
                return Err(error_response(
                    ErrorCode::InvalidParameterValue,
                    "request body too large".to_owned(),
                ))
            }
        };
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (Body::from(bytes), json)
    } else {
        (body, Value::Null)
    };
    Ok((
        Request::from_parts(parts, body),
        Params {
            query,
            body: json,
            path,
            is_get,
        },
    ))
}

pub(crate) fn url_decoded_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |text: &str| {
                percent_encoding::percent_decode_str(&text.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(key), decode(value))
        })
        .collect()
}

/// Lazily loaded facts a rule needs: the caller's grants.
struct Decider<'a> {
    auth: &'a Auth,
    user: &'a User,
    grants: Option<Vec<Grant>>,
}

impl Decider<'_> {
    async fn grants(&mut self) -> Result<&[Grant], Error> {
        if self.grants.is_none() {
            self.grants = Some(self.auth.grants(self.user).await?);
        }
        Ok(self.grants.as_deref().unwrap_or_default())
    }

    async fn allows(&mut self, requirements: &[Requirement]) -> Result<bool, Error> {
        let default = self.auth.default_permission;
        let grants = self.grants().await?;
        Ok(authorize(requirements, grants, default))
    }

    async fn experiment(&mut self, experiment_id: &str, action: Action) -> Result<bool, Error> {
        self.allows(&[Requirement::new("experiment", experiment_id, action)])
            .await
    }

    /// `action` on a `tier` object of the experiment: READ on the experiment and `action` on the tier,
    /// which falls back to the experiment when the caller holds no tier grant.
    async fn in_experiment(
        &mut self,
        experiment_id: &str,
        tier: &'static str,
        action: Action,
    ) -> Result<bool, Error> {
        self.allows(&[
            Requirement::new("experiment", experiment_id, Action::Read),
            Requirement::new(tier, "*", action).or_else("experiment", experiment_id),
        ])
        .await
    }

    /// [`Decider::in_experiment`] on the experiment an object was found in; refused when it was not found.
    async fn in_found_experiment(
        &mut self,
        experiment_id: Option<String>,
        tier: &'static str,
        action: Action,
    ) -> Result<bool, Error> {
        match experiment_id {
            Some(experiment_id) => self.in_experiment(&experiment_id, tier, action).await,
            None => Ok(false),
        }
    }

    async fn create_in_experiment(
        &mut self,
        experiment_id: &str,
        tier: &'static str,
    ) -> Result<bool, Error> {
        self.allows(&[
            Requirement::new("experiment", experiment_id, Action::Update),
            Requirement::new(tier, "*", Action::NotDenied),
        ])
        .await
    }

    fn is_workspace_admin(&self) -> bool {
        self.grants
            .as_deref()
            .is_some_and(|grants| grants.iter().any(Grant::is_workspace_admin))
    }
}

async fn run_experiment(state: &AppState, run_id: &str) -> Result<Option<String>, Error> {
    Ok(state
        .tracking
        .get_run(run_id)
        .await?
        .map(|run| run.info.experiment_id))
}

/// The experiment of a trace, `None` when the trace does not exist.
async fn trace_experiment(state: &AppState, trace_id: &str) -> Result<Option<String>, Error> {
    match state.traces.get_trace_info(trace_id).await {
        Ok(response) => Ok(serde_json::to_value(response).ok().and_then(|value| {
            value
                .pointer("/trace/trace_info/trace_location/mlflow_experiment/experiment_id")
                .and_then(value_to_string)
        })),
        Err(error) if error.code == ErrorCode::ResourceDoesNotExist => Ok(None),
        Err(error) => Err(error),
    }
}

async fn logged_model_experiment(
    state: &AppState,
    model_id: &str,
) -> Result<Option<String>, Error> {
    let request = ferroflow_proto::logged_models::GetLoggedModel {
        allow_deleted: Some("true".to_owned()),
    };
    match state
        .logged_models
        .get_logged_model(model_id, request)
        .await
    {
        Ok(response) => Ok(serde_json::to_value(response).ok().and_then(|value| {
            value
                .pointer("/model/info/experiment_id")
                .and_then(value_to_string)
        })),
        Err(error) if error.code == ErrorCode::ResourceDoesNotExist => Ok(None),
        Err(error) => Err(error),
    }
}

/// Whether tags (a JSON list of `{key, value}`) mark a prompt.
fn tags_mark_prompt(tags: Option<&Value>) -> bool {
    tags.and_then(Value::as_array).is_some_and(|tags| {
        tags.iter().any(|tag| {
            tag.get("key").and_then(Value::as_str) == Some("mlflow.prompt.is_prompt")
                && tag
                    .get("value")
                    .and_then(Value::as_str)
                    .is_some_and(|value| value.eq_ignore_ascii_case("true"))
        })
    })
}

/// The grant type of the registered model named `name`: `prompt` or `registered_model`; `None` when
/// it does not exist.
async fn registry_type(state: &AppState, name: &str) -> Result<Option<&'static str>, Error> {
    let request = ferroflow_proto::registry::RegisteredModelName {
        name: Some(name.to_owned()),
    };
    match state.registry.get_registered_model(request).await {
        Ok(response) => {
            let value = serde_json::to_value(response).unwrap_or(Value::Null);
            Ok(Some(
                if tags_mark_prompt(value.pointer("/registered_model/tags")) {
                    "prompt"
                } else {
                    "registered_model"
                },
            ))
        }
        Err(error) if error.code == ErrorCode::ResourceDoesNotExist => Ok(None),
        Err(error) => Err(error),
    }
}

/// The experiment id a proxied artifact path names, and the tier below it: `None` for the tier when
/// the path names the experiment only; `Err` when the path cannot be read (denied).
fn artifact_path_target(path: &str) -> Result<Option<(String, Option<&'static str>)>, ()> {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| ())?;
    if decoded.contains('%') || decoded.contains('\\') {
        return Err(());
    }
    let segments: Vec<&str> = decoded
        .trim_start_matches('/')
        .split('/')
        .filter(|segment| !segment.is_empty() && *segment != ".")
        .collect();
    if segments.contains(&"..") {
        return Err(());
    }
    let Some(first) = segments.first() else {
        return Ok(None);
    };
    if !first.bytes().all(|byte| byte.is_ascii_digit()) {
        return Ok(None);
    }
    let tier = match segments.get(1) {
        Some(&"models") => Some("logged_model"),
        Some(&"traces") => Some("trace"),
        Some(segment) if segment.len() == 32 && segment.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some("run")
        }
        _ => None,
    };
    Ok(Some(((*first).to_owned(), tier)))
}

/// Applies `rule` for a non-admin caller.
async fn check(
    state: &AppState,
    auth: &Auth,
    user: &User,
    rule: Rule,
    params: &Params,
    headers: &HeaderMap,
) -> Result<bool, Error> {
    let mut decider = Decider {
        auth,
        user,
        grants: None,
    };
    match rule {
        Rule::Authenticated | Rule::Filtered => Ok(true),
        Rule::Admin => Ok(false),
        Rule::WorkspaceAdmin => {
            decider.grants().await?;
            Ok(decider.is_workspace_admin())
        }
        Rule::SelfUser => Ok(params.required("username")? == user.username),
        Rule::SelfOrWorkspaceAdmin => {
            if params.required("username")? == user.username {
                return Ok(true);
            }
            decider.grants().await?;
            Ok(decider.is_workspace_admin())
        }
        Rule::ViewRoles => {
            decider.grants().await?;
            if decider.is_workspace_admin() {
                return Ok(true);
            }
            Ok(!auth.store.list_user_roles(user.id).await?.is_empty())
        }
        Rule::ManageResource => {
            let resource_type = params.required("resource_type")?;
            let resource_id = params.required("resource_id")?;
            let kind = match RESOURCE_TYPES
                .iter()
                .find(|(name, _)| *name == resource_type && *name != "workspace")
            {
                Some((name, _)) => *name,
                None => return Ok(false),
            };
            let requirement = match kind {
                "scorer" => {
                    let experiment_id = resource_id.split('/').next().unwrap_or_default();
                    Requirement::new("scorer", resource_id.clone(), Action::Manage)
                        .or_else("experiment", experiment_id)
                }
                _ => Requirement::new(kind, resource_id, Action::Manage),
            };
            decider.allows(&[requirement]).await
        }
        Rule::Experiment(source, action) => {
            let experiment_id = params.source(source)?;
            decider.experiment(&experiment_id, action).await
        }
        Rule::ExperimentByName(action) => {
            let name = params.required("experiment_name")?;
            match state.tracking.get_experiment_by_name(&name).await? {
                Some(experiment) => decider.experiment(&experiment.experiment_id, action).await,
                None => Ok(true), // the handler answers RESOURCE_DOES_NOT_EXIST
            }
        }
        Rule::Experiments(name, action) => {
            let ids = params.list(name);
            if ids.is_empty() {
                return Ok(false);
            }
            for experiment_id in ids {
                if !decider.experiment(&experiment_id, action).await? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Rule::CreateExperiment => {
            decider
                .allows(&[Requirement::new("experiment", "*", Action::NotDenied)])
                .await
        }
        Rule::CreateInExperiment(source, tier) => {
            let experiment_id = params.source(source)?;
            decider.create_in_experiment(&experiment_id, tier).await
        }
        Rule::StartTrace => {
            let experiment_id = params
                .body
                .pointer("/trace/trace_info/trace_location/mlflow_experiment/experiment_id")
                .or_else(|| {
                    params
                        .body
                        .pointer("/trace_info/trace_location/mlflow_experiment/experiment_id")
                })
                .and_then(value_to_string);
            match experiment_id {
                Some(experiment_id) => decider.create_in_experiment(&experiment_id, "trace").await,
                None => Ok(false),
            }
        }
        Rule::Otlp => {
            let experiment_id = headers
                .get("x-mlflow-experiment-id")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            match experiment_id {
                Some(experiment_id) => decider.create_in_experiment(&experiment_id, "trace").await,
                None => Ok(false),
            }
        }
        Rule::Run(source, action) => {
            let run_id = params.source(source)?;
            let found = run_experiment(state, &run_id).await?;
            decider.in_found_experiment(found, "run", action).await
        }
        Rule::Runs(name, action) => {
            let run_ids = params.list(name);
            if run_ids.is_empty() {
                return Ok(true); // the handler refuses the missing parameter
            }
            for run_id in run_ids {
                let found = run_experiment(state, &run_id).await?;
                if !decider.in_found_experiment(found, "run", action).await? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Rule::SearchRuns => {
            for experiment_id in params.list("experiment_ids") {
                if !decider.experiment(&experiment_id, Action::Read).await? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Rule::LoggedModel(source, action) => {
            let model_id = params.source(source)?;
            let found = logged_model_experiment(state, &model_id).await?;
            decider
                .in_found_experiment(found, "logged_model", action)
                .await
        }
        Rule::Trace(source, action) => {
            let trace_id = params.source(source)?;
            let found = trace_experiment(state, &trace_id).await?;
            decider.in_found_experiment(found, "trace", action).await
        }
        Rule::Traces(name, action) => {
            for trace_id in params.list(name) {
                let found = trace_experiment(state, &trace_id).await?;
                if !decider.in_found_experiment(found, "trace", action).await? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Rule::SearchTraces => {
            let mut experiment_ids = params.list("experiment_ids");
            if let Some(Value::Array(locations)) = params.body.get("locations") {
                experiment_ids.extend(locations.iter().filter_map(|location| {
                    location
                        .pointer("/mlflow_experiment/experiment_id")
                        .and_then(value_to_string)
                }));
            }
            for experiment_id in experiment_ids {
                if !decider
                    .in_experiment(&experiment_id, "trace", Action::Read)
                    .await?
                {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Rule::DeleteTraces => {
            let experiment_id = params.required("experiment_id")?;
            decider
                .in_experiment(&experiment_id, "trace", Action::Delete)
                .await
        }
        Rule::Assessment(action) => {
            let trace_id = params.source(Source::Path("trace_id"))?;
            let found = trace_experiment(state, &trace_id).await?;
            decider
                .in_found_experiment(found, "assessment", action)
                .await
        }
        Rule::RegisteredModel(action) => {
            let name = params.required("name")?;
            match registry_type(state, &name).await? {
                Some(kind) => {
                    decider
                        .allows(&[Requirement::new(kind, name, action)])
                        .await
                }
                None => Ok(true), // the handler answers RESOURCE_DOES_NOT_EXIST
            }
        }
        Rule::ModelVersion(action) => {
            let name = params.required("name")?;
            match registry_type(state, &name).await? {
                Some(kind) => {
                    let version_tier = if kind == "prompt" {
                        "prompt_version"
                    } else {
                        "registered_model_version"
                    };
                    decider
                        .allows(&[
                            Requirement::new(kind, name.clone(), Action::Read),
                            Requirement::new(version_tier, "*", action).or_else(kind, name),
                        ])
                        .await
                }
                None => Ok(true),
            }
        }
        Rule::CreateRegisteredModel => {
            let name = params.required("name")?;
            let kind = if tags_mark_prompt(params.body.get("tags")) {
                "prompt"
            } else {
                "registered_model"
            };
            decider
                .allows(&[Requirement::new(kind, name, Action::NotDenied)])
                .await
        }
        Rule::Dataset(action) => {
            let dataset_id = params.source(Source::Path("dataset_id"))?;
            let experiment_ids = match state.eval_datasets.experiment_ids(&dataset_id).await {
                Ok(response) => response.experiment_ids,
                Err(error) if error.code == ErrorCode::ResourceDoesNotExist => return Ok(false),
                Err(error) => return Err(error),
            };
            if experiment_ids.is_empty() {
                // A dataset tied to no experiment: the default permission decides.
                return Ok(action.met_by(auth.default_permission));
            }
            for experiment_id in experiment_ids {
                if !decider.experiment(&experiment_id, action).await? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Rule::DatasetExperiments => {
            let dataset_id = params.source(Source::Path("dataset_id"))?;
            let mut experiment_ids = match state.eval_datasets.experiment_ids(&dataset_id).await {
                Ok(response) => response.experiment_ids,
                Err(error) if error.code == ErrorCode::ResourceDoesNotExist => return Ok(false),
                Err(error) => return Err(error),
            };
            let added = params.list("experiment_ids");
            if added.is_empty() {
                return Ok(false);
            }
            experiment_ids.extend(added);
            for experiment_id in experiment_ids {
                if !decider.experiment(&experiment_id, Action::Update).await? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Rule::Scorer(action) => {
            let experiment_id = params.required("experiment_id")?;
            let name = params.required("name")?;
            let pattern = scorer_pattern(&experiment_id, &name);
            decider
                .allows(&[
                    Requirement::new("experiment", experiment_id.clone(), Action::Read),
                    Requirement::new("scorer", pattern, action)
                        .or_else("experiment", experiment_id),
                ])
                .await
        }
        Rule::ListScorers => match params.one("experiment_id") {
            Some(experiment_id) if !experiment_id.is_empty() => {
                decider.experiment(&experiment_id, Action::Read).await
            }
            _ => Ok(true),
        },
        Rule::ArtifactPath(action) => {
            let path = params
                .path
                .get("artifact_path")
                .cloned()
                .or_else(|| params.one("path"))
                .unwrap_or_default();
            match artifact_path_target(&path) {
                Err(()) => Ok(false),
                Ok(None) => Ok(action.met_by(auth.default_permission)),
                Ok(Some((experiment_id, None))) => decider.experiment(&experiment_id, action).await,
                Ok(Some((experiment_id, Some(tier)))) => {
                    decider.in_experiment(&experiment_id, tier, action).await
                }
            }
        }
    }
}

/// The permission `user` holds on a resource (MLflow's `_resolve_user_permission_for_resource`), as the
/// runtime check resolves it from the user's grants and `default_permission`.
pub async fn user_permission(
    auth: &Auth,
    user: &User,
    resource_type: &'static str,
    resource_id: &str,
) -> Result<Permission, Error> {
    let grants = auth.grants(user).await?;
    let requirement = Requirement::new(resource_type, resource_id, Action::Read);
    Ok(governing_permission(
        &requirement,
        &grants,
        auth.default_permission,
    ))
}

/// MLflow's grant key of a scorer: `<experiment_id>/<url-quoted name>`.
pub fn scorer_pattern(experiment_id: &str, name: &str) -> String {
    const QUOTE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'_')
        .remove(b'.')
        .remove(b'-')
        .remove(b'~');
    format!(
        "{experiment_id}/{}",
        percent_encoding::utf8_percent_encode(name, QUOTE)
    )
}

/// The after-request work; `Ok(true)` when `answer` was changed.
async fn after_request(
    state: &AppState,
    auth: &Auth,
    user: &User,
    after: After,
    request_body: &Value,
    answer: &mut Value,
) -> Result<bool, Error> {
    let grant = |kind: &'static str, pattern: String| async move {
        auth.store
            .grant_user_permission(user.id, DEFAULT_WORKSPACE, kind, &pattern, "MANAGE", true)
            .await
            .map(|_| false)
    };
    match after {
        After::Nothing => Ok(false),
        After::GrantExperiment => match answer.get("experiment_id").and_then(value_to_string) {
            Some(experiment_id) => grant("experiment", experiment_id).await,
            None => Ok(false),
        },
        After::GrantRegisteredModel => {
            let model = answer.get("registered_model");
            let name = model
                .and_then(|model| model.get("name"))
                .and_then(value_to_string);
            let kind = if tags_mark_prompt(model.and_then(|model| model.get("tags"))) {
                "prompt"
            } else {
                "registered_model"
            };
            match name {
                Some(name) => grant(kind, name).await,
                None => Ok(false),
            }
        }
        After::GrantScorer => {
            let experiment_id = answer.get("experiment_id").and_then(value_to_string);
            let name = answer.get("name").and_then(value_to_string);
            match (experiment_id, name) {
                (Some(experiment_id), Some(name)) => {
                    grant("scorer", scorer_pattern(&experiment_id, &name)).await
                }
                _ => Ok(false),
            }
        }
        After::RenameRegisteredModel => {
            let old = request_body.get("name").and_then(value_to_string);
            let new = request_body.get("new_name").and_then(value_to_string);
            if let (Some(old), Some(new)) = (old, new) {
                for kind in ["registered_model", "prompt"] {
                    auth.store
                        .rename_grants_for_resource(kind, &old, &new)
                        .await?;
                }
            }
            Ok(false)
        }
        After::DeleteRegisteredModel => {
            if let Some(name) = request_body.get("name").and_then(value_to_string) {
                for kind in ["registered_model", "prompt"] {
                    auth.store.delete_grants_for_resource(kind, &name).await?;
                }
            }
            Ok(false)
        }
        After::Filter => filter_answer(auth, user, answer).await,
        After::FilterExperiments | After::FilterRegisteredModels => {
            let readable = Readable::of(auth, user).await?;
            let filtered = readable.filter(answer);
            let refilled = refill(state, &readable, after, request_body, answer).await?;
            Ok(filtered || refilled)
        }
    }
}

/// Fetches further pages of a filtered search until it holds `max_results` readable items or the results
/// end, with the page token after the last item looked at (MLflow's `filter_search_experiments` and
/// `filter_search_registered_models`: each further page is read from the previous token, cut to the
/// places still free, and the token moves on by what was read).
async fn refill(
    state: &AppState,
    readable: &Readable,
    after: After,
    request: &Value,
    answer: &mut Value,
) -> Result<bool, Error> {
    use ferroflow_core::ids::{decode_page_token, encode_page_token};
    let (key, default_max) = match after {
        After::FilterExperiments => ("experiments", 0),
        _ => ("registered_models", 100),
    };
    let max_results = request
        .get("max_results")
        .and_then(value_to_string)
        .and_then(|text| text.parse::<usize>().ok())
        .unwrap_or(default_max);
    let mut changed = false;
    loop {
        let held = answer
            .get(key)
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let token = answer
            .get("next_page_token")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if held >= max_results || token.is_empty() {
            return Ok(changed);
        }
        changed = true;
        let start = decode_page_token(Some(&token))?;
        let mut page_request = request.clone();
        if let Value::Object(fields) = &mut page_request {
            fields.insert("page_token".to_owned(), Value::String(token));
            fields.insert("max_results".to_owned(), Value::from(max_results));
        }
        let page = match after {
            After::FilterExperiments => serde_json::to_value(
                state
                    .service
                    .search_experiments(decode(page_request)?)
                    .await?,
            ),
            _ => serde_json::to_value(
                state
                    .registry
                    .search_registered_models(decode(page_request)?)
                    .await?,
            ),
        }
        .map_err(Error::internal)?;
        let mut fetched = match page {
            Value::Object(mut fields) => match fields.remove(key) {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        fetched.truncate(max_results - held);
        if fetched.is_empty() {
            if let Value::Object(fields) = answer {
                fields.remove("next_page_token");
            }
            return Ok(changed);
        }
        let read = fetched.len();
        fetched.retain(|item| readable.allows(key, item));
        if let Value::Object(fields) = answer {
            match fields.get_mut(key) {
                Some(Value::Array(items)) => items.extend(fetched),
                _ => {
                    fields.insert(key.to_owned(), Value::Array(fetched));
                }
            }
            fields.insert(
                "next_page_token".to_owned(),
                Value::String(encode_page_token(start + read)),
            );
        }
    }
}

/// A search request message from the JSON the client sent.
fn decode<T: serde::de::DeserializeOwned>(message: Value) -> Result<T, Error> {
    serde_json::from_value(message)
        .map_err(|error| Error::invalid_parameter(format!("Invalid request: {error}")))
}

/// Drops the entries of a search answer the caller may not read.
async fn filter_answer(auth: &Auth, user: &User, answer: &mut Value) -> Result<bool, Error> {
    Ok(Readable::of(auth, user).await?.filter(answer))
}

/// What a user may read, from its grants and `default_permission`.
struct Readable {
    grants: Vec<Grant>,
    default: Permission,
}

/// The answer keys of the searches that are filtered.
const FILTERED_KEYS: [&str; 7] = [
    "experiments",
    "runs",
    "models",
    "traces",
    "registered_models",
    "model_versions",
    "scorers",
];

impl Readable {
    async fn of(auth: &Auth, user: &User) -> Result<Self, Error> {
        Ok(Self {
            grants: auth.grants(user).await?,
            default: auth.default_permission,
        })
    }

    fn can_read(&self, kind: &'static str, id: &str, tier: Option<&'static str>) -> bool {
        let own = Requirement::new(kind, id, Action::Read);
        match tier {
            Some(tier) => authorize(
                &[
                    own,
                    Requirement::new(tier, "*", Action::Read).or_else(kind, id),
                ],
                &self.grants,
                self.default,
            ),
            None => authorize(&[own], &self.grants, self.default),
        }
    }

    /// Whether the item of answer list `key` may be read.
    fn allows(&self, key: &str, item: &Value) -> bool {
        let text = |pointer: &str| {
            item.pointer(pointer)
                .and_then(value_to_string)
                .unwrap_or_default()
        };
        match key {
            "experiments" => self.can_read("experiment", &text("/experiment_id"), None),
            "runs" => self.can_read("experiment", &text("/info/experiment_id"), Some("run")),
            "models" => self.can_read(
                "experiment",
                &text("/info/experiment_id"),
                Some("logged_model"),
            ),
            "traces" => {
                let experiment_id = item
                    .pointer("/trace_location/mlflow_experiment/experiment_id")
                    .or_else(|| {
                        item.pointer("/trace_info/trace_location/mlflow_experiment/experiment_id")
                    })
                    .and_then(value_to_string)
                    .unwrap_or_default();
                self.can_read("experiment", &experiment_id, Some("trace"))
            }
            "registered_models" => {
                let kind = if tags_mark_prompt(item.get("tags")) {
                    "prompt"
                } else {
                    "registered_model"
                };
                self.can_read(kind, &text("/name"), None)
            }
            "model_versions" => {
                let name = text("/name");
                self.can_read("registered_model", &name, None)
                    || self.can_read("prompt", &name, None)
            }
            "scorers" => self.can_read("experiment", &text("/experiment_id"), None),
            _ => true,
        }
    }

    /// Drops the items of `answer` that may not be read; `true` when any was dropped.
    fn filter(&self, answer: &mut Value) -> bool {
        let mut changed = false;
        for key in FILTERED_KEYS {
            if let Some(Value::Array(items)) = answer.get_mut(key) {
                let before = items.len();
                items.retain(|item| self.allows(key, item));
                changed |= items.len() != before;
            }
        }
        changed
    }
}
