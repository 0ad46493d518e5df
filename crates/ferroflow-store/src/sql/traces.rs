//! `TraceStore` on MLflow's trace tables: `trace_info` (with the analytics columns MLflow derives from
//! metadata: `trace_name`, `session_id`, token counts, costs), `trace_tags`, `trace_request_metadata`,
//! `spans` (one row per span, `content` = MLflow's span JSON), `assessments` and
//! `entity_associations` (trace → run and trace → prompt version links).
//!
//! Span ingest is one transaction per batch, whatever its size: one multi-row insert for the traces it
//! creates, multi-row upserts for spans and tags, and one `UPDATE` per trace that already existed.
//! Child rows are deleted explicitly with their trace (MLflow relies on `ON DELETE CASCADE`, which
//! MySQL and SQLite honour too, but deleting them here keeps that independent of the connection's
//! foreign key setting).

use super::connection::{db_error, query, Query, Row, Transaction};
use super::{placeholders, SqlStore};
use crate::search::Dialect;
use crate::trace_search::trace_search_statement;
use async_trait::async_trait;
use ferroflow_core::trace_filter::TRACE_NAME_TAG;
use ferroflow_core::traces::{
    aggregation_nodes_of_content, analytics_metadata, cost_columns, new_association_id,
    token_columns, AssessmentRecord, AssessmentWrite, LogSpans, NewTrace, StoredSpan,
    TraceAnalytics, TraceDeletion, TraceInfo, TracePage, TraceQuery, TraceSpans, TraceStore,
    ARTIFACT_LOCATION_TAG, COST_KEYS, COST_METADATA, INFO_FINALIZED_METADATA, SESSION_METADATA,
    SPANS_LOCATION_TAG, TOKEN_KEYS, TOKEN_USAGE_METADATA, TRACKING_STORE, USER_METADATA,
};
use ferroflow_core::{Error, Result};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Rows per multi-row statement, well below every database's limit on bound values.
const ROWS_PER_STATEMENT: usize = 400;
/// Ids per `IN (...)` list.
const IDS_PER_STATEMENT: usize = 500;

const TRACE_COLUMNS: &str = "request_id, experiment_id, timestamp_ms, execution_time_ms, status, \
     client_request_id, request_preview, response_preview, trace_name, session_id, input_tokens, \
     output_tokens, total_tokens, cache_read_input_tokens, cache_creation_input_tokens, \
     cache_creation_input_tokens_above_1hr, input_cost, output_cost, total_cost";

const ASSESSMENT_COLUMNS: &str = "assessment_id, trace_id, name, assessment_type, value, error, \
     created_timestamp, last_updated_timestamp, source_type, source_id, run_id, span_id, rationale, \
     overrides, valid, assessment_metadata, aggregate_value, is_numeric_value";

/// A multi-row `INSERT` that, on a conflict on `conflict` columns, updates `update` columns from the
/// new row (or keeps the old row when `update` is empty), in the dialect's syntax.
fn upsert_sql(
    table: &str,
    columns: &[&str],
    conflict: &[&str],
    update: &[&str],
    rows: usize,
    dialect: Dialect,
) -> String {
    let row = format!("({})", placeholders(columns.len()));
    let values = vec![row; rows].join(", ");
    let head = format!(
        "INSERT INTO {table} ({}) VALUES {values}",
        columns.join(", ")
    );
    match dialect {
        Dialect::Sqlite | Dialect::Postgres => {
            if update.is_empty() {
                format!("{head} ON CONFLICT ({}) DO NOTHING", conflict.join(", "))
            } else {
                let sets: Vec<String> = update
                    .iter()
                    .map(|column| format!("{column} = excluded.{column}"))
                    .collect();
                format!(
                    "{head} ON CONFLICT ({}) DO UPDATE SET {}",
                    conflict.join(", "),
                    sets.join(", ")
                )
            }
        }
        Dialect::MySql => {
            let sets: Vec<String> = if update.is_empty() {
                vec![format!("{0} = {0}", conflict[0])]
            } else {
                update
                    .iter()
                    .map(|column| format!("{column} = VALUES({column})"))
                    .collect()
            };
            format!("{head} ON DUPLICATE KEY UPDATE {}", sets.join(", "))
        }
    }
}

/// The rows with distinct conflict keys, the last of each key kept, in key order: one PostgreSQL
/// statement may not update a row twice, and a batch may repeat a span or a tag.
fn last_row_per_key(
    columns: &[&str],
    conflict: &[&str],
    rows: Vec<Vec<sea_query::Value>>,
) -> Vec<Vec<sea_query::Value>> {
    let key_positions: Vec<usize> = conflict
        .iter()
        .filter_map(|name| columns.iter().position(|column| column == name))
        .collect();
    let mut by_key: BTreeMap<String, Vec<sea_query::Value>> = BTreeMap::new();
    for row in rows {
        let key: String = key_positions
            .iter()
            .map(|position| format!("{:?}\u{1f}", row.get(*position)))
            .collect();
        by_key.insert(key, row);
    }
    // In key order, so concurrent writers lock index entries in the same order (fewer deadlocks).
    by_key.into_values().collect()
}

