//! `RegistryStore` on SQLite, PostgreSQL and MySQL, in MLflow 3.17's tables: `registered_models`,
//! `model_versions`, `registered_model_tags`, `model_version_tags` and `registered_model_aliases`, all in
//! the `default` workspace.
//!
//! Renaming relies on the schema's `ON UPDATE CASCADE` foreign keys (on for every connection, SQLite
//! included) to carry the new name to versions, tags and aliases. Deleting a model deletes its rows
//! explicitly, children first, as MLflow's ORM does.

use super::connection::{db_error, is_unique_violation, query, Pools, Query, Row, Transaction};
use super::{placeholders, SqlStore};
use crate::registry_search::{
    model_version_search_statement, registered_model_search_statement, WORKSPACE,
};
use crate::search::Dialect;
use async_trait::async_trait;
use ferroflow_core::registry::{
    NewModelVersion, NewRegisteredModel, RegistryPage, RegistryQuery, RegistryStore, RenameOutcome,
    STAGE_DELETED_INTERNAL,
};
use ferroflow_core::{Error, Result};
use ferroflow_proto::registry::{
    ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelAlias, RegisteredModelTag,
};
use std::collections::HashMap;

/// Load rows in chunks well below the databases' limits on bound values.
const CHUNK: usize = 500;

/// How often a version number is retried when a concurrent writer took it.
const CREATE_MODEL_VERSION_ATTEMPTS: usize = 3;

const MODEL_COLUMNS: &str = "name, creation_time, last_updated_time, description";
const VERSION_COLUMNS: &str =
    "name, version, creation_time, last_updated_time, description, user_id, \
     current_stage, source, run_id, status, status_message, run_link";

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|text| !text.is_empty())
}

fn model_from_row(row: &Row) -> Result<RegisteredModel> {
    Ok(RegisteredModel {
        name: row.get("name")?,
        creation_timestamp: row.get("creation_time")?,
        last_updated_timestamp: row
            .get::<Option<i64>>("last_updated_time")?
            .filter(|time| *time != 0),
        user_id: None,
        description: non_empty(row.get("description")?),
        latest_versions: Vec::new(),
        tags: Vec::new(),
        aliases: Vec::new(),
    })
}

fn version_from_row(row: &Row) -> Result<ModelVersion> {
    let version: i64 = row.get("version")?;
    Ok(ModelVersion {
        name: row.get("name")?,
        version: version.to_string(),
        creation_timestamp: row.get("creation_time")?,
        last_updated_timestamp: row.get("last_updated_time")?,
        user_id: row.get("user_id")?,
        current_stage: row.get("current_stage")?,
        description: row.get("description")?,
        source: row.get("source")?,
        run_id: row.get("run_id")?,
        status: row.get("status")?,
        status_message: non_empty(row.get("status_message")?),
        tags: Vec::new(),
        run_link: row.get("run_link")?,
        aliases: Vec::new(),
    })
}

/// Tags in the order MLflow reads them back: insertion order on SQLite and PostgreSQL (physical row
/// order), primary key order on MySQL, whose tables are clustered by it.
fn insertion_order(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "rowid",
        Dialect::Postgres => "ctid",
        Dialect::MySql => "\"key\"",
    }
}

fn with_names(sql: String, names: &[String]) -> Query {
    query(sql).bind_each(names.iter().map(String::as_str))
}

