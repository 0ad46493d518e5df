//! The `ferroflow` binary: parses the command line, builds the stores and runs the server.

mod auth;
mod gc;
mod import;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ferroflow_artifacts::{open_artifact_store, ArtifactLocation, ArtifactStore, CloudSettings};
use ferroflow_core::fernet::FernetKey;
use ferroflow_server::{AppState, ServerConfig};
use ferroflow_store::{BackendUri, SchemaState, UpgradeOutcome, SCHEMA_REVISION};
use std::net::SocketAddr;
use std::sync::Arc;

/// The root MLflow gives experiments when the server proxies artifacts.
const PROXIED_ARTIFACT_ROOT: &str = "mlflow-artifacts:/";

#[derive(Parser)]
#[command(
    name = "ferroflow",
    version,
    about = "The MLflow tracking server, in one fast binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the tracking server: REST API and artifact proxy.
    Server(ServerArgs),
    /// Check or create the MLflow 3.17 schema of the backend store.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Import a legacy MLflow FileStore directory (`mlruns/`) into the backend store.
    Import(import::ImportArgs),
    /// Permanently delete runs and experiments in the `deleted` lifecycle stage, with their artifacts,
    /// and old traces (MLflow's `mlflow gc`).
    Gc(gc::GcArgs),
}

#[derive(Subcommand)]
enum DbCommand {
    /// Report the schema revision without changing anything; fails unless it is MLflow 3.17's.
    Check(DbArgs),
    /// Create MLflow 3.17's schema in an empty database; a no-op when it is already there.
    Upgrade(DbUpgradeArgs),
}

#[derive(Args, Debug)]
struct DbArgs {
    /// The database, e.g. `sqlite:///mlflow.db` or `postgresql://user@host/db`.
    #[arg(long, env = "MLFLOW_BACKEND_STORE_URI")]
    backend_store_uri: String,
}

#[derive(Args, Debug)]
struct DbUpgradeArgs {
    #[command(flatten)]
    database: DbArgs,
    /// The artifact root of the Default experiment (experiment 0) created with the schema.
    #[arg(long, env = "MLFLOW_DEFAULT_ARTIFACT_ROOT", default_value = PROXIED_ARTIFACT_ROOT)]
    default_artifact_root: String,
}

#[derive(Args, Debug)]
struct ServerArgs {
    /// The address to listen on.
    #[arg(long, env = "MLFLOW_HOST", default_value = "127.0.0.1")]
    host: String,
    /// The port to listen on.
    #[arg(long, short = 'p', env = "MLFLOW_PORT", default_value_t = 5000)]
    port: u16,
    /// Where experiments, runs, metrics, params and tags are stored, e.g. `sqlite:///mlflow.db`.
    #[arg(
        long,
        env = "MLFLOW_BACKEND_STORE_URI",
        default_value = "sqlite:///mlflow.db"
    )]
    backend_store_uri: String,
    /// Where the proxied artifact API keeps artifacts (`mlflow-artifacts:/` URIs resolve under it): a
    /// folder, or `s3://`, `gs://`, `wasbs://` or `abfss://` with MLflow's credential variables.
    #[arg(
        long,
        env = "MLFLOW_ARTIFACTS_DESTINATION",
        default_value = "./mlartifacts"
    )]
    artifacts_destination: String,
    /// The artifact root of new experiments. Defaults to `mlflow-artifacts:/` when serving artifacts.
    #[arg(long, env = "MLFLOW_DEFAULT_ARTIFACT_ROOT")]
    default_artifact_root: Option<String>,
    /// Serve artifacts through the server (the default).
    #[arg(long, overrides_with = "no_serve_artifacts")]
    serve_artifacts: bool,
    /// Do not serve artifacts: clients read and write the artifact root directly.
    #[arg(long, env = "MLFLOW_NO_SERVE_ARTIFACTS")]
    no_serve_artifacts: bool,
    #[command(flatten)]
    webhooks: WebhookArgs,
    #[command(flatten)]
    security: SecurityArgs,
    #[command(flatten)]
    auth: auth::AuthArgs,
}

