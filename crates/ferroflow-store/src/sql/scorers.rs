//! `ScorerStore` on MLflow 3.17's `scorers` and `scorer_versions` tables (and the `online_scoring_configs`
//! and `endpoint_bindings` rows that hang off a scorer), written as MLflow's `SqlAlchemyStore` writes
//! them: one `scorers` row per (experiment, name) with a UUID id, versions numbered from 1.

use super::connection::{db_error, query, Row};
use super::{placeholders, SqlStore};
use crate::registry_search::WORKSPACE;
use async_trait::async_trait;
use ferroflow_core::scorers::{
    new_scorer_id, DeleteOutcome, OnlineConfigRow, ScorerRow, ScorerStore,
};
use ferroflow_core::Result;
use std::collections::HashMap;

/// Ids bound per `IN (...)` list, well below SQLite's parameter limit.
const CHUNK: usize = 500;

const VERSION_COLUMNS: &str = "s.experiment_id, s.scorer_name, s.scorer_id, v.scorer_version, \
                               v.serialized_scorer, v.creation_time";

/// The `endpoint_bindings.resource_type` of a scorer.
const SCORER_RESOURCE: &str = "scorer";

fn scorer_from_row(row: &Row) -> Result<ScorerRow> {
    Ok(ScorerRow {
        experiment_id: row.get("experiment_id")?,
        scorer_name: row.get("scorer_name")?,
        scorer_id: row.get("scorer_id")?,
        scorer_version: row.get("scorer_version")?,
        serialized_scorer: row.get("serialized_scorer")?,
        creation_time: row.get("creation_time")?,
    })
}