/// Runs a multi-row upsert in chunks.
async fn upsert(
    transaction: &mut Transaction,
    table: &str,
    columns: &[&str],
    conflict: &[&str],
    update: &[&str],
    rows: Vec<Vec<sea_query::Value>>,
) -> Result<()> {
    let dialect = transaction.dialect();
    let rows = last_row_per_key(columns, conflict, rows);
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = upsert_sql(table, columns, conflict, update, chunk.len(), dialect);
        let statement = query(sql).bind_each(chunk.iter().flatten().cloned());
        transaction.execute(statement).await.map_err(db_error)?;
    }
    Ok(())
}

fn text(value: &str) -> sea_query::Value {
    sea_query::Value::String(Some(Box::new(value.to_owned())))
}

fn optional_text(value: Option<&str>) -> sea_query::Value {
    sea_query::Value::String(value.map(|value| Box::new(value.to_owned())))
}

fn tag_rows(trace_id: &str, tags: &[(String, String)]) -> Vec<Vec<sea_query::Value>> {
    tags.iter()
        .map(|(key, value)| vec![text(key), text(value), text(trace_id)])
        .collect()
}

async fn upsert_tags(
    transaction: &mut Transaction,
    rows: Vec<Vec<sea_query::Value>>,
) -> Result<()> {
    upsert(
        transaction,
        "trace_tags",
        &["\"key\"", "value", "request_id"],
        &["\"key\"", "request_id"],
        &["value"],
        rows,
    )
    .await
}

async fn upsert_metadata(
    transaction: &mut Transaction,
    rows: Vec<Vec<sea_query::Value>>,
    keep_existing: bool,
) -> Result<()> {
    let update: &[&str] = if keep_existing { &[] } else { &["value"] };
    upsert(
        transaction,
        "trace_request_metadata",
        &["\"key\"", "value", "request_id"],
        &["\"key\"", "request_id"],
        update,
        rows,
    )
    .await
}

fn ids_query(sql: String, ids: &[String]) -> Query {
    query(sql).bind_each(ids.iter().map(String::as_str))
}

/// The analytics columns of a `trace_info` row.
fn analytics_of(row: &Row) -> Result<TraceAnalytics> {
    let mut analytics = TraceAnalytics {
        session_id: row.get("session_id")?,
        ..TraceAnalytics::default()
    };
    for (index, key) in TOKEN_KEYS.iter().enumerate() {
        analytics.tokens[index] = row.get(key)?;
    }
    for (index, key) in COST_KEYS.iter().enumerate() {
        analytics.costs[index] = row.get(key)?;
    }
    Ok(analytics)
}

fn assessment_from_row(row: &Row) -> Result<AssessmentRecord> {
    Ok(AssessmentRecord {
        assessment_id: row.get("assessment_id")?,
        trace_id: row.get("trace_id")?,
        name: row.get("name")?,
        assessment_type: row.get("assessment_type")?,
        value: row.get("value")?,
        error: row.get("error")?,
        created_timestamp: row.get("created_timestamp")?,
        last_updated_timestamp: row.get("last_updated_timestamp")?,
        source_type: row.get("source_type")?,
        source_id: row.get("source_id")?,
        run_id: row.get("run_id")?,
        span_id: row.get("span_id")?,
        rationale: row.get("rationale")?,
        overrides: row.get("overrides")?,
        valid: row.get("valid")?,
        metadata: row.get("assessment_metadata")?,
        aggregate_value: row.get("aggregate_value")?,
        is_numeric_value: row.get("is_numeric_value")?,
    })
}

/// The dialect's row lock suffix for a read-modify-write (SQLite has one writer, so none).
fn for_update(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres | Dialect::MySql => " FOR UPDATE",
    }
}

/// What ingest needs to know of an existing trace.
struct ExistingTrace {
    experiment_id: i64,
    timestamp_ms: i64,
    execution_time_ms: Option<i64>,
    status: String,
    request_preview: Option<String>,
    response_preview: Option<String>,
    analytics: TraceAnalytics,
}