/// The security middleware, with MLflow's flags and variables (`ferroflow_server::security`).
#[derive(Args, Debug)]
struct SecurityArgs {
    /// Comma-separated Host headers to accept, against DNS rebinding; wildcards as `192.168.*`; `*` accepts
    /// all. Default: localhost names on any port, private addresses and the bound address.
    #[arg(long, env = "MLFLOW_SERVER_ALLOWED_HOSTS")]
    allowed_hosts: Option<String>,
    /// Comma-separated origins allowed to call the API from a browser (besides `http://localhost:*`,
    /// `http://127.0.0.1:*`, `http://[::1]:*`); `*` allows all, without credentials.
    #[arg(long, env = "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS")]
    cors_allowed_origins: Option<String>,
    /// X-Frame-Options of every answer: SAMEORIGIN, DENY or NONE (no header).
    #[arg(
        long,
        env = "MLFLOW_SERVER_X_FRAME_OPTIONS",
        default_value = "SAMEORIGIN"
    )]
    x_frame_options: String,
    /// DANGEROUS: turn off the host check, CORS protection and security headers.
    #[arg(
        long,
        env = "MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    disable_security_middleware: bool,
    /// Seconds a request may run before it is answered 503 (artifact transfers excepted).
    #[arg(long, env = "FERROFLOW_REQUEST_TIMEOUT", default_value_t = 120)]
    request_timeout: u64,
    /// Seconds a client may take to send a request's header (from connecting, or from the previous answer
    /// on a kept-alive connection) before the connection is closed, against slowloris.
    #[arg(long, env = "FERROFLOW_HEADER_READ_TIMEOUT", default_value_t = 30)]
    header_read_timeout: u64,
    /// Connections served at once; further ones wait until one closes.
    #[arg(long, env = "FERROFLOW_MAX_CONNECTIONS", default_value_t = 1000)]
    max_connections: usize,
}

impl SecurityArgs {
    fn settings(&self, bound_address: std::net::IpAddr) -> ferroflow_server::SecuritySettings {
        use ferroflow_server::security::split_list;
        let settings = ferroflow_server::SecuritySettings {
            disabled: self.disable_security_middleware,
            allowed_hosts: self
                .allowed_hosts
                .as_deref()
                .map(split_list)
                .filter(|hosts| !hosts.is_empty()),
            cors_allowed_origins: self
                .cors_allowed_origins
                .as_deref()
                .map(split_list)
                .unwrap_or_default(),
            x_frame_options: self.x_frame_options.clone(),
            bound_address: Some(bound_address),
            request_timeout: std::time::Duration::from_secs(self.request_timeout.max(1)),
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout.max(1)),
            max_connections: self.max_connections.max(1),
        };
        if settings.disabled {
            tracing::warn!("security middleware is DISABLED: the server is open to CORS attacks, DNS rebinding and clickjacking");
        } else if settings.allowed_hosts.as_deref() == Some(&["*".to_owned()][..]) {
            tracing::warn!("accepting ALL hosts: the server may be open to DNS rebinding attacks");
        }
        if settings
            .cors_allowed_origins
            .iter()
            .any(|origin| origin == "*")
        {
            tracing::warn!(
                "allowing ALL origins for CORS: any website can read and change this server's data"
            );
        }
        settings
    }
}

/// How registry webhooks are delivered, with MLflow's variables.
#[derive(Args)]
struct WebhookArgs {
    /// URL schemes a webhook may use, comma-separated.
    #[arg(
        long,
        env = "MLFLOW_WEBHOOK_ALLOWED_SCHEMES",
        default_value = "https",
        value_delimiter = ','
    )]
    webhook_allowed_schemes: Vec<String>,
    /// Allow webhooks to loopback, private and other non-public addresses (turns off SSRF protection).
    #[arg(
        long,
        env = "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    webhook_allow_private_ips: bool,
    /// The Fernet key (URL-safe base64 of 32 bytes) that seals webhook secrets in the database; without
    /// one, secrets are readable only by the process that stored them, as with MLflow.
    #[arg(
        long,
        env = "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY",
        hide_env_values = true
    )]
    webhook_secret_encryption_key: Option<String>,
    /// Retries of a failed delivery, with exponential backoff from 1 s.
    #[arg(long, env = "MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES", default_value_t = 3)]
    webhook_request_max_retries: u32,
    /// Seconds one delivery attempt may take.
    #[arg(long, env = "MLFLOW_WEBHOOK_REQUEST_TIMEOUT", default_value_t = 30)]
    webhook_request_timeout: u64,
}

