//! The state every handler shares: the stores, the services and the validated configuration.

use crate::security::SecuritySettings;
use crate::webhook_delivery::{Deliverer, UrlPolicy, WebhookSettings};
use ferroflow_artifacts::ArtifactStore;
use ferroflow_core::eval_datasets::EvalDatasetService;
use ferroflow_core::fernet::FernetKey;
use ferroflow_core::logged_models::LoggedModelService;
use ferroflow_core::registry::RegistryService;
use ferroflow_core::scorers::{custom_scorers_enabled, ScorerService, CUSTOM_SCORERS_ENV};
use ferroflow_core::service::TrackingService;
use ferroflow_core::store::TrackingStore;
use ferroflow_core::traces::TraceService;
use ferroflow_core::webhooks::{WebhookService, WebhookStore};
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
    pub webhooks: WebhookService,
    pub eval_datasets: EvalDatasetService,
    /// Custom `@scorer` scorers are accepted when `MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS` is set.
    pub scorers: ScorerService,
    /// Sends registry events to webhooks, and test deliveries.
    pub webhook_deliverer: Deliverer,
    webhook_store: Arc<dyn WebhookStore>,
    /// The store behind the proxied artifact API; `None` with `--no-serve-artifacts`.
    pub artifacts: Option<Arc<dyn ArtifactStore>>,
    /// The store at a cloud `--default-artifact-root` (`s3://…`), from which the tracking-side listing
    /// reads runs whose `artifact_uri` lies under it; `None` otherwise.
    pub default_root_artifacts: Option<Arc<dyn ArtifactStore>>,
    pub config: Arc<ServerConfig>,
    /// Renders `/metrics`; `None` when no recorder is installed (tests).
    pub metrics: Option<PrometheusHandle>,
    /// The host check, CORS, security headers and limits around every route (`security.rs`).
    pub security: Arc<SecuritySettings>,
    /// MLflow's basic-auth app (`--app-name basic-auth`); `None` serves without authentication.
    pub auth: Option<Arc<crate::auth::Auth>>,
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
            webhooks: webhook_store,
            eval_datasets,
            scorers,
        } = stores.into();
        let scorers = ScorerService::new(scorers, tracking.clone()).with_custom_scorers(
            custom_scorers_enabled(std::env::var(CUSTOM_SCORERS_ENV).ok().as_deref()),
        );
        let eval_datasets = EvalDatasetService::new(eval_datasets);
        let service = TrackingService::new(tracking.clone(), config.default_artifact_root.clone());
        let registry = RegistryService::new(registry, tracking.clone(), logged_models.clone())
            .with_trusted_artifact_roots(vec![config.default_artifact_root.clone()]);
        let logged_models = LoggedModelService::new(logged_models, tracking.clone());
        let traces = TraceService::new(traces, tracking.clone());
        let (webhooks, webhook_deliverer) = webhook_parts(
            webhook_store.clone(),
            WebhookSettings::default(),
            FernetKey::generate(),
        );
        let registry = registry.with_events(Arc::new(webhook_deliverer.clone()));
        Self {
            tracking,
            service,
            logged_models,
            traces,
            registry,
            webhooks,
            eval_datasets,
            scorers,
            webhook_deliverer,
            webhook_store,
            artifacts,
            default_root_artifacts: None,
            config: Arc::new(config),
            metrics,
            security: Arc::new(SecuritySettings::default()),
            auth: None,
        }
    }

    /// Delivers webhooks with these settings, sealing secrets with `key` (the server's
    /// `MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY`; without one, a key that lives as long as the process).
    pub fn with_webhook_settings(mut self, settings: WebhookSettings, key: FernetKey) -> Self {
        let (webhooks, deliverer) = webhook_parts(self.webhook_store.clone(), settings, key);
        self.registry = self.registry.with_events(Arc::new(deliverer.clone()));
        self.webhooks = webhooks;
        self.webhook_deliverer = deliverer;
        self
    }

    /// Guards every route with these security settings (MLflow's defaults otherwise).
    pub fn with_security(mut self, settings: SecuritySettings) -> Self {
        self.security = Arc::new(settings);
        self
    }

    /// Turns on MLflow's basic-auth app.
    pub fn with_auth(mut self, auth: crate::auth::Auth) -> Self {
        self.auth = Some(Arc::new(auth));
        self
    }

    /// Sets the store at the cloud `--default-artifact-root`.
    pub fn with_default_root_artifacts(mut self, store: Arc<dyn ArtifactStore>) -> Self {
        self.default_root_artifacts = Some(store);
        self
    }
}

fn webhook_parts(
    store: Arc<dyn WebhookStore>,
    settings: WebhookSettings,
    key: FernetKey,
) -> (WebhookService, Deliverer) {
    let policy = Arc::new(UrlPolicy::new(settings.clone()));
    let service = WebhookService::new(store, policy.clone(), key);
    let deliverer = Deliverer::new(service.clone(), policy, settings);
    (service, deliverer)
}