impl SqlStore {
    async fn load_trace_infos(&self, trace_ids: &[String]) -> Result<Vec<TraceInfo>> {
        let mut infos: HashMap<String, TraceInfo> = HashMap::with_capacity(trace_ids.len());
        for chunk in trace_ids.chunks(IDS_PER_STATEMENT) {
            let marks = placeholders(chunk.len());
            let rows = self
                .pools
                .fetch_all(ids_query(
                    format!("SELECT {TRACE_COLUMNS} FROM trace_info WHERE request_id IN ({marks})"),
                    chunk,
                ))
                .await
                .map_err(db_error)?;
            for row in rows {
                let trace_id: String = row.get("request_id")?;
                let experiment_id: i64 = row.get("experiment_id")?;
                let analytics = analytics_of(&row)?;
                let mut tags = BTreeMap::new();
                if let Some(name) = row.get::<Option<String>>("trace_name")? {
                    tags.insert(TRACE_NAME_TAG.to_owned(), name);
                }
                let trace_metadata: BTreeMap<String, String> =
                    analytics_metadata(&analytics).into_iter().collect();
                infos.insert(
                    trace_id.clone(),
                    TraceInfo {
                        trace_id,
                        experiment_id: experiment_id.to_string(),
                        request_time: row.get("timestamp_ms")?,
                        execution_duration: row.get("execution_time_ms")?,
                        state: row.get("status")?,
                        client_request_id: row.get("client_request_id")?,
                        request_preview: row.get("request_preview")?,
                        response_preview: row.get("response_preview")?,
                        trace_metadata,
                        tags,
                        assessments: Vec::new(),
                    },
                );
            }
            let rows = self
                .pools
                .fetch_all(ids_query(
                    format!(
                        "SELECT request_id, \"key\", value FROM trace_tags WHERE request_id IN ({marks})"
                    ),
                    chunk,
                ))
                .await
                .map_err(db_error)?;
            for row in rows {
                let trace_id: String = row.get("request_id")?;
                let key: String = row.get("key")?;
                if let (Some(info), false) = (infos.get_mut(&trace_id), key == TRACE_NAME_TAG) {
                    info.tags
                        .insert(key, row.get::<Option<String>>("value")?.unwrap_or_default());
                }
            }
            let rows = self
                .pools
                .fetch_all(ids_query(
                    format!(
                        "SELECT request_id, \"key\", value FROM trace_request_metadata \
                         WHERE request_id IN ({marks})"
                    ),
                    chunk,
                ))
                .await
                .map_err(db_error)?;
            for row in rows {
                let trace_id: String = row.get("request_id")?;
                let key: String = row.get("key")?;
                let promoted =
                    [SESSION_METADATA, TOKEN_USAGE_METADATA, COST_METADATA].contains(&key.as_str());
                if let (Some(info), false) = (infos.get_mut(&trace_id), promoted) {
                    info.trace_metadata
                        .insert(key, row.get::<Option<String>>("value")?.unwrap_or_default());
                }
            }
            let rows = self
                .pools
                .fetch_all(ids_query(
                    format!(
                        "SELECT {ASSESSMENT_COLUMNS} FROM assessments WHERE trace_id IN ({marks}) \
                         ORDER BY created_timestamp, assessment_id"
                    ),
                    chunk,
                ))
                .await
                .map_err(db_error)?;
            for row in rows {
                let assessment = assessment_from_row(&row)?;
                if let Some(info) = infos.get_mut(&assessment.trace_id) {
                    info.assessments.push(assessment);
                }
            }
        }
        Ok(trace_ids.iter().filter_map(|id| infos.remove(id)).collect())
    }
}

/// The `trace_info` row values of a trace created by ingest.
fn created_trace_row(batch: &LogSpans, trace: &TraceSpans) -> Vec<sea_query::Value> {
    let tokens = if trace.has_usage() {
        token_columns(&trace.usage_nodes).unwrap_or_default()
    } else {
        [None; 6]
    };
    let costs = if trace.has_cost() {
        cost_columns(&trace.cost_nodes).unwrap_or_default()
    } else {
        [None; 3]
    };
    let mut row = vec![
        text(&trace.trace_id),
        batch.experiment_id.into(),
        trace.min_start_ms.into(),
        trace.max_end_ms.map(|end| end - trace.min_start_ms).into(),
        text(trace.root_state.as_deref().unwrap_or("IN_PROGRESS")),
        optional_text(trace.request_preview.as_deref()),
        optional_text(trace.response_preview.as_deref()),
        optional_text(trace.trace_name.as_deref()),
        optional_text(trace.session_id.as_deref()),
    ];
    row.extend(tokens.iter().map(|value| sea_query::Value::BigInt(*value)));
    row.extend(costs.iter().map(|value| sea_query::Value::Double(*value)));
    row
}

const CREATED_TRACE_COLUMNS: [&str; 18] = [
    "request_id",
    "experiment_id",
    "timestamp_ms",
    "execution_time_ms",
    "status",
    "request_preview",
    "response_preview",
    "trace_name",
    "session_id",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cache_creation_input_tokens_above_1hr",
    "input_cost",
    "output_cost",
    "total_cost",
];

const SPAN_COLUMNS: [&str; 15] = [
    "trace_id",
    "experiment_id",
    "span_id",
    "parent_span_id",
    "name",
    "type",
    "status",
    "start_time_unix_nano",
    "end_time_unix_nano",
    "content",
    "input_cost",
    "output_cost",
    "total_cost",
    "model_name",
    "model_provider",
];

/// Reads the existing traces of `trace_ids` in the transaction, locking their rows where the
/// database has row locks.
async fn existing_traces(
    transaction: &mut Transaction,
    trace_ids: &[String],
) -> Result<HashMap<String, ExistingTrace>> {
    let lock = for_update(transaction.dialect());
    let mut existing = HashMap::new();
    for chunk in trace_ids.chunks(IDS_PER_STATEMENT) {
        let sql = format!(
            "SELECT {TRACE_COLUMNS} FROM trace_info WHERE request_id IN ({}) ORDER BY request_id{lock}",
            placeholders(chunk.len())
        );
        for row in transaction
            .fetch_all(ids_query(sql, chunk))
            .await
            .map_err(db_error)?
        {
            existing.insert(
                row.get::<String>("request_id")?,
                ExistingTrace {
                    experiment_id: row.get("experiment_id")?,
                    timestamp_ms: row.get("timestamp_ms")?,
                    execution_time_ms: row.get("execution_time_ms")?,
                    status: row.get("status")?,
                    request_preview: row.get("request_preview")?,
                    response_preview: row.get("response_preview")?,
                    analytics: analytics_of(&row)?,
                },
            );
        }
    }
    Ok(existing)
}

