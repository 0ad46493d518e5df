//! The state every handler shares: the stores, the services and the validated configuration.

use ferroflow_artifacts::ArtifactStore;
use ferroflow_core::service::TrackingService;
use ferroflow_core::store::TrackingStore;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

/// Server settings, validated once at start-up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The root of new experiments' artifact locations: `mlflow-artifacts:/` when artifacts are served,
    /// else the `--default-artifact-root`.
    pub default_artifact_root: String,
    /// Whether the proxied artifact API is on.
    pub serve_artifacts: bool,
}

#[derive(Clone)]
pub struct AppState {
    pub tracking: Arc<dyn TrackingStore>,
    pub service: TrackingService,
    /// The store behind the proxied artifact API; `None` with `--no-serve-artifacts`.
    pub artifacts: Option<Arc<dyn ArtifactStore>>,
    pub config: Arc<ServerConfig>,
    /// Renders `/metrics`; `None` when no recorder is installed (tests).
    pub metrics: Option<PrometheusHandle>,
}

impl AppState {
    pub fn new(
        tracking: Arc<dyn TrackingStore>,
        artifacts: Option<Arc<dyn ArtifactStore>>,
        config: ServerConfig,
        metrics: Option<PrometheusHandle>,
    ) -> Self {
        let service = TrackingService::new(tracking.clone(), config.default_artifact_root.clone());
        Self {
            tracking,
            service,
            artifacts,
            config: Arc::new(config),
            metrics,
        }
    }
}