#[async_trait]
impl ScorerStore for SqlStore {
    async fn register_scorer(
        &self,
        experiment_id: i64,
        name: &str,
        serialized_scorer: &str,
        now: i64,
    ) -> Result<ScorerRow> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let existing = transaction
            .fetch_optional(
                query("SELECT scorer_id FROM scorers WHERE experiment_id = ? AND scorer_name = ?")
                    .bind(experiment_id)
                    .bind(name),
            )
            .await
            .map_err(db_error)?;
        let scorer_id: String = match existing {
            Some(row) => row.get("scorer_id")?,
            None => {
                let scorer_id = new_scorer_id();
                transaction
                    .execute(
                        query(
                            "INSERT INTO scorers (experiment_id, scorer_name, scorer_id) \
                             VALUES (?, ?, ?)",
                        )
                        .bind(experiment_id)
                        .bind(name)
                        .bind(scorer_id.as_str()),
                    )
                    .await
                    .map_err(db_error)?;
                scorer_id
            }
        };
        let latest = transaction
            .fetch_optional(
                query(
                    "SELECT MAX(scorer_version) AS latest FROM scorer_versions WHERE scorer_id = ?",
                )
                .bind(scorer_id.as_str()),
            )
            .await
            .map_err(db_error)?;
        let latest: Option<i64> = match latest {
            Some(row) => row.get("latest")?,
            None => None,
        };
        let version = latest.map_or(1, |latest| latest + 1);
        transaction
            .execute(
                query(
                    "INSERT INTO scorer_versions (scorer_id, scorer_version, serialized_scorer, \
                     creation_time) VALUES (?, ?, ?, ?)",
                )
                .bind(scorer_id.as_str())
                .bind(version)
                .bind(serialized_scorer)
                .bind(now),
            )
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        Ok(ScorerRow {
            experiment_id,
            scorer_name: name.to_owned(),
            scorer_id,
            scorer_version: version,
            serialized_scorer: serialized_scorer.to_owned(),
            creation_time: Some(now),
        })
    }

    async fn latest_scorers(&self, experiment_ids: &[i64]) -> Result<Vec<ScorerRow>> {
        let mut scorers = Vec::new();
        for chunk in experiment_ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT {VERSION_COLUMNS} FROM scorers s \
                 JOIN scorer_versions v ON v.scorer_id = s.scorer_id \
                 WHERE s.experiment_id IN ({}) AND v.scorer_version = \
                 (SELECT MAX(latest.scorer_version) FROM scorer_versions latest \
                  WHERE latest.scorer_id = s.scorer_id)",
                placeholders(chunk.len())
            );
            for row in self
                .pools
                .fetch_all(query(sql).bind_each(chunk.iter().copied()))
                .await
                .map_err(db_error)?
            {
                scorers.push(scorer_from_row(&row)?);
            }
        }
        scorers.sort_by(|a, b| {
            (a.experiment_id, &a.scorer_name).cmp(&(b.experiment_id, &b.scorer_name))
        });
        Ok(scorers)
    }

    async fn active_experiment_ids(&self, ids: Option<&[i64]>) -> Result<Vec<i64>> {
        let base = "SELECT experiment_id FROM experiments WHERE lifecycle_stage = 'active' \
                    AND workspace = ?";
        let mut found = Vec::new();
        let mut collect = |rows: Vec<Row>| -> Result<()> {
            for row in rows {
                found.push(row.get::<i64>("experiment_id")?);
            }
            Ok(())
        };
        match ids {
            None => collect(
                self.pools
                    .fetch_all(query(format!("{base} ORDER BY experiment_id")).bind(WORKSPACE))
                    .await
                    .map_err(db_error)?,
            )?,
            Some(ids) => {
                for chunk in ids.chunks(CHUNK) {
                    let sql = format!(
                        "{base} AND experiment_id IN ({}) ORDER BY experiment_id",
                        placeholders(chunk.len())
                    );
                    collect(
                        self.pools
                            .fetch_all(query(sql).bind(WORKSPACE).bind_each(chunk.iter().copied()))
                            .await
                            .map_err(db_error)?,
                    )?;
                }
            }
        }
        Ok(found)
    }

    async fn scorer_id(&self, experiment_id: i64, name: &str) -> Result<Option<String>> {
        let row = self
            .pools
            .fetch_optional(
                query("SELECT scorer_id FROM scorers WHERE experiment_id = ? AND scorer_name = ?")
                    .bind(experiment_id)
                    .bind(name),
            )
            .await
            .map_err(db_error)?;
        row.map(|row| row.get("scorer_id")).transpose()
    }

    async fn scorer_versions(&self, scorer_id: &str) -> Result<Vec<ScorerRow>> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM scorers s \
             JOIN scorer_versions v ON v.scorer_id = s.scorer_id \
             WHERE s.scorer_id = ? ORDER BY v.scorer_version"
        );
        self.pools
            .fetch_all(query(sql).bind(scorer_id))
            .await
            .map_err(db_error)?
            .iter()
            .map(scorer_from_row)
            .collect()
    }

    async fn scorer_version(
        &self,
        scorer_id: &str,
        version: Option<i64>,
    ) -> Result<Option<ScorerRow>> {
        let statement = match version {
            Some(version) => query(format!(
                "SELECT {VERSION_COLUMNS} FROM scorers s \
                 JOIN scorer_versions v ON v.scorer_id = s.scorer_id \
                 WHERE s.scorer_id = ? AND v.scorer_version = ?"
            ))
            .bind(scorer_id)
            .bind(version),
            None => query(format!(
                "SELECT {VERSION_COLUMNS} FROM scorers s \
                 JOIN scorer_versions v ON v.scorer_id = s.scorer_id \
                 WHERE s.scorer_id = ? ORDER BY v.scorer_version DESC LIMIT 1"
            ))
            .bind(scorer_id),
        };
        let row = self
            .pools
            .fetch_optional(statement)
            .await
            .map_err(db_error)?;
        row.as_ref().map(scorer_from_row).transpose()
    }

    async fn delete_scorer(
        &self,
        experiment_id: i64,
        name: &str,
        version: Option<i64>,
    ) -> Result<DeleteOutcome> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let existing = transaction
            .fetch_optional(
                query("SELECT scorer_id FROM scorers WHERE experiment_id = ? AND scorer_name = ?")
                    .bind(experiment_id)
                    .bind(name),
            )
            .await
            .map_err(db_error)?;
        let Some(row) = existing else {
            return Ok(DeleteOutcome::NoScorer);
        };
        let scorer_id: String = row.get("scorer_id")?;
        let deleted = match version {
            Some(version) => transaction.execute(
                query("DELETE FROM scorer_versions WHERE scorer_id = ? AND scorer_version = ?")
                    .bind(scorer_id.as_str())
                    .bind(version),
            ),
            None => transaction.execute(
                query("DELETE FROM scorer_versions WHERE scorer_id = ?").bind(scorer_id.as_str()),
            ),
        }
        .await
        .map_err(db_error)?;
        if deleted.rows_affected == 0 {
            return Ok(DeleteOutcome::NoVersion);
        }
        if version.is_none() {
            transaction
                .execute(
                    query(
                        "DELETE FROM endpoint_bindings WHERE resource_type = ? AND resource_id = ?",
                    )
                    .bind(SCORER_RESOURCE)
                    .bind(scorer_id.as_str()),
                )
                .await
                .map_err(db_error)?;
            // The foreign key cascades on PostgreSQL and MySQL; SQLite may not enforce it.
            transaction
                .execute(
                    query("DELETE FROM online_scoring_configs WHERE scorer_id = ?")
                        .bind(scorer_id.as_str()),
                )
                .await
                .map_err(db_error)?;
            transaction
                .execute(query("DELETE FROM scorers WHERE scorer_id = ?").bind(scorer_id.as_str()))
                .await
                .map_err(db_error)?;
        }
        transaction.commit().await.map_err(db_error)?;
        Ok(DeleteOutcome::Deleted)
    }

    async fn gateway_endpoint_names(&self) -> Result<HashMap<String, String>> {
        let rows = self
            .pools
            .fetch_all(
                query("SELECT endpoint_id, name FROM endpoints WHERE workspace = ?")
                    .bind(WORKSPACE),
            )
            .await
            .map_err(db_error)?;
        let mut names = HashMap::new();
        for row in &rows {
            // A nameless endpoint names nothing: MLflow drops the judge's model then.
            if let Some(name) = row.get::<Option<String>>("name")? {
                names.insert(row.get("endpoint_id")?, name);
            }
        }
        Ok(names)
    }

    async fn online_configs(&self, scorer_ids: &[String]) -> Result<Vec<OnlineConfigRow>> {
        let mut configs = Vec::new();
        for chunk in scorer_ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT online_scoring_config_id, scorer_id, sample_rate, experiment_id, \
                 filter_string FROM online_scoring_configs WHERE scorer_id IN ({}) \
                 ORDER BY online_scoring_config_id",
                placeholders(chunk.len())
            );
            for row in self
                .pools
                .fetch_all(query(sql).bind_each(chunk.iter().map(String::as_str)))
                .await
                .map_err(db_error)?
            {
                configs.push(OnlineConfigRow {
                    online_scoring_config_id: row.get("online_scoring_config_id")?,
                    scorer_id: row.get("scorer_id")?,
                    sample_rate: row.get("sample_rate")?,
                    experiment_id: row.get("experiment_id")?,
                    filter_string: row.get("filter_string")?,
                });
            }
        }
        Ok(configs)
    }
}