/// Deletes traces and every row attached to them.
async fn delete_trace_rows(transaction: &mut Transaction, trace_ids: &[String]) -> Result<()> {
    for chunk in trace_ids.chunks(IDS_PER_STATEMENT) {
        let marks = placeholders(chunk.len());
        for sql in [
            format!("DELETE FROM span_metrics WHERE trace_id IN ({marks})"),
            format!("DELETE FROM spans WHERE trace_id IN ({marks})"),
            format!("DELETE FROM assessments WHERE trace_id IN ({marks})"),
            format!("DELETE FROM trace_tags WHERE request_id IN ({marks})"),
            format!("DELETE FROM trace_request_metadata WHERE request_id IN ({marks})"),
            format!("DELETE FROM trace_metrics WHERE request_id IN ({marks})"),
            format!("DELETE FROM trace_info WHERE request_id IN ({marks})"),
        ] {
            transaction
                .execute(ids_query(sql, chunk))
                .await
                .map_err(db_error)?;
        }
    }
    Ok(())
}

/// How often a trace write that lost a deadlock is tried again.
const DEADLOCK_ATTEMPTS: u32 = 5;

/// Whether the error is a deadlock or a serialization failure the database resolved by aborting this
/// transaction (MySQL 1213 and 1205, PostgreSQL 40P01 and 40001): the whole write can be run again.
fn is_deadlock(error: &Error) -> bool {
    let Some(sqlx::Error::Database(database)) = error
        .source
        .as_deref()
        .and_then(|source| source.downcast_ref::<sqlx::Error>())
    else {
        return false;
    };
    if let Some(mysql) = database.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return matches!(mysql.number(), 1213 | 1205);
    }
    matches!(database.code().as_deref(), Some("40P01" | "40001"))
}

/// Runs `write` again (after a short, growing pause) while it loses deadlocks, as MLflow retries the
/// span and StartTraceV3 writes that race each other.
async fn retry_deadlocks<T, F, Fut>(mut write: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        match write().await {
            Err(error) if attempt + 1 < DEADLOCK_ATTEMPTS && is_deadlock(&error) => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10 * u64::from(attempt))).await;
            }
            other => return other,
        }
    }
}