/// Adds the tags of each version (by key) to `versions`.
async fn load_version_tags(pools: &Pools, versions: &mut [ModelVersion]) -> Result<()> {
    let mut names: Vec<String> = versions
        .iter()
        .map(|version| version.name.clone())
        .collect();
    names.sort();
    names.dedup();
    let mut tags: HashMap<(String, i64), Vec<ModelVersionTag>> = HashMap::new();
    for chunk in names.chunks(CHUNK) {
        let sql = format!(
            "SELECT name, version, \"key\", value FROM model_version_tags WHERE workspace = 'default' \
             AND name IN ({}) ORDER BY {}",
            placeholders(chunk.len()),
            insertion_order(pools.dialect())
        );
        for row in pools
            .fetch_all(with_names(sql, chunk))
            .await
            .map_err(db_error)?
        {
            let value: Option<String> = row.get("value")?;
            tags.entry((row.get("name")?, row.get("version")?))
                .or_default()
                .push(ModelVersionTag {
                    key: row.get("key")?,
                    value: value.unwrap_or_default(),
                });
        }
    }
    for version in versions {
        if let Some(found) = tags.remove(&(version.name.clone(), version.version_number())) {
            version.tags = found;
        }
    }
    Ok(())
}

/// The aliases of the models named, by model, in alias order.
async fn load_aliases(
    pools: &Pools,
    names: &[String],
) -> Result<HashMap<String, Vec<RegisteredModelAlias>>> {
    let mut aliases: HashMap<String, Vec<RegisteredModelAlias>> = HashMap::new();
    for chunk in names.chunks(CHUNK) {
        let sql = format!(
            "SELECT name, alias, version FROM registered_model_aliases WHERE workspace = 'default' \
             AND name IN ({}) ORDER BY name, alias",
            placeholders(chunk.len())
        );
        for row in pools
            .fetch_all(with_names(sql, chunk))
            .await
            .map_err(db_error)?
        {
            let version: i64 = row.get("version")?;
            aliases
                .entry(row.get("name")?)
                .or_default()
                .push(RegisteredModelAlias {
                    alias: row.get("alias")?,
                    version: version.to_string(),
                });
        }
    }
    Ok(aliases)
}

/// Adds to each version the aliases of its model that point to it.
async fn load_version_aliases(pools: &Pools, versions: &mut [ModelVersion]) -> Result<()> {
    let mut names: Vec<String> = versions
        .iter()
        .map(|version| version.name.clone())
        .collect();
    names.sort();
    names.dedup();
    let aliases = load_aliases(pools, &names).await?;
    for version in versions {
        if let Some(model_aliases) = aliases.get(&version.name) {
            version.aliases = model_aliases
                .iter()
                .filter(|alias| alias.version == version.version)
                .map(|alias| alias.alias.clone())
                .collect();
        }
    }
    Ok(())
}

/// Fills tags, aliases and the latest version of each stage into `models`.
async fn complete_models(pools: &Pools, models: &mut [RegisteredModel]) -> Result<()> {
    let names: Vec<String> = models.iter().map(|model| model.name.clone()).collect();
    let mut tags: HashMap<String, Vec<RegisteredModelTag>> = HashMap::new();
    let mut latest: HashMap<String, Vec<ModelVersion>> = HashMap::new();
    let mut all_latest: Vec<ModelVersion> = Vec::new();
    for chunk in names.chunks(CHUNK) {
        let marks = placeholders(chunk.len());
        let sql = format!(
            "SELECT name, \"key\", value FROM registered_model_tags WHERE workspace = 'default' \
             AND name IN ({marks}) ORDER BY {}",
            insertion_order(pools.dialect())
        );
        for row in pools
            .fetch_all(with_names(sql, chunk))
            .await
            .map_err(db_error)?
        {
            let value: Option<String> = row.get("value")?;
            tags.entry(row.get("name")?)
                .or_default()
                .push(RegisteredModelTag {
                    key: row.get("key")?,
                    value: value.unwrap_or_default(),
                });
        }
        // The highest version of each (model, stage), deleted versions aside, the stages in the order
        // MLflow lists them: by the lowest version in each stage.
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM model_versions WHERE workspace = 'default' AND name IN ({marks}) \
             AND current_stage != '{STAGE_DELETED_INTERNAL}' AND version = (SELECT MAX(other.version) \
             FROM model_versions other WHERE other.workspace = model_versions.workspace \
             AND other.name = model_versions.name AND other.current_stage = model_versions.current_stage) \
             ORDER BY name, (SELECT MIN(earliest.version) FROM model_versions earliest \
             WHERE earliest.workspace = model_versions.workspace AND earliest.name = model_versions.name \
             AND earliest.current_stage = model_versions.current_stage)"
        );
        for row in pools
            .fetch_all(with_names(sql, chunk))
            .await
            .map_err(db_error)?
        {
            all_latest.push(version_from_row(&row)?);
        }
    }
    load_version_tags(pools, &mut all_latest).await?;
    for version in all_latest {
        latest
            .entry(version.name.clone())
            .or_default()
            .push(version);
    }
    let mut aliases = load_aliases(pools, &names).await?;
    for model in models {
        model.tags = tags.remove(&model.name).unwrap_or_default();
        model.latest_versions = latest.remove(&model.name).unwrap_or_default();
        model.aliases = aliases.remove(&model.name).unwrap_or_default();
    }
    Ok(())
}

