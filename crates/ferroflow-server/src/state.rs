//! The state every handler shares: the stores, the services and the validated configuration.

use ferroflow_artifacts::ArtifactStore;
use ferroflow_core::logged_models::LoggedModelService;
use ferroflow_core::registry::RegistryService;
use ferroflow_core::service::TrackingService;
use ferroflow_core::store::TrackingStore;
use ferroflow_core::traces::TraceService;
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
    pub logged_models: LoggedModelService,
    pub traces: TraceService,
    pub registry: RegistryService,
    /// The store behind the proxied artifact API; `None` with `--no-serve-artifacts`.
    pub artifacts: Option<Arc<dyn ArtifactStore>>,
    /// The store at a cloud `--default-artifact-root` (`s3://…`), from which the tracking-side listing
    /// reads runs whose `artifact_uri` lies under it; `None` otherwise.
    pub default_root_artifacts: Option<Arc<dyn ArtifactStore>>,
    pub config: Arc<ServerConfig>,
    /// Renders `/metrics`; `None` when no recorder is installed (tests).
    pub metrics: Option<PrometheusHandle>,
}

impl AppState {
    /// `stores` is the backend's stores, or an `Arc<SqliteStore>`, which serves them all.
    pub fn new(
        stores: impl Into<ferroflow_store::Stores>,
        artifacts: Option<Arc<dyn ArtifactStore>>,
        config: ServerConfig,
        metrics: Option<PrometheusHandle>,
    ) -> Self {
        let ferroflow_store::Stores {
            tracking,
            logged_models,
            traces,
            registry,
        } = stores.into();
        let service = TrackingService::new(tracking.clone(), config.default_artifact_root.clone());
        let registry = RegistryService::new(registry, tracking.clone(), logged_models.clone())
            .with_trusted_artifact_roots(vec![config.default_artifact_root.clone()]);
        let logged_models = LoggedModelService::new(logged_models, tracking.clone());
        let traces = TraceService::new(traces, tracking.clone());
        Self {
            tracking,
            service,
            logged_models,
            traces,
            registry,
            artifacts,
            default_root_artifacts: None,
            config: Arc::new(config),
            metrics,
        }
    }

    /// Sets the store at the cloud `--default-artifact-root`.
    pub fn with_default_root_artifacts(mut self, store: Arc<dyn ArtifactStore>) -> Self {
        self.default_root_artifacts = Some(store);
        self
    }
}