impl std::fmt::Debug for WebhookArgs {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WebhookArgs")
            .field("webhook_allowed_schemes", &self.webhook_allowed_schemes)
            .field("webhook_allow_private_ips", &self.webhook_allow_private_ips)
            .field("webhook_secret_encryption_key", &"<hidden>")
            .field(
                "webhook_request_max_retries",
                &self.webhook_request_max_retries,
            )
            .field("webhook_request_timeout", &self.webhook_request_timeout)
            .finish()
    }
}

impl WebhookArgs {
    fn settings(&self) -> anyhow::Result<(ferroflow_server::WebhookSettings, FernetKey)> {
        let key = match &self.webhook_secret_encryption_key {
            Some(key) => {
                FernetKey::parse(key).context("invalid MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY")?
            }
            None => FernetKey::generate(),
        };
        let settings = ferroflow_server::WebhookSettings {
            allowed_schemes: self
                .webhook_allowed_schemes
                .iter()
                .map(|scheme| scheme.trim().to_owned())
                .filter(|scheme| !scheme.is_empty())
                .collect(),
            allow_private_ips: self.webhook_allow_private_ips,
            max_retries: self.webhook_request_max_retries,
            timeout: std::time::Duration::from_secs(self.webhook_request_timeout),
            ..ferroflow_server::WebhookSettings::default()
        };
        Ok((settings, key))
    }
}

impl ServerArgs {
    /// Resolves the default artifact root as MLflow does: the proxy URI when serving, else the given root
    /// (a relative local path made absolute), else `./mlruns`.
    fn resolved_artifact_root(&self) -> anyhow::Result<String> {
        let serving = !self.no_serve_artifacts;
        match &self.default_artifact_root {
            Some(root) if root.contains(":/") => Ok(root.clone()),
            Some(root) => absolute(root),
            None if serving => Ok(PROXIED_ARTIFACT_ROOT.to_owned()),
            None => absolute("./mlruns"),
        }
    }
}

fn absolute(path: &str) -> anyhow::Result<String> {
    let path = std::path::absolute(path).with_context(|| format!("cannot resolve path {path}"))?;
    Ok(path.display().to_string())
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERROFLOW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

async fn run_server(args: ServerArgs) -> anyhow::Result<()> {
    let serve_artifacts = !args.no_serve_artifacts;
    let default_artifact_root = args.resolved_artifact_root()?;
    let stores =
        ferroflow_store::open_tracking_store(&args.backend_store_uri, &default_artifact_root)
            .await
            .with_context(|| {
                format!(
                    "cannot open backend store {}",
                    redact_uri(&args.backend_store_uri)
                )
            })?;
    let cloud_settings = CloudSettings::from_env();
    let artifacts: Option<Arc<dyn ArtifactStore>> = if serve_artifacts {
        let store = open_artifact_store(&args.artifacts_destination, &cloud_settings)
            .await
            .with_context(|| {
                format!(
                    "cannot open artifact destination {}",
                    args.artifacts_destination
                )
            })?;
        Some(store)
    } else {
        None
    };
    // A cloud default root is read with the server's credentials by the tracking-side listing.
    let default_root_artifacts = match ArtifactLocation::parse(&default_artifact_root) {
        Ok(location) if location.is_cloud() => Some(
            open_artifact_store(&default_artifact_root, &cloud_settings)
                .await
                .with_context(|| {
                    format!("cannot open default artifact root {default_artifact_root}")
                })?,
        ),
        _ => None,
    };
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    ferroflow_server::spawn_metrics_upkeep(
        metrics.clone(),
        ferroflow_server::METRICS_UPKEEP_INTERVAL,
    );
    let mut state = AppState::new(
        stores.clone(),
        artifacts,
        ServerConfig {
            default_artifact_root: default_artifact_root.clone(),
            serve_artifacts,
        },
        Some(metrics),
    );
    if let Some(store) = default_root_artifacts {
        state = state.with_default_root_artifacts(store);
    }
    let (webhook_settings, webhook_key) = args.webhooks.settings()?;
    state = state.with_webhook_settings(webhook_settings, webhook_key);
    if let Some(auth) = args.auth.open().await? {
        state = state.with_auth(auth);
    }
    let address: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .or_else(|_| {
            std::net::ToSocketAddrs::to_socket_addrs(&(args.host.as_str(), args.port))
                .ok()
                .and_then(|mut addresses| addresses.next())
                .ok_or_else(|| anyhow::anyhow!("cannot resolve host {}", args.host))
        })?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    state = state.with_security(args.security.settings(address.ip()));
    tracing::info!(
        %address,
        backend_store_uri = %redact_uri(&args.backend_store_uri),
        default_artifact_root = %default_artifact_root,
        serve_artifacts,
        "ferroflow listening"
    );
    let served = ferroflow_server::serve(listener, state, shutdown_signal()).await;
    stores.tracking.close().await;
    served.context("server failed")
}

/// Hides a password in a database URI before it is logged.
fn redact_uri(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &uri[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &uri[..scheme_end + 3], user, &uri[at..]),
                None => uri.to_owned(),
            }
        }
        _ => uri.to_owned(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Server(args) => run_server(args).await,
        Command::Db {
            command: DbCommand::Check(args),
        } => db_check(&args).await,
        Command::Db {
            command: DbCommand::Upgrade(args),
        } => db_upgrade(&args).await,
        Command::Import(args) => import::run(args).await,
        Command::Gc(args) => gc::run(args).await,
    }
}