impl SqlStore {
    async fn start_trace_once(&self, trace: &NewTrace) -> Result<TraceInfo> {
        let dialect = self.dialect();
        let mut columns = vec![
            "request_id",
            "experiment_id",
            "timestamp_ms",
            "execution_time_ms",
            "status",
            "client_request_id",
            "request_preview",
            "response_preview",
            "trace_name",
            "session_id",
        ];
        columns.extend(TOKEN_KEYS);
        columns.extend(COST_KEYS);
        // Set from the request: the info StartTraceV3 decides. Kept when the request has none: the
        // previews, the name and the analytics columns (spans may have set them).
        let replaced = [
            "experiment_id",
            "timestamp_ms",
            "execution_time_ms",
            "status",
            "client_request_id",
        ];
        let coalesced: Vec<&str> = columns[6..].to_vec();
        let mut sets: Vec<String> = Vec::new();
        for column in replaced {
            sets.push(match dialect {
                Dialect::MySql => format!("{column} = VALUES({column})"),
                Dialect::Sqlite | Dialect::Postgres => format!("{column} = excluded.{column}"),
            });
        }
        for column in &coalesced {
            sets.push(match dialect {
                Dialect::MySql => format!("{column} = COALESCE(VALUES({column}), {column})"),
                Dialect::Sqlite | Dialect::Postgres => {
                    format!("{column} = COALESCE(excluded.{column}, trace_info.{column})")
                }
            });
        }
        let head = format!(
            "INSERT INTO trace_info ({}) VALUES ({})",
            columns.join(", "),
            placeholders(columns.len())
        );
        let sql = match dialect {
            Dialect::MySql => format!("{head} ON DUPLICATE KEY UPDATE {}", sets.join(", ")),
            Dialect::Sqlite | Dialect::Postgres => {
                format!(
                    "{head} ON CONFLICT (request_id) DO UPDATE SET {}",
                    sets.join(", ")
                )
            }
        };
        let mut statement = query(sql)
            .bind(trace.trace_id.as_str())
            .bind(trace.experiment_id)
            .bind(trace.request_time)
            .bind(trace.execution_duration)
            .bind(trace.state.as_str())
            .bind(trace.client_request_id.as_deref())
            .bind(trace.request_preview.as_deref())
            .bind(trace.response_preview.as_deref())
            .bind(trace.trace_name.as_deref())
            .bind(trace.analytics.session_id.as_deref());
        for value in trace.analytics.tokens {
            statement = statement.bind(value);
        }
        for value in trace.analytics.costs {
            statement = statement.bind(value);
        }
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        transaction.execute(statement).await.map_err(db_error)?;
        upsert_tags(&mut transaction, tag_rows(&trace.trace_id, &trace.tags)).await?;
        let mut metadata = trace.metadata.clone();
        metadata.sort();
        upsert_metadata(
            &mut transaction,
            tag_rows(&trace.trace_id, &metadata),
            false,
        )
        .await?;
        transaction
            .execute(
                query("UPDATE spans SET experiment_id = ? WHERE trace_id = ?")
                    .bind(trace.experiment_id)
                    .bind(trace.trace_id.as_str()),
            )
            .await
            .map_err(db_error)?;
        transaction
            .execute(
                query(
                    "UPDATE assessments SET experiment_id = ?, trace_timestamp_ms = ? WHERE trace_id = ?",
                )
                .bind(trace.experiment_id)
                .bind(trace.request_time)
                .bind(trace.trace_id.as_str()),
            )
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        self.load_trace_infos(std::slice::from_ref(&trace.trace_id))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal(std::io::Error::other("started trace vanished")))
    }

    async fn log_spans_once(&self, batch: &LogSpans) -> Result<()> {
        let trace_ids: Vec<String> = batch
            .traces
            .iter()
            .map(|trace| trace.trace_id.clone())
            .collect();
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let before = existing_traces(&mut transaction, &trace_ids).await?;

        // Traces seen for the first time: created whole from what their spans imply.
        let created: Vec<&TraceSpans> = batch
            .traces
            .iter()
            .filter(|trace| !before.contains_key(&trace.trace_id))
            .collect();
        if !created.is_empty() {
            let rows: Vec<Vec<sea_query::Value>> = created
                .iter()
                .map(|trace| created_trace_row(batch, trace))
                .collect();
            upsert(
                &mut transaction,
                "trace_info",
                &CREATED_TRACE_COLUMNS,
                &["request_id"],
                &[],
                rows,
            )
            .await?;
            let root = batch.experiment_artifact_location.trim_end_matches('/');
            let rows = created
                .iter()
                .map(|trace| {
                    vec![
                        text(ARTIFACT_LOCATION_TAG),
                        text(&format!("{root}/traces/{}/artifacts", trace.trace_id)),
                        text(&trace.trace_id),
                    ]
                })
                .collect();
            upsert(
                &mut transaction,
                "trace_tags",
                &["\"key\"", "value", "request_id"],
                &["\"key\"", "request_id"],
                &[],
                rows,
            )
            .await?;
        }
        // A concurrent StartTraceV3 may have created one of them meanwhile: read what is there now.
        let created_ids: HashSet<&str> = created
            .iter()
            .map(|trace| trace.trace_id.as_str())
            .collect();
        let current = if created.is_empty() {
            before
        } else {
            existing_traces(&mut transaction, &trace_ids).await?
        };

        let mut span_rows: Vec<Vec<sea_query::Value>> = Vec::new();
        for trace in &batch.traces {
            let experiment_id = current
                .get(&trace.trace_id)
                .map_or(batch.experiment_id, |existing| existing.experiment_id);
            for span in &trace.spans {
                span_rows.push(vec![
                    text(&span.trace_id),
                    experiment_id.into(),
                    text(&span.span_id),
                    optional_text(span.parent_span_id.as_deref()),
                    text(&span.name),
                    optional_text(span.span_type.as_deref()),
                    text(&span.status),
                    span.start_time_unix_nano.into(),
                    span.end_time_unix_nano.into(),
                    text(&span.content),
                    span.input_cost.into(),
                    span.output_cost.into(),
                    span.total_cost.into(),
                    optional_text(span.model_name.as_deref()),
                    optional_text(span.model_provider.as_deref()),
                ]);
            }
        }
        upsert(
            &mut transaction,
            "spans",
            &SPAN_COLUMNS,
            &["trace_id", "span_id"],
            &SPAN_COLUMNS[1..],
            span_rows,
        )
        .await?;

        // Traces that existed before: merge what this batch implies, as MLflow's log_spans does.
        let merged: Vec<&TraceSpans> = batch
            .traces
            .iter()
            .filter(|trace| !created_ids.contains(trace.trace_id.as_str()))
            .collect();
        let finalized: HashSet<String> = if merged.is_empty() {
            HashSet::new()
        } else {
            let ids: Vec<String> = merged.iter().map(|trace| trace.trace_id.clone()).collect();
            let mut found = HashSet::new();
            for chunk in ids.chunks(IDS_PER_STATEMENT) {
                let sql = format!(
                    "SELECT request_id FROM trace_request_metadata WHERE \"key\" = ? AND request_id IN ({})",
                    placeholders(chunk.len())
                );
                for row in transaction
                    .fetch_all(
                        query(sql)
                            .bind(INFO_FINALIZED_METADATA)
                            .bind_each(chunk.iter().map(String::as_str)),
                    )
                    .await
                    .map_err(db_error)?
                {
                    found.insert(row.get::<String>("request_id")?);
                }
            }
            found
        };
        let mut user_rows = Vec::new();
        for trace in &merged {
            let Some(existing) = current.get(&trace.trace_id) else {
                continue;
            };
            if let Some(user) = &trace.user_id {
                user_rows.push(vec![text(USER_METADATA), text(user), text(&trace.trace_id)]);
            }
            let is_finalized = finalized.contains(&trace.trace_id);
            let mut sets: Vec<&str> = Vec::new();
            let mut values: Vec<sea_query::Value> = Vec::new();
            let mut timestamp = existing.timestamp_ms;
            if !is_finalized {
                timestamp = existing.timestamp_ms.min(trace.min_start_ms);
                if timestamp != existing.timestamp_ms {
                    sets.push("timestamp_ms = ?");
                    values.push(timestamp.into());
                }
                if let Some(max_end) = trace.max_end_ms {
                    let old_end = existing.timestamp_ms + existing.execution_time_ms.unwrap_or(0);
                    let duration = old_end.max(max_end) - timestamp;
                    if existing.execution_time_ms != Some(duration) {
                        sets.push("execution_time_ms = ?");
                        values.push(duration.into());
                    }
                }
            }
            if let (Some(state), true) = (
                &trace.root_state,
                matches!(
                    existing.status.as_str(),
                    "IN_PROGRESS" | "STATE_UNSPECIFIED"
                ),
            ) {
                sets.push("status = ?");
                values.push(text(state));
            }
            if let (None, Some(preview)) = (&existing.request_preview, &trace.request_preview) {
                sets.push("request_preview = ?");
                values.push(text(preview));
            }
            if let (None, Some(preview)) = (&existing.response_preview, &trace.response_preview) {
                sets.push("response_preview = ?");
                values.push(text(preview));
            }
            if let Some(name) = &trace.trace_name {
                sets.push("trace_name = ?");
                values.push(text(name));
            }
            if let (None, Some(session)) = (&existing.analytics.session_id, &trace.session_id) {
                sets.push("session_id = ?");
                values.push(text(session));
            }
            let authoritative_tokens = is_finalized && existing.analytics.has_tokens();
            let authoritative_costs = is_finalized && existing.analytics.has_costs();
            let recompute_tokens = trace.has_usage() && !authoritative_tokens;
            let recompute_costs = trace.has_cost() && !authoritative_costs;
            if recompute_tokens || recompute_costs {
                // Over every stored span of the trace (this batch included): a rollup parent and its
                // children may arrive in different batches.
                let rows = transaction
                    .fetch_all(
                        query(
                            "SELECT span_id, parent_span_id, content FROM spans WHERE trace_id = ?",
                        )
                        .bind(trace.trace_id.as_str()),
                    )
                    .await
                    .map_err(db_error)?;
                let mut usage_nodes = Vec::with_capacity(rows.len());
                let mut cost_nodes = Vec::with_capacity(rows.len());
                for row in rows {
                    let span_id: String = row.get("span_id")?;
                    let parent: Option<String> = row.get("parent_span_id")?;
                    let content: String = row.get("content")?;
                    let (usage, cost) =
                        aggregation_nodes_of_content(&span_id, parent.as_deref(), &content);
                    usage_nodes.push(usage);
                    cost_nodes.push(cost);
                }
                if recompute_tokens {
                    if let Some(tokens) = token_columns(&usage_nodes) {
                        for (column, value) in TOKEN_SETS.iter().zip(tokens) {
                            if let Some(value) = value {
                                sets.push(column);
                                values.push(value.into());
                            }
                        }
                    }
                }
                if recompute_costs {
                    if let Some(costs) = cost_columns(&cost_nodes) {
                        for (column, value) in COST_SETS.iter().zip(costs) {
                            if let Some(value) = value {
                                sets.push(column);
                                values.push(value.into());
                            }
                        }
                    }
                }
            }
            if !sets.is_empty() {
                let sql = format!(
                    "UPDATE trace_info SET {} WHERE request_id = ?",
                    sets.join(", ")
                );
                transaction
                    .execute(query(sql).bind_each(values).bind(trace.trace_id.as_str()))
                    .await
                    .map_err(db_error)?;
            }
            if timestamp != existing.timestamp_ms {
                transaction
                    .execute(
                        query("UPDATE assessments SET trace_timestamp_ms = ? WHERE trace_id = ?")
                            .bind(timestamp)
                            .bind(trace.trace_id.as_str()),
                    )
                    .await
                    .map_err(db_error)?;
            }
        }
        if !user_rows.is_empty() {
            upsert_metadata(&mut transaction, user_rows, true).await?;
        }

        // Every trace of the batch has its spans here; resource attributes and root-span trace tags.
        let mut tag_rows_all = Vec::new();
        for trace in &batch.traces {
            let mut tags: Vec<(String, String)> = trace.tags.clone();
            tags.retain(|(key, _)| key != SPANS_LOCATION_TAG);
            tags.push((SPANS_LOCATION_TAG.to_owned(), TRACKING_STORE.to_owned()));
            tag_rows_all.extend(tag_rows(&trace.trace_id, &tags));
        }
        upsert_tags(&mut transaction, tag_rows_all).await?;
        transaction.commit().await.map_err(db_error)
    }
}

