//! The state every handler shares: the stores and the validated configuration.

use ferroflow_artifacts::ArtifactStore;
use ferroflow_core::store::TrackingStore;
use std::sync::Arc;

/// Server settings, validated once at start-up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The root of new experiments' artifact locations without a trailing slash: `mlflow-artifacts:` when
    /// artifacts are served, else the `--default-artifact-root`.
    pub default_artifact_root: String,
    /// Whether the proxied artifact API is on.
    pub serve_artifacts: bool,
}

#[derive(Clone)]
pub struct AppState {
    pub tracking: Arc<dyn TrackingStore>,
    /// The store behind the proxied artifact API; `None` with `--no-serve-artifacts`.
    pub artifacts: Option<Arc<dyn ArtifactStore>>,
    pub config: Arc<ServerConfig>,
}