/// Whether the model exists, read in the transaction (and on PostgreSQL and MySQL locked until it ends,
/// so concurrent version numbering queues).
async fn touch_model(transaction: &mut Transaction, name: &str, now: Option<i64>) -> Result<bool> {
    let done = match now {
        Some(now) => transaction
            .execute(
                query(
                    "UPDATE registered_models SET last_updated_time = ? WHERE workspace = 'default' \
                     AND name = ?",
                )
                .bind(now)
                .bind(name),
            )
            .await
            .map_err(db_error)?
            .rows_affected,
        None => u64::from(
            transaction
                .fetch_optional(
                    query(
                        "SELECT name FROM registered_models WHERE workspace = 'default' AND name = ?",
                    )
                    .bind(name),
                )
                .await
                .map_err(db_error)?
                .is_some(),
        ),
    };
    Ok(done > 0)
}

/// Whether the live version exists, read in the transaction.
async fn version_exists(transaction: &mut Transaction, name: &str, version: i64) -> Result<bool> {
    Ok(transaction
        .fetch_optional(
            query(
                "SELECT version FROM model_versions WHERE workspace = 'default' AND name = ? AND version = ? \
                 AND current_stage != 'Deleted_Internal'",
            )
            .bind(name)
            .bind(version),
        )
        .await
        .map_err(db_error)?
        .is_some())
}

impl SqlStore {
    async fn live_version(&self, name: &str, version: i64) -> Result<Option<ModelVersion>> {
        let row = self
            .pools
            .fetch_optional(
                query(format!(
                    "SELECT {VERSION_COLUMNS} FROM model_versions WHERE workspace = 'default' AND name = ? \
                     AND version = ? AND current_stage != 'Deleted_Internal'"
                ))
                .bind(name)
                .bind(version),
            )
            .await
            .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut versions = vec![version_from_row(&row)?];
        load_version_tags(&self.pools, &mut versions).await?;
        load_version_aliases(&self.pools, &mut versions).await?;
        Ok(versions.pop())
    }