#[async_trait]
impl TraceStore for SqlStore {
    async fn start_trace(&self, trace: NewTrace) -> Result<TraceInfo> {
        retry_deadlocks(|| self.start_trace_once(&trace)).await
    }

    async fn log_spans(&self, batch: LogSpans) -> Result<()> {
        retry_deadlocks(|| self.log_spans_once(&batch)).await
    }

    async fn trace_infos(&self, trace_ids: &[String]) -> Result<Vec<TraceInfo>> {
        self.load_trace_infos(trace_ids).await
    }

    async fn trace_spans(&self, trace_ids: &[String]) -> Result<Vec<StoredSpan>> {
        let mut spans = Vec::new();
        for chunk in trace_ids.chunks(IDS_PER_STATEMENT) {
            let sql = format!(
                "SELECT trace_id, parent_span_id, start_time_unix_nano, content FROM spans \
                 WHERE trace_id IN ({})",
                placeholders(chunk.len())
            );
            for row in self
                .pools
                .fetch_all(ids_query(sql, chunk))
                .await
                .map_err(db_error)?
            {
                let content: String = row.get("content")?;
                if content.is_empty() {
                    continue;
                }
                spans.push(StoredSpan {
                    trace_id: row.get("trace_id")?,
                    parent_span_id: row.get("parent_span_id")?,
                    start_time_unix_nano: row.get("start_time_unix_nano")?,
                    content,
                });
            }
        }
        Ok(spans)
    }

