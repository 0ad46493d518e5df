//! `--app-name basic-auth`: MLflow's basic-auth app, configured as MLflow configures it
//! (`MLFLOW_AUTH_CONFIG_PATH` names a `basic_auth.ini`, else MLflow's defaults; the admin's name and
//! password may come from `MLFLOW_AUTH_ADMIN_USERNAME` / `MLFLOW_AUTH_ADMIN_PASSWORD`).

use anyhow::Context;
use clap::Args;
use ferroflow_core::auth::{parse_auth_config, DEFAULT_AUTH_INI};
use ferroflow_server::auth::Auth;
use std::path::PathBuf;
use std::sync::Arc;

/// The app to serve, as `mlflow server --app-name`.
#[derive(Args, Debug)]
pub struct AuthArgs {
    /// `basic-auth` turns on MLflow's HTTP basic authentication and permissions.
    #[arg(long, value_parser = ["basic-auth"])]
    app_name: Option<String>,
    /// The auth configuration file (MLflow's `basic_auth.ini` keys); MLflow's defaults without one.
    #[arg(long, env = "MLFLOW_AUTH_CONFIG_PATH", hide = true)]
    auth_config_path: Option<PathBuf>,
    /// The key that signs the sign-up form's CSRF tokens; replicas behind one address share it.
    #[arg(long, env = "MLFLOW_FLASK_SERVER_SECRET_KEY", hide = true)]
    flask_server_secret_key: Option<String>,
}

impl AuthArgs {
    /// The basic-auth app when `--app-name basic-auth` is given: its database opened (created when
    /// empty) and the admin user bootstrapped.
    pub async fn open(&self) -> anyhow::Result<Option<Auth>> {
        if self.app_name.is_none() {
            return Ok(None);
        }
        let ini = match &self.auth_config_path {
            Some(path) => std::fs::read_to_string(path).with_context(|| {
                format!("cannot read the auth configuration {}", path.display())
            })?,
            None => DEFAULT_AUTH_INI.to_owned(),
        };
        // Set variables win even when empty, as in MLflow.
        let username = std::env::var("MLFLOW_AUTH_ADMIN_USERNAME").ok();
        let password = std::env::var("MLFLOW_AUTH_ADMIN_PASSWORD").ok();
        let config = parse_auth_config(&ini, username.as_deref(), password.as_deref())
            .map_err(anyhow::Error::msg)?;
        let store = ferroflow_store::SqlAuthStore::open(&config.database_uri)
            .await
            .context("cannot open the auth database")?;
        let mut auth = Auth::new(Arc::new(store), &config);
        if let Some(key) = self.flask_server_secret_key.as_deref() {
            auth = auth.with_secret_key(key);
        }
        auth.bootstrap_admin(&config)
            .await
            .map_err(anyhow::Error::msg)?;
        tracing::info!(
            default_permission = config.default_permission.name(),
            "basic authentication is on"
        );
        Ok(Some(auth))
    }
}