    /// Inserts a version numbered one past the model's highest; `Ok(None)` when there is no such model,
    /// `Err` with a unique violation when another writer took the number.
    async fn insert_model_version(
        &self,
        version: &NewModelVersion,
    ) -> std::result::Result<Option<i64>, InsertError> {
        let mut transaction = self.pools.begin().await.map_err(InsertError::Database)?;
        let touched = transaction
            .execute(
                query(
                    "UPDATE registered_models SET last_updated_time = ? WHERE workspace = 'default' \
                     AND name = ?",
                )
                .bind(version.creation_time)
                .bind(version.name.as_str()),
            )
            .await
            .map_err(InsertError::Database)?;
        if touched.rows_affected == 0 {
            return Ok(None);
        }
        let row = transaction
            .fetch_optional(
                query(
                    "SELECT MAX(version) AS highest FROM model_versions WHERE workspace = 'default' \
                     AND name = ?",
                )
                .bind(version.name.as_str()),
            )
            .await
            .map_err(InsertError::Database)?;
        let highest: Option<i64> = match row {
            Some(row) => row.get("highest").map_err(InsertError::Store)?,
            None => None,
        };
        let number = highest.unwrap_or(0) + 1;
        transaction
            .execute(
                query(
                    "INSERT INTO model_versions (workspace, name, version, creation_time, last_updated_time, \
                     description, user_id, current_stage, source, storage_location, run_id, run_link, status, \
                     status_message) VALUES (?, ?, ?, ?, ?, ?, NULL, 'None', ?, ?, ?, ?, 'READY', NULL)",
                )
                .bind(WORKSPACE)
                .bind(version.name.as_str())
                .bind(number)
                .bind(version.creation_time)
                .bind(version.creation_time)
                .bind(version.description.as_str())
                .bind(version.source.as_str())
                .bind(version.storage_location.as_str())
                .bind(version.run_id.as_str())
                .bind(version.run_link.as_str()),
            )
            .await
            .map_err(InsertError::Database)?;
        for tag in &version.tags {
            transaction
                .execute(
                    query(
                        "INSERT INTO model_version_tags (workspace, name, version, \"key\", value) \
                         VALUES (?, ?, ?, ?, ?)",
                    )
                    .bind(WORKSPACE)
                    .bind(version.name.as_str())
                    .bind(number)
                    .bind(tag.key.as_str())
                    .bind(tag.value.as_str()),
                )
                .await
                .map_err(InsertError::Database)?;
        }
        transaction.commit().await.map_err(InsertError::Database)?;
        Ok(Some(number))
    }

    /// `insert` as an upsert on the `conflict` key that replaces `value`.
    fn tag_upsert(&self, insert: &str, conflict: &str) -> String {
        match self.dialect() {
            Dialect::Sqlite | Dialect::Postgres => {
                format!("{insert} ON CONFLICT ({conflict}) DO UPDATE SET value = excluded.value")
            }
            Dialect::MySql => format!("{insert} ON DUPLICATE KEY UPDATE value = VALUES(value)"),
        }
    }
}

enum InsertError {
    Database(sqlx::Error),
    Store(Error),
}

#[async_trait]
impl RegistryStore for SqlStore {
    async fn create_registered_model(
        &self,
        model: NewRegisteredModel,
    ) -> Result<Option<RegisteredModel>> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let inserted = transaction
            .execute(
                query(
                    "INSERT INTO registered_models (workspace, name, creation_time, last_updated_time, \
                     description) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(WORKSPACE)
                .bind(model.name.as_str())
                .bind(model.creation_time)
                .bind(model.creation_time)
                .bind(model.description.as_str()),
            )
            .await;
        match inserted {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => return Ok(None),
            Err(error) => return Err(db_error(error)),
        }
        for tag in &model.tags {
            transaction
                .execute(
                    query(
                        "INSERT INTO registered_model_tags (workspace, name, \"key\", value) \
                         VALUES (?, ?, ?, ?)",
                    )
                    .bind(WORKSPACE)
                    .bind(model.name.as_str())
                    .bind(tag.key.as_str())
                    .bind(tag.value.as_str()),
                )
                .await
                .map_err(db_error)?;
        }
        transaction.commit().await.map_err(db_error)?;
        self.get_registered_model(&model.name).await
    }

    async fn get_registered_model(&self, name: &str) -> Result<Option<RegisteredModel>> {
        let row = self
            .pools
            .fetch_optional(
                query(format!(
                    "SELECT {MODEL_COLUMNS} FROM registered_models WHERE workspace = 'default' AND name = ?"
                ))
                .bind(name),
            )
            .await
            .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut models = vec![model_from_row(&row)?];
        complete_models(&self.pools, &mut models).await?;
        Ok(models.pop())
    }