    async fn search_traces(&self, trace_query: TraceQuery) -> Result<TracePage> {
        let dialect = self.dialect();
        let statement = trace_search_statement(&trace_query, dialect)?;
        let rows = self
            .pools
            .fetch_all(Query::built(&statement, dialect))
            .await
            .map_err(db_error)?;
        let ids = rows
            .iter()
            .map(|row| row.get::<String>("request_id"))
            .collect::<Result<Vec<String>>>()?;
        let has_more = ids.len() > trace_query.max_results;
        let page: Vec<String> = ids.into_iter().take(trace_query.max_results).collect();
        Ok(TracePage {
            traces: self.load_trace_infos(&page).await?,
            has_more,
        })
    }

    async fn set_trace_tag(&self, trace_id: &str, key: &str, value: &str) -> Result<bool> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        if key == TRACE_NAME_TAG {
            let updated = transaction
                .execute(
                    query("UPDATE trace_info SET trace_name = ? WHERE request_id = ?")
                        .bind(value)
                        .bind(trace_id),
                )
                .await
                .map_err(db_error)?;
            transaction.commit().await.map_err(db_error)?;
            return Ok(updated.rows_affected > 0);
        }
        let exists = transaction
            .fetch_optional(
                query("SELECT request_id FROM trace_info WHERE request_id = ?").bind(trace_id),
            )
            .await
            .map_err(db_error)?
            .is_some();
        if !exists {
            return Ok(false);
        }
        upsert_tags(
            &mut transaction,
            tag_rows(trace_id, &[(key.to_owned(), value.to_owned())]),
        )
        .await?;
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn delete_trace_tag(&self, trace_id: &str, key: &str) -> Result<Option<bool>> {
        let row = self
            .pools
            .fetch_optional(
                query("SELECT trace_name FROM trace_info WHERE request_id = ?").bind(trace_id),
            )
            .await
            .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        if key == TRACE_NAME_TAG {
            if row.get::<Option<String>>("trace_name")?.is_none() {
                return Ok(Some(false));
            }
            self.pools
                .execute(
                    query("UPDATE trace_info SET trace_name = NULL WHERE request_id = ?")
                        .bind(trace_id),
                )
                .await
                .map_err(db_error)?;
            return Ok(Some(true));
        }
        let deleted = self
            .pools
            .execute(
                query("DELETE FROM trace_tags WHERE request_id = ? AND \"key\" = ?")
                    .bind(trace_id)
                    .bind(key),
            )
            .await
            .map_err(db_error)?;
        Ok(Some(deleted.rows_affected > 0))
    }

    async fn delete_traces(&self, experiment_id: i64, deletion: TraceDeletion) -> Result<i64> {
        let dialect = self.dialect();
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let lock = for_update(dialect);
        let ids: Vec<String> = match deletion {
            TraceDeletion::Ids(ids) => {
                let mut selected = Vec::new();
                for chunk in ids.chunks(IDS_PER_STATEMENT) {
                    let sql = format!(
                        "SELECT request_id FROM trace_info WHERE experiment_id = ? AND request_id IN ({}) \
                         ORDER BY timestamp_ms, request_id{lock}",
                        placeholders(chunk.len())
                    );
                    for row in transaction
                        .fetch_all(
                            query(sql)
                                .bind(experiment_id)
                                .bind_each(chunk.iter().map(String::as_str)),
                        )
                        .await
                        .map_err(db_error)?
                    {
                        selected.push(row.get::<String>("request_id")?);
                    }
                }
                selected
            }
            TraceDeletion::OlderThan {
                max_timestamp_millis,
                max_traces,
            } => {
                let limit = if max_traces.is_some() { " LIMIT ?" } else { "" };
                let sql = format!(
                    "SELECT request_id FROM trace_info WHERE experiment_id = ? AND timestamp_ms <= ? \
                     ORDER BY timestamp_ms, request_id{limit}{lock}"
                );
                let mut statement = query(sql).bind(experiment_id).bind(max_timestamp_millis);
                if let Some(max_traces) = max_traces {
                    statement = statement.bind(max_traces);
                }
                transaction
                    .fetch_all(statement)
                    .await
                    .map_err(db_error)?
                    .iter()
                    .map(|row| row.get::<String>("request_id"))
                    .collect::<Result<Vec<_>>>()?
            }
        };
        delete_trace_rows(&mut transaction, &ids).await?;
        transaction.commit().await.map_err(db_error)?;
        Ok(i64::try_from(ids.len()).unwrap_or(i64::MAX))
    }