fn parse_backend_uri(backend_store_uri: &str) -> anyhow::Result<BackendUri> {
    BackendUri::parse(backend_store_uri).with_context(|| {
        format!(
            "invalid backend store uri {}",
            redact_uri(backend_store_uri)
        )
    })
}

async fn db_check(args: &DbArgs) -> anyhow::Result<()> {
    let uri = parse_backend_uri(&args.backend_store_uri)?;
    let state = ferroflow_store::check_schema(&uri)
        .await
        .with_context(|| format!("cannot check {}", redact_uri(&args.backend_store_uri)))?;
    match state {
        SchemaState::Current => {
            println!(
                "{}: alembic revision {SCHEMA_REVISION} (MLflow 3.17), served by ferroflow",
                redact_uri(&args.backend_store_uri)
            );
            Ok(())
        }
        SchemaState::Empty => anyhow::bail!(
            "{}: no MLflow schema; run `ferroflow db upgrade`",
            redact_uri(&args.backend_store_uri)
        ),
    }
}

async fn db_upgrade(args: &DbUpgradeArgs) -> anyhow::Result<()> {
    let uri = parse_backend_uri(&args.database.backend_store_uri)?;
    let shown = redact_uri(&args.database.backend_store_uri);
    let outcome = ferroflow_store::upgrade_schema(&uri, &args.default_artifact_root)
        .await
        .with_context(|| format!("cannot upgrade {shown}"))?;
    match outcome {
        UpgradeOutcome::Created => {
            println!(
                "{shown}: created the MLflow 3.17 schema (alembic revision {SCHEMA_REVISION})"
            );
        }
        UpgradeOutcome::AlreadyCurrent => {
            println!("{shown}: already at alembic revision {SCHEMA_REVISION}; nothing to do");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_uri("postgresql://user:secret@db/x"),
            "postgresql://user:***@db/x"
        );
        assert_eq!(redact_uri("sqlite:///mlflow.db"), "sqlite:///mlflow.db");
    }

    #[test]
    fn flags_parse_with_mlflow_names() {
        let cli = Cli::try_parse_from([
            "ferroflow",
            "server",
            "--host",
            "0.0.0.0",
            "--port",
            "5001",
            "--backend-store-uri",
            "sqlite:////tmp/x.db",
            "--no-serve-artifacts",
            "--default-artifact-root",
            "s3://bucket/prefix",
        ])
        .unwrap();
        let Command::Server(args) = cli.command else {
            panic!("not the server command");
        };
        assert_eq!(args.port, 5001);
        assert!(args.no_serve_artifacts);
        assert_eq!(args.resolved_artifact_root().unwrap(), "s3://bucket/prefix");
    }
}