    async fn update_registered_model(
        &self,
        name: &str,
        description: &str,
        now: i64,
    ) -> Result<Option<RegisteredModel>> {
        let updated = self
            .pools
            .execute(
                query(
                    "UPDATE registered_models SET description = ?, last_updated_time = ? \
                     WHERE workspace = 'default' AND name = ?",
                )
                .bind(description)
                .bind(now)
                .bind(name),
            )
            .await
            .map_err(db_error)?;
        if updated.rows_affected == 0 {
            return Ok(None);
        }
        self.get_registered_model(name).await
    }

    async fn rename_registered_model(
        &self,
        name: &str,
        new_name: &str,
        now: i64,
    ) -> Result<RenameOutcome> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        if !touch_model(&mut transaction, name, None).await? {
            return Ok(RenameOutcome::NotFound);
        }
        let renamed = transaction
            .execute(
                query(
                    "UPDATE registered_models SET name = ?, last_updated_time = ? \
                     WHERE workspace = 'default' AND name = ?",
                )
                .bind(new_name)
                .bind(now)
                .bind(name),
            )
            .await;
        match renamed {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => return Ok(RenameOutcome::NameTaken),
            Err(error) => return Err(db_error(error)),
        }
        transaction
            .execute(
                query(
                    "UPDATE model_versions SET last_updated_time = ? WHERE workspace = 'default' AND name = ?",
                )
                .bind(now)
                .bind(new_name),
            )
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        match self.get_registered_model(new_name).await? {
            Some(model) => Ok(RenameOutcome::Renamed(model)),
            None => Ok(RenameOutcome::NotFound),
        }
    }

    async fn delete_registered_model(&self, name: &str) -> Result<bool> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        for table in [
            "model_version_tags",
            "model_versions",
            "registered_model_tags",
            "registered_model_aliases",
        ] {
            transaction
                .execute(
                    query(format!(
                        "DELETE FROM {table} WHERE workspace = 'default' AND name = ?"
                    ))
                    .bind(name),
                )
                .await
                .map_err(db_error)?;
        }
        let deleted = transaction
            .execute(
                query("DELETE FROM registered_models WHERE workspace = 'default' AND name = ?")
                    .bind(name),
            )
            .await
            .map_err(db_error)?;
        if deleted.rows_affected == 0 {
            return Ok(false);
        }
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn search_registered_models(
        &self,
        registry_query: RegistryQuery,
    ) -> Result<RegistryPage<RegisteredModel>> {
        let dialect = self.dialect();
        let statement = registered_model_search_statement(&registry_query, dialect);
        let rows = self
            .pools
            .fetch_all(Query::built(&statement, dialect))
            .await
            .map_err(db_error)?;
        let has_more = rows.len() > registry_query.max_results;
        let mut models = rows
            .iter()
            .take(registry_query.max_results)
            .map(model_from_row)
            .collect::<Result<Vec<_>>>()?;
        complete_models(&self.pools, &mut models).await?;
        Ok(RegistryPage {
            items: models,
            has_more,
        })
    }

    async fn set_registered_model_tag(&self, name: &str, tag: RegisteredModelTag) -> Result<bool> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        if !touch_model(&mut transaction, name, None).await? {
            return Ok(false);
        }
        let sql = self.tag_upsert(
            "INSERT INTO registered_model_tags (workspace, name, \"key\", value) VALUES (?, ?, ?, ?)",
            "workspace, \"key\", name",
        );
        transaction
            .execute(
                query(sql)
                    .bind(WORKSPACE)
                    .bind(name)
                    .bind(tag.key.as_str())
                    .bind(tag.value.as_str()),
            )
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<bool> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        if !touch_model(&mut transaction, name, None).await? {
            return Ok(false);
        }
        transaction
            .execute(
                query(
                    "DELETE FROM registered_model_tags WHERE workspace = 'default' AND name = ? AND \"key\" = ?",
                )
                .bind(name)
                .bind(key),
            )
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn create_model_version(&self, version: NewModelVersion) -> Result<Option<ModelVersion>> {
        for attempt in 1..=CREATE_MODEL_VERSION_ATTEMPTS {
            match self.insert_model_version(&version).await {
                Ok(None) => return Ok(None),
                Ok(Some(number)) => return self.live_version(&version.name, number).await,
                Err(InsertError::Store(error)) => return Err(error),
                Err(InsertError::Database(error))
                    if is_unique_violation(&error) && attempt < CREATE_MODEL_VERSION_ATTEMPTS => {}
                Err(InsertError::Database(error)) if is_unique_violation(&error) => {
                    return Err(Error::internal(std::io::Error::other(format!(
                        "Model Version creation error (name={}). Giving up after \
                         {CREATE_MODEL_VERSION_ATTEMPTS} attempts.",
                        version.name
                    ))))
                }
                Err(InsertError::Database(error)) => return Err(db_error(error)),
            }
        }
        Ok(None)
    }

    async fn get_model_version(&self, name: &str, version: i64) -> Result<Option<ModelVersion>> {
        self.live_version(name, version).await
    }

    async fn get_model_version_download_uri(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Option<String>> {
        let row = self
            .pools
            .fetch_optional(
                query(
                    "SELECT source, storage_location FROM model_versions WHERE workspace = 'default' \
                     AND name = ? AND version = ? AND current_stage != 'Deleted_Internal'",
                )
                .bind(name)
                .bind(version),
            )
            .await
            .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let storage_location: Option<String> = non_empty(row.get("storage_location")?);
        let source: Option<String> = row.get("source")?;
        Ok(Some(storage_location.or(source).unwrap_or_default()))
    }

    async fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: Option<&str>,
        now: i64,
    ) -> Result<Option<ModelVersion>> {
        let updated = self
            .pools
            .execute(
                query(
                    "UPDATE model_versions SET description = ?, last_updated_time = ? WHERE workspace = 'default' \
                     AND name = ? AND version = ? AND current_stage != 'Deleted_Internal'",
                )
                .bind(description)
                .bind(now)
                .bind(name)
                .bind(version),
            )
            .await
            .map_err(db_error)?;
        if updated.rows_affected == 0 {
            return Ok(None);
        }
        self.live_version(name, version).await
    }

    async fn transition_model_version_stage(
        &self,
        name: &str,
        version: i64,
        stage: &str,
        archive_existing: bool,
        now: i64,
    ) -> Result<Option<ModelVersion>> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        if archive_existing {
            transaction
                .execute(
                    query(
                        "UPDATE model_versions SET current_stage = 'Archived', last_updated_time = ? \
                         WHERE workspace = 'default' AND name = ? AND version != ? AND current_stage = ?",
                    )
                    .bind(now)
                    .bind(name)
                    .bind(version)
                    .bind(stage),
                )
                .await
                .map_err(db_error)?;
        }
        let updated = transaction
            .execute(
                query(
                    "UPDATE model_versions SET current_stage = ?, last_updated_time = ? WHERE workspace = 'default' \
                     AND name = ? AND version = ? AND current_stage != 'Deleted_Internal'",
                )
                .bind(stage)
                .bind(now)
                .bind(name)
                .bind(version),
            )
            .await
            .map_err(db_error)?;
        if updated.rows_affected == 0 {
            return Ok(None);
        }
        touch_model(&mut transaction, name, Some(now)).await?;
        transaction.commit().await.map_err(db_error)?;
        self.live_version(name, version).await
    }

    async fn delete_model_version(&self, name: &str, version: i64, now: i64) -> Result<bool> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let updated = transaction
            .execute(
                query(
                    "UPDATE model_versions SET current_stage = 'Deleted_Internal', last_updated_time = ?, \
                     description = NULL, user_id = NULL, source = 'REDACTED-SOURCE-PATH', \
                     run_id = 'REDACTED-RUN-ID', run_link = 'REDACTED-RUN-LINK', status_message = NULL \
                     WHERE workspace = 'default' AND name = ? AND version = ? \
                     AND current_stage != 'Deleted_Internal'",
                )
                .bind(now)
                .bind(name)
                .bind(version),
            )
            .await
            .map_err(db_error)?;
        if updated.rows_affected == 0 {
            return Ok(false);
        }
        transaction
            .execute(
                query(
                    "DELETE FROM registered_model_aliases WHERE workspace = 'default' AND name = ? AND version = ?",
                )
                .bind(name)
                .bind(version),
            )
            .await
            .map_err(db_error)?;
        touch_model(&mut transaction, name, Some(now)).await?;
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn search_model_versions(
        &self,
        registry_query: RegistryQuery,
    ) -> Result<RegistryPage<ModelVersion>> {
        let dialect = self.dialect();
        let statement = model_version_search_statement(&registry_query, dialect);
        let rows = self
            .pools
            .fetch_all(Query::built(&statement, dialect))
            .await
            .map_err(db_error)?;
        let has_more = rows.len() > registry_query.max_results;
        let mut versions = rows
            .iter()
            .take(registry_query.max_results)
            .map(version_from_row)
            .collect::<Result<Vec<_>>>()?;
        // MLflow's search answers versions without their aliases.
        load_version_tags(&self.pools, &mut versions).await?;
        Ok(RegistryPage {
            items: versions,
            has_more,
        })
    }

    async fn set_model_version_tag(
        &self,
        name: &str,
        version: i64,
        tag: ModelVersionTag,
    ) -> Result<bool> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        if !version_exists(&mut transaction, name, version).await? {
            return Ok(false);
        }
        let sql = self.tag_upsert(
            "INSERT INTO model_version_tags (workspace, name, version, \"key\", value) \
             VALUES (?, ?, ?, ?, ?)",
            "workspace, \"key\", name, version",
        );
        transaction
            .execute(
                query(sql)
                    .bind(WORKSPACE)
                    .bind(name)
                    .bind(version)
                    .bind(tag.key.as_str())
                    .bind(tag.value.as_str()),
            )
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn delete_model_version_tag(&self, name: &str, version: i64, key: &str) -> Result<bool> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        if !version_exists(&mut transaction, name, version).await? {
            return Ok(false);
        }
        transaction
            .execute(
                query(
                    "DELETE FROM model_version_tags WHERE workspace = 'default' AND name = ? AND version = ? \
                     AND \"key\" = ?",
                )
                .bind(name)
                .bind(version)
                .bind(key),
            )
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: i64,
    ) -> Result<bool> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        if !version_exists(&mut transaction, name, version).await? {
            return Ok(false);
        }
        let sql = match self.dialect() {
            Dialect::Sqlite | Dialect::Postgres => {
                "INSERT INTO registered_model_aliases (workspace, name, alias, version) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (workspace, name, alias) DO UPDATE SET version = excluded.version"
            }
            Dialect::MySql => {
                "INSERT INTO registered_model_aliases (workspace, name, alias, version) VALUES (?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE version = VALUES(version)"
            }
        };
        transaction
            .execute(
                query(sql)
                    .bind(WORKSPACE)
                    .bind(name)
                    .bind(alias)
                    .bind(version),
            )
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<bool> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        if !touch_model(&mut transaction, name, None).await? {
            return Ok(false);
        }
        transaction
            .execute(
                query(
                    "DELETE FROM registered_model_aliases WHERE workspace = 'default' AND name = ? AND alias = ?",
                )
                .bind(name)
                .bind(alias),
            )
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn get_registered_model_alias(&self, name: &str, alias: &str) -> Result<Option<i64>> {
        let row = self
            .pools
            .fetch_optional(
                query(
                    "SELECT version FROM registered_model_aliases WHERE workspace = 'default' AND name = ? \
                     AND alias = ?",
                )
                .bind(name)
                .bind(alias),
            )
            .await
            .map_err(db_error)?;
        row.map(|row| row.get::<i64>("version")).transpose()
    }
}
