//! `EvalDatasetStore` on MLflow 3.17's `evaluation_datasets`, `evaluation_dataset_tags`,
//! `evaluation_dataset_records` and `entity_associations` (dataset → experiment) tables, filled as
//! MLflow's `SqlAlchemyStore` fills them. The records' JSON columns are `json` on PostgreSQL and MySQL:
//! values are cast on the way in and read back as text.

use super::connection::{db_error, query, render, Row, Transaction};
use super::{placeholders, SqlStore};
use crate::registry_search::WORKSPACE;
use crate::search::{string_comparison, Dialect};
use async_trait::async_trait;
use ferroflow_core::eval_datasets::{
    dataset_digest, profile_for, updated_schema, DatasetKey, DatasetQuery, DatasetRow,
    EvalDatasetStore, RecordCursor, RecordInput, StoredRecord, UpsertCounts, DATASET_ENTITY,
    EXPERIMENT_ENTITY,
};
use ferroflow_core::filter::{Comparator, Value};
use ferroflow_core::traces::new_association_id;
use ferroflow_core::Result;
use sea_query::{Expr, Iden, Order, Query, SimpleExpr};
use std::collections::HashMap;

#[derive(Iden, Clone, Copy)]
enum EvaluationDatasets {
    Table,
    DatasetId,
    Name,
    CreatedTime,
    LastUpdateTime,
    CreatedBy,
    LastUpdatedBy,
    Workspace,
}

#[derive(Iden, Clone, Copy)]
enum EvaluationDatasetTags {
    Table,
    DatasetId,
    Key,
    Value,
}

#[derive(Iden, Clone, Copy)]
enum EntityAssociations {
    Table,
    SourceType,
    SourceId,
    DestinationType,
    DestinationId,
}

const DATASET_COLUMNS: &str = "dataset_id, name, \"schema\", profile, digest, created_time, \
                               last_update_time, created_by, last_updated_by";

/// A bound JSON value: PostgreSQL's `json` columns take no text parameter without a cast.
fn json_param(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "CAST(? AS json)",
        Dialect::Sqlite | Dialect::MySql => "?",
    }
}

/// A JSON column read as text.
fn json_column(column: &str, dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => column.to_owned(),
        Dialect::Postgres => format!("CAST({column} AS TEXT) AS {column}"),
        Dialect::MySql => format!("CAST({column} AS CHAR) AS {column}"),
    }
}

fn record_columns(dialect: Dialect) -> String {
    let json: Vec<String> = ["inputs", "outputs", "expectations", "tags", "source"]
        .iter()
        .map(|column| json_column(column, dialect))
        .collect();
    format!(
        "dataset_record_id, dataset_id, {}, source_id, source_type, created_time, last_update_time, \
         created_by, last_updated_by, input_hash",
        json.join(", ")
    )
}

fn dataset_from_row(row: &Row) -> Result<DatasetRow> {
    Ok(DatasetRow {
        dataset_id: row.get("dataset_id")?,
        name: row.get("name")?,
        schema: row.get("schema")?,
        profile: row.get("profile")?,
        digest: row.get("digest")?,
        created_time: row.get("created_time")?,
        last_update_time: row.get("last_update_time")?,
        created_by: row.get("created_by")?,
        last_updated_by: row.get("last_updated_by")?,
        tags: Vec::new(),
    })
}

fn record_from_row(row: &Row) -> Result<StoredRecord> {
    Ok(StoredRecord {
        dataset_record_id: row.get("dataset_record_id")?,
        dataset_id: row.get("dataset_id")?,
        inputs: row.get("inputs")?,
        outputs: row.get("outputs")?,
        expectations: row.get("expectations")?,
        tags: row.get("tags")?,
        source: row.get("source")?,
        source_id: row.get("source_id")?,
        source_type: row.get("source_type")?,
        created_time: row.get("created_time")?,
        last_update_time: row.get("last_update_time")?,
        created_by: row.get("created_by")?,
        last_updated_by: row.get("last_updated_by")?,
        input_hash: row.get("input_hash")?,
    })
}