    async fn link_traces(
        &self,
        trace_ids: &[String],
        destination_type: &str,
        destination_ids: &[String],
        now: i64,
    ) -> Result<()> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let mut existing: Vec<String> = Vec::new();
        for chunk in trace_ids.chunks(IDS_PER_STATEMENT) {
            let sql = format!(
                "SELECT request_id FROM trace_info WHERE request_id IN ({})",
                placeholders(chunk.len())
            );
            for row in transaction
                .fetch_all(ids_query(sql, chunk))
                .await
                .map_err(db_error)?
            {
                existing.push(row.get("request_id")?);
            }
        }
        let mut rows = Vec::new();
        for trace_id in trace_ids.iter().filter(|id| existing.contains(id)) {
            for destination_id in destination_ids {
                rows.push(vec![
                    text(&new_association_id()),
                    text("trace"),
                    text(trace_id),
                    text(destination_type),
                    text(destination_id),
                    now.into(),
                ]);
            }
        }
        upsert(
            &mut transaction,
            "entity_associations",
            &[
                "association_id",
                "source_type",
                "source_id",
                "destination_type",
                "destination_id",
                "created_time",
            ],
            &[
                "source_type",
                "source_id",
                "destination_type",
                "destination_id",
            ],
            &[],
            rows,
        )
        .await?;
        transaction.commit().await.map_err(db_error)
    }

    async fn create_assessment(&self, assessment: &AssessmentRecord) -> Result<AssessmentWrite> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let lock = for_update(self.dialect());
        let Some(trace) = transaction
            .fetch_optional(
                query(format!(
                    "SELECT experiment_id, timestamp_ms FROM trace_info WHERE request_id = ?{lock}"
                ))
                .bind(assessment.trace_id.as_str()),
            )
            .await
            .map_err(db_error)?
        else {
            return Ok(AssessmentWrite::TraceNotFound);
        };
        let experiment_id: i64 = trace.get("experiment_id")?;
        let trace_timestamp: i64 = trace.get("timestamp_ms")?;
        if let Some(overridden) = &assessment.overrides {
            let updated = transaction
                .execute(
                    query(
                        "UPDATE assessments SET valid = ? WHERE trace_id = ? AND assessment_id = ?",
                    )
                    .bind(false)
                    .bind(assessment.trace_id.as_str())
                    .bind(overridden.as_str()),
                )
                .await
                .map_err(db_error)?;
            if updated.rows_affected == 0 {
                return Ok(AssessmentWrite::OverriddenNotFound);
            }
        }
        transaction
            .execute(
                query(format!(
                    "INSERT INTO assessments ({ASSESSMENT_COLUMNS}, experiment_id, trace_timestamp_ms) \
                     VALUES ({})",
                    placeholders(20)
                ))
                .bind(assessment.assessment_id.as_str())
                .bind(assessment.trace_id.as_str())
                .bind(assessment.name.as_str())
                .bind(assessment.assessment_type.as_str())
                .bind(assessment.value.as_str())
                .bind(assessment.error.as_deref())
                .bind(assessment.created_timestamp)
                .bind(assessment.last_updated_timestamp)
                .bind(assessment.source_type.as_str())
                .bind(assessment.source_id.as_deref())
                .bind(assessment.run_id.as_deref())
                .bind(assessment.span_id.as_deref())
                .bind(assessment.rationale.as_deref())
                .bind(assessment.overrides.as_deref())
                .bind(assessment.valid)
                .bind(assessment.metadata.as_deref())
                .bind(assessment.aggregate_value)
                .bind(assessment.is_numeric_value)
                .bind(experiment_id)
                .bind(trace_timestamp),
            )
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        Ok(AssessmentWrite::Done)
    }

    async fn get_assessment(
        &self,
        trace_id: &str,
        assessment_id: &str,
    ) -> Result<Option<AssessmentRecord>> {
        self.pools
            .fetch_optional(
                query(format!(
                    "SELECT {ASSESSMENT_COLUMNS} FROM assessments WHERE trace_id = ? AND assessment_id = ?"
                ))
                .bind(trace_id)
                .bind(assessment_id),
            )
            .await
            .map_err(db_error)?
            .map(|row| assessment_from_row(&row))
            .transpose()
    }

    async fn update_assessment(&self, assessment: &AssessmentRecord) -> Result<()> {
        self.pools
            .execute(
                query(
                    "UPDATE assessments SET name = ?, value = ?, error = ?, last_updated_timestamp = ?, \
                     rationale = ?, assessment_metadata = ?, aggregate_value = ?, is_numeric_value = ? \
                     WHERE trace_id = ? AND assessment_id = ?",
                )
                .bind(assessment.name.as_str())
                .bind(assessment.value.as_str())
                .bind(assessment.error.as_deref())
                .bind(assessment.last_updated_timestamp)
                .bind(assessment.rationale.as_deref())
                .bind(assessment.metadata.as_deref())
                .bind(assessment.aggregate_value)
                .bind(assessment.is_numeric_value)
                .bind(assessment.trace_id.as_str())
                .bind(assessment.assessment_id.as_str()),
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn delete_assessment(&self, trace_id: &str, assessment_id: &str) -> Result<()> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let Some(row) = transaction
            .fetch_optional(
                query("SELECT overrides FROM assessments WHERE trace_id = ? AND assessment_id = ?")
                    .bind(trace_id)
                    .bind(assessment_id),
            )
            .await
            .map_err(db_error)?
        else {
            return Ok(());
        };
        if let Some(overridden) = row.get::<Option<String>>("overrides")? {
            transaction
                .execute(
                    query("UPDATE assessments SET valid = ? WHERE assessment_id = ?")
                        .bind(true)
                        .bind(overridden.as_str()),
                )
                .await
                .map_err(db_error)?;
        }
        transaction
            .execute(
                query("DELETE FROM assessments WHERE trace_id = ? AND assessment_id = ?")
                    .bind(trace_id)
                    .bind(assessment_id),
            )
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)
    }

    async fn trace_exists(&self, trace_id: &str) -> Result<bool> {
        Ok(self
            .pools
            .fetch_optional(
                query("SELECT request_id FROM trace_info WHERE request_id = ?").bind(trace_id),
            )
            .await
            .map_err(db_error)?
            .is_some())
    }
}

const TOKEN_SETS: [&str; 6] = [
    "input_tokens = ?",
    "output_tokens = ?",
    "total_tokens = ?",
    "cache_read_input_tokens = ?",
    "cache_creation_input_tokens = ?",
    "cache_creation_input_tokens_above_1hr = ?",
];
const COST_SETS: [&str; 3] = ["input_cost = ?", "output_cost = ?", "total_cost = ?"];