fn clamp(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl SqlStore {
    /// Fills in each dataset's tags.
    async fn load_dataset_tags(&self, datasets: &mut [DatasetRow]) -> Result<()> {
        let ids: Vec<String> = datasets.iter().map(|row| row.dataset_id.clone()).collect();
        let mut tags: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT dataset_id, \"key\", value FROM evaluation_dataset_tags \
                 WHERE dataset_id IN ({}) ORDER BY dataset_id, \"key\"",
                placeholders(chunk.len())
            );
            for row in self
                .pools
                .fetch_all(query(sql).bind_each(chunk.iter().map(String::as_str)))
                .await
                .map_err(db_error)?
            {
                let value: Option<String> = row.get("value")?;
                tags.entry(row.get("dataset_id")?)
                    .or_default()
                    .push((row.get("key")?, value.unwrap_or_default()));
            }
        }
        for dataset in datasets {
            dataset.tags = tags.remove(&dataset.dataset_id).unwrap_or_default();
        }
        Ok(())
    }
}

async fn set_tags(
    transaction: &mut Transaction,
    dataset_id: &str,
    tags: &[(String, String)],
) -> Result<()> {
    let sql = match transaction.dialect() {
        Dialect::Sqlite | Dialect::Postgres => {
            "INSERT INTO evaluation_dataset_tags (dataset_id, \"key\", value) VALUES (?, ?, ?) \
             ON CONFLICT (dataset_id, \"key\") DO UPDATE SET value = excluded.value"
        }
        Dialect::MySql => {
            "INSERT INTO evaluation_dataset_tags (dataset_id, \"key\", value) VALUES (?, ?, ?) \
             ON DUPLICATE KEY UPDATE value = VALUES(value)"
        }
    };
    for (key, value) in tags {
        transaction
            .execute(
                query(sql)
                    .bind(dataset_id)
                    .bind(key.as_str())
                    .bind(value.as_str()),
            )
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

async fn associate(
    transaction: &mut Transaction,
    dataset_id: &str,
    experiment_id: &str,
    created_time: Option<i64>,
) -> Result<()> {
    let sql = match transaction.dialect() {
        Dialect::Sqlite | Dialect::Postgres => {
            "INSERT INTO entity_associations (association_id, source_type, source_id, \
             destination_type, destination_id, created_time) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (source_type, source_id, destination_type, destination_id) DO NOTHING"
        }
        Dialect::MySql => {
            "INSERT IGNORE INTO entity_associations (association_id, source_type, source_id, \
             destination_type, destination_id, created_time) VALUES (?, ?, ?, ?, ?, ?)"
        }
    };
    transaction
        .execute(
            query(sql)
                .bind(new_association_id())
                .bind(DATASET_ENTITY)
                .bind(dataset_id)
                .bind(EXPERIMENT_ENTITY)
                .bind(experiment_id)
                .bind(created_time),
        )
        .await
        .map_err(db_error)?;
    Ok(())
}

fn attribute_column(key: &DatasetKey) -> EvaluationDatasets {
    match key {
        DatasetKey::Name => EvaluationDatasets::Name,
        DatasetKey::CreatedBy => EvaluationDatasets::CreatedBy,
        DatasetKey::LastUpdatedBy => EvaluationDatasets::LastUpdatedBy,
        DatasetKey::CreatedTime => EvaluationDatasets::CreatedTime,
        DatasetKey::LastUpdateTime | DatasetKey::Tag(_) => EvaluationDatasets::LastUpdateTime,
    }
}

fn numeric_comparison(column: SimpleExpr, comparator: Comparator, value: f64) -> SimpleExpr {
    // The service accepts whole numbers only.
    let value = value as i64;
    let column = Expr::expr(column);
    match comparator {
        Comparator::Eq => column.eq(value),
        Comparator::NotEq => column.ne(value),
        Comparator::Gt => column.gt(value),
        Comparator::Ge => column.gte(value),
        Comparator::Lt => column.lt(value),
        _ => column.lte(value),
    }
}

fn search_statement(search: &DatasetQuery, dialect: Dialect) -> sea_query::SelectStatement {
    let mut statement = Query::select();
    statement
        .expr(Expr::cust(render(DATASET_COLUMNS, dialect)))
        .from(EvaluationDatasets::Table)
        .and_where(
            Expr::col((EvaluationDatasets::Table, EvaluationDatasets::Workspace)).eq(WORKSPACE),
        );
    if !search.experiment_ids.is_empty() {
        let mut associated = Query::select();
        associated
            .column(EntityAssociations::SourceId)
            .from(EntityAssociations::Table)
            .and_where(Expr::col(EntityAssociations::SourceType).eq(DATASET_ENTITY))
            .and_where(Expr::col(EntityAssociations::DestinationType).eq(EXPERIMENT_ENTITY))
            .and_where(
                Expr::col(EntityAssociations::DestinationId)
                    .is_in(search.experiment_ids.iter().map(String::as_str)),
            );
        statement.and_where(
            Expr::col((EvaluationDatasets::Table, EvaluationDatasets::DatasetId))
                .in_subquery(associated),
        );
    }
    for comparison in &search.filter {
        let condition = match (&comparison.key, &comparison.value) {
            (DatasetKey::Tag(key), value) => {
                let mut tags = Query::select();
                tags.expr(Expr::cust("1"))
                    .from(EvaluationDatasetTags::Table)
                    .and_where(
                        Expr::col((
                            EvaluationDatasetTags::Table,
                            EvaluationDatasetTags::DatasetId,
                        ))
                        .equals((EvaluationDatasets::Table, EvaluationDatasets::DatasetId)),
                    )
                    .and_where(
                        Expr::col((EvaluationDatasetTags::Table, EvaluationDatasetTags::Key))
                            .eq(key.as_str()),
                    )
                    .and_where(
                        string_comparison(
                            Expr::col((EvaluationDatasetTags::Table, EvaluationDatasetTags::Value))
                                .into(),
                            comparison.comparator,
                            value,
                            dialect,
                        )
                        .unwrap_or_else(|| Expr::cust("1 = 0")),
                    );
                Expr::exists(tags)
            }
            (key, Value::Number(number)) => numeric_comparison(
                Expr::col((EvaluationDatasets::Table, attribute_column(key))).into(),
                comparison.comparator,
                *number,
            ),
            (key, value) => string_comparison(
                Expr::col((EvaluationDatasets::Table, attribute_column(key))).into(),
                comparison.comparator,
                value,
                dialect,
            )
            .unwrap_or_else(|| Expr::cust("1 = 0")),
        };
        statement.and_where(condition);
    }
    let direction = |ascending: bool| if ascending { Order::Asc } else { Order::Desc };
    for (key, ascending) in &search.order_by {
        statement.order_by(
            (EvaluationDatasets::Table, attribute_column(key)),
            direction(*ascending),
        );
    }
    statement
        .order_by(
            (EvaluationDatasets::Table, EvaluationDatasets::DatasetId),
            Order::Desc,
        )
        .limit(u64::try_from(search.max_results).unwrap_or(u64::MAX / 2) + 1)
        .offset(u64::try_from(search.offset).unwrap_or(u64::MAX / 2));
    statement
}

#[async_trait]
impl EvalDatasetStore for SqlStore {
    async fn create_dataset(&self, dataset: &DatasetRow, experiment_ids: &[String]) -> Result<()> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        transaction
            .execute(
                query(
                    "INSERT INTO evaluation_datasets (dataset_id, name, \"schema\", profile, digest, \
                     created_time, last_update_time, created_by, last_updated_by, workspace) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(dataset.dataset_id.as_str())
                .bind(dataset.name.as_str())
                .bind(dataset.schema.as_deref())
                .bind(dataset.profile.as_deref())
                .bind(dataset.digest.as_deref())
                .bind(dataset.created_time)
                .bind(dataset.last_update_time)
                .bind(dataset.created_by.as_deref())
                .bind(dataset.last_updated_by.as_deref())
                .bind(WORKSPACE),
            )
            .await
            .map_err(db_error)?;
        set_tags(&mut transaction, &dataset.dataset_id, &dataset.tags).await?;
        for experiment_id in experiment_ids {
            associate(
                &mut transaction,
                &dataset.dataset_id,
                experiment_id,
                dataset.created_time,
            )
            .await?;
        }
        transaction.commit().await.map_err(db_error)
    }

    async fn get_dataset(&self, dataset_id: &str) -> Result<Option<DatasetRow>> {
        let row = self
            .pools
            .fetch_optional(
                query(format!(
                    "SELECT {DATASET_COLUMNS} FROM evaluation_datasets \
                     WHERE dataset_id = ? AND workspace = ?"
                ))
                .bind(dataset_id)
                .bind(WORKSPACE),
            )
            .await
            .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut datasets = vec![dataset_from_row(&row)?];
        self.load_dataset_tags(&mut datasets).await?;
        Ok(datasets.pop())
    }

    async fn delete_dataset(&self, dataset_id: &str) -> Result<()> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        transaction
            .execute(
                query(
                    "DELETE FROM entity_associations WHERE (source_type = ? AND source_id = ?) \
                     OR (destination_type = ? AND destination_id = ?)",
                )
                .bind(DATASET_ENTITY)
                .bind(dataset_id)
                .bind(DATASET_ENTITY)
                .bind(dataset_id),
            )
            .await
            .map_err(db_error)?;
        // SQLite enforces no foreign keys unless asked, so the children go explicitly.
        for table in ["evaluation_dataset_records", "evaluation_dataset_tags"] {
            transaction
                .execute(
                    query(format!("DELETE FROM {table} WHERE dataset_id = ?")).bind(dataset_id),
                )
                .await
                .map_err(db_error)?;
        }
        transaction
            .execute(
                query("DELETE FROM evaluation_datasets WHERE dataset_id = ? AND workspace = ?")
                    .bind(dataset_id)
                    .bind(WORKSPACE),
            )
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)
    }

    async fn search_datasets(&self, search: &DatasetQuery) -> Result<Vec<DatasetRow>> {
        let dialect = self.pools.dialect();
        let statement = search_statement(search, dialect);
        let rows = self
            .pools
            .fetch_all(super::connection::Query::built(&statement, dialect))
            .await
            .map_err(db_error)?;
        let mut datasets = rows
            .iter()
            .map(dataset_from_row)
            .collect::<Result<Vec<_>>>()?;
        self.load_dataset_tags(&mut datasets).await?;
        Ok(datasets)
    }

    async fn set_dataset_tags(&self, dataset_id: &str, tags: &[(String, String)]) -> Result<bool> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let exists = transaction
            .fetch_optional(
                query("SELECT dataset_id FROM evaluation_datasets WHERE dataset_id = ? AND workspace = ?")
                    .bind(dataset_id)
                    .bind(WORKSPACE),
            )
            .await
            .map_err(db_error)?
            .is_some();
        if !exists {
            return Ok(false);
        }
        set_tags(&mut transaction, dataset_id, tags).await?;
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn delete_dataset_tag(&self, dataset_id: &str, key: &str) -> Result<()> {
        self.pools
            .execute(
                query("DELETE FROM evaluation_dataset_tags WHERE dataset_id = ? AND \"key\" = ?")
                    .bind(dataset_id)
                    .bind(key),
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn upsert_records(
        &self,
        dataset_id: &str,
        records: &[RecordInput],
        now: i64,
    ) -> Result<Option<UpsertCounts>> {
        let dialect = self.pools.dialect();
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let dataset = transaction
            .fetch_optional(
                query(
                    "SELECT name, \"schema\" FROM evaluation_datasets WHERE dataset_id = ? AND workspace = ?",
                )
                .bind(dataset_id)
                .bind(WORKSPACE),
            )
            .await
            .map_err(db_error)?;
        let Some(dataset) = dataset else {
            return Ok(None);
        };
        let name: String = dataset.get("name")?;
        let schema: Option<String> = dataset.get("schema")?;
        let json = json_param(dialect);
        let select = format!(
            "SELECT {} FROM evaluation_dataset_records WHERE dataset_id = ? AND input_hash = ?",
            record_columns(dialect)
        );
        let insert = format!(
            "INSERT INTO evaluation_dataset_records (dataset_record_id, dataset_id, inputs, outputs, \
             expectations, tags, source, source_id, source_type, created_time, last_update_time, \
             created_by, last_updated_by, input_hash) \
             VALUES (?, ?, {json}, {json}, {json}, {json}, {json}, ?, ?, ?, ?, ?, ?, ?)"
        );
        let update = format!(
            "UPDATE evaluation_dataset_records SET outputs = {json}, expectations = {json}, \
             tags = {json}, last_update_time = ?, last_updated_by = ? WHERE dataset_record_id = ?"
        );
        let mut counts = UpsertCounts {
            inserted: 0,
            updated: 0,
        };
        let mut updated_by: Option<String> = None;
        for record in records {
            if record.user.is_some() {
                updated_by.clone_from(&record.user);
            }
            let existing = transaction
                .fetch_optional(
                    query(select.clone())
                        .bind(dataset_id)
                        .bind(record.input_hash.as_str()),
                )
                .await
                .map_err(db_error)?;
            if let Some(existing) = existing {
                let mut row = record_from_row(&existing)?;
                record.merge_into(&mut row, now);
                transaction
                    .execute(
                        query(update.clone())
                            .bind(row.outputs)
                            .bind(row.expectations)
                            .bind(row.tags)
                            .bind(row.last_update_time)
                            .bind(row.last_updated_by)
                            .bind(row.dataset_record_id),
                    )
                    .await
                    .map_err(db_error)?;
                counts.updated += 1;
            } else {
                let row = record.new_row(dataset_id, now);
                transaction
                    .execute(
                        query(insert.clone())
                            .bind(row.dataset_record_id)
                            .bind(row.dataset_id)
                            .bind(row.inputs)
                            .bind(row.outputs)
                            .bind(row.expectations)
                            .bind(row.tags)
                            .bind(row.source)
                            .bind(row.source_id)
                            .bind(row.source_type)
                            .bind(row.created_time)
                            .bind(row.last_update_time)
                            .bind(row.created_by)
                            .bind(row.last_updated_by)
                            .bind(row.input_hash),
                    )
                    .await
                    .map_err(db_error)?;
                counts.inserted += 1;
            }
        }
        let count: i64 = transaction
            .fetch_optional(
                query("SELECT COUNT(*) AS n FROM evaluation_dataset_records WHERE dataset_id = ?")
                    .bind(dataset_id),
            )
            .await
            .map_err(db_error)?
            .map(|row| row.get("n"))
            .transpose()?
            .unwrap_or(0);
        let schema = updated_schema(schema.as_deref(), records);
        let profile = profile_for(count);
        transaction
            .execute(
                query(
                    "UPDATE evaluation_datasets SET last_update_time = ?, last_updated_by = ?, \
                     digest = ?, \"schema\" = COALESCE(?, \"schema\"), profile = COALESCE(?, profile) \
                     WHERE dataset_id = ?",
                )
                .bind(now)
                .bind(updated_by)
                .bind(dataset_digest(&name, now))
                .bind(schema)
                .bind(profile)
                .bind(dataset_id),
            )
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        Ok(Some(counts))
    }

    async fn load_records(
        &self,
        dataset_id: &str,
        cursor: &RecordCursor,
        limit: usize,
    ) -> Result<Vec<StoredRecord>> {
        let columns = record_columns(self.pools.dialect());
        let limit = clamp(limit).saturating_add(1);
        let statement = match cursor {
            RecordCursor::Start | RecordCursor::Offset(_) => query(format!(
                "SELECT {columns} FROM evaluation_dataset_records WHERE dataset_id = ? \
                 ORDER BY created_time, dataset_record_id LIMIT ? OFFSET ?"
            ))
            .bind(dataset_id)
            .bind(limit)
            .bind(match cursor {
                RecordCursor::Offset(offset) => clamp(*offset),
                _ => 0,
            }),
            RecordCursor::After(time, id) => query(format!(
                "SELECT {columns} FROM evaluation_dataset_records WHERE dataset_id = ? \
                 AND (created_time > ? OR (created_time = ? AND dataset_record_id > ?)) \
                 ORDER BY created_time, dataset_record_id LIMIT ?"
            ))
            .bind(dataset_id)
            .bind(*time)
            .bind(*time)
            .bind(id.as_str())
            .bind(limit),
        };
        self.pools
            .fetch_all(statement)
            .await
            .map_err(db_error)?
            .iter()
            .map(record_from_row)
            .collect()
    }

    async fn delete_records(&self, dataset_id: &str, record_ids: &[String]) -> Result<i64> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let mut deleted: i64 = 0;
        for chunk in record_ids.chunks(500) {
            let done = transaction
                .execute(
                    query(format!(
                        "DELETE FROM evaluation_dataset_records WHERE dataset_id = ? \
                         AND dataset_record_id IN ({})",
                        placeholders(chunk.len())
                    ))
                    .bind(dataset_id)
                    .bind_each(chunk.iter().map(String::as_str)),
                )
                .await
                .map_err(db_error)?;
            deleted += i64::try_from(done.rows_affected).unwrap_or(i64::MAX);
        }
        if deleted == 0 {
            return Ok(0);
        }
        let profile: Option<String> = transaction
            .fetch_optional(
                query("SELECT profile FROM evaluation_datasets WHERE dataset_id = ?")
                    .bind(dataset_id),
            )
            .await
            .map_err(db_error)?
            .map(|row| row.get("profile"))
            .transpose()?
            .flatten();
        let before = profile
            .as_deref()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
            .and_then(|value| value.get("num_records").and_then(serde_json::Value::as_i64))
            .unwrap_or(0);
        // MLflow writes `json.dumps(None)` once a dataset has no records left.
        let profile = profile_for((before - deleted).max(0)).unwrap_or_else(|| "null".to_owned());
        transaction
            .execute(
                query("UPDATE evaluation_datasets SET profile = ? WHERE dataset_id = ?")
                    .bind(profile)
                    .bind(dataset_id),
            )
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        Ok(deleted)
    }

    async fn dataset_experiment_ids(&self, dataset_id: &str) -> Result<Vec<String>> {
        self.pools
            .fetch_all(
                query(
                    "SELECT destination_id FROM entity_associations WHERE source_type = ? \
                     AND source_id = ? AND destination_type = ? ORDER BY created_time, destination_id",
                )
                .bind(DATASET_ENTITY)
                .bind(dataset_id)
                .bind(EXPERIMENT_ENTITY),
            )
            .await
            .map_err(db_error)?
            .iter()
            .map(|row| row.get("destination_id"))
            .collect()
    }

    async fn existing_experiment_ids(&self, ids: &[String]) -> Result<Vec<String>> {
        let numeric: Vec<i64> = ids.iter().filter_map(|id| id.parse().ok()).collect();
        let mut found = Vec::new();
        for chunk in numeric.chunks(500) {
            for row in self
                .pools
                .fetch_all(
                    query(format!(
                        "SELECT experiment_id FROM experiments WHERE experiment_id IN ({})",
                        placeholders(chunk.len())
                    ))
                    .bind_each(chunk.iter().copied()),
                )
                .await
                .map_err(db_error)?
            {
                let id: i64 = row.get("experiment_id")?;
                found.push(id.to_string());
            }
        }
        Ok(found)
    }

    async fn add_dataset_experiments(
        &self,
        dataset_id: &str,
        experiment_ids: &[String],
        now: i64,
    ) -> Result<()> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        for experiment_id in experiment_ids {
            // MLflow's own additions leave created_time empty.
            associate(&mut transaction, dataset_id, experiment_id, None).await?;
        }
        transaction
            .execute(
                query("UPDATE evaluation_datasets SET last_update_time = ? WHERE dataset_id = ?")
                    .bind(now)
                    .bind(dataset_id),
            )
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)
    }

    async fn remove_dataset_experiments(
        &self,
        dataset_id: &str,
        experiment_ids: &[String],
        now: i64,
    ) -> Result<()> {
        if experiment_ids.is_empty() {
            return Ok(());
        }
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let mut removed = 0;
        for chunk in experiment_ids.chunks(500) {
            let done = transaction
                .execute(
                    query(format!(
                        "DELETE FROM entity_associations WHERE source_type = ? AND source_id = ? \
                         AND destination_type = ? AND destination_id IN ({})",
                        placeholders(chunk.len())
                    ))
                    .bind(DATASET_ENTITY)
                    .bind(dataset_id)
                    .bind(EXPERIMENT_ENTITY)
                    .bind_each(chunk.iter().map(String::as_str)),
                )
                .await
                .map_err(db_error)?;
            removed += done.rows_affected;
        }
        if removed > 0 {
            transaction
                .execute(
                    query(
                        "UPDATE evaluation_datasets SET last_update_time = ? WHERE dataset_id = ?",
                    )
                    .bind(now)
                    .bind(dataset_id),
                )
                .await
                .map_err(db_error)?;
        }
        transaction.commit().await.map_err(db_error)
    }
}
