//! Logged model search compiled to one `SELECT logged_models.model_id` on MLflow's tables.
//!
//! Like `search.rs`, the statement is a sea-query builder, so it renders for SQLite, PostgreSQL and
//! MySQL and every value from the request is bound. It selects one page of ids; the caller loads the
//! models by id and keeps this order.
//!
//! # Semantics (those of MLflow 3.17's `SqlAlchemyStore.search_logged_models`)
//!
//! - Only models of the requested experiments whose `lifecycle_stage` is not `deleted`.
//! - An attribute comparison compares the column as the database does: `experiment_id` and `status` are
//!   integer columns, so `status = '2'` matches READY models.
//! - A metric comparison matches when any `logged_model_metrics` row of the model with that key matches,
//!   and, when the search names `datasets`, belongs to one of them. A dataset without a digest matches only
//!   rows without a digest (MLflow's behaviour, see [`DatasetFilter`]).
//! - With `datasets` and no metric comparison, a model must have some metric row on one of the datasets.
//! - A param or tag comparison needs the model to have the key.
//! - `LIKE` is case-sensitive and `ILIKE` case-insensitive for ASCII letters, as MLflow on SQLite (it sets
//!   `PRAGMA case_sensitive_like`); on SQLite a `LIKE` is compiled to the equivalent `GLOB`.
//! - Ordering: each `order_by` item with missing values last in both directions. A metric orders by the
//!   model's latest row of that key (greatest timestamp, then step, then the first run id), among the rows of
//!   the item's dataset name and digest when given. Then `creation_timestamp_ms DESC` unless ordered
//!   already, then `model_id ASC` unless ordered already.

use crate::search::{string_comparison, Dialect};
use ferroflow_core::logged_model_filter::{
    Attribute, Comparator, Comparison, Entity, OrderBy, OrderField, Value,
};
use ferroflow_core::logged_models::{DatasetFilter, LoggedModelQuery};
use sea_query::{Alias, Cond, Expr, Iden, Order, Query, SelectStatement, SimpleExpr};

/// The `SELECT logged_models.model_id` of one page of a search on SQLite; see
/// [`logged_model_search_statement_for`].
pub fn logged_model_search_statement(query: &LoggedModelQuery) -> SelectStatement {
    logged_model_search_statement_for(query, Dialect::Sqlite)
}

/// The `SELECT logged_models.model_id` of one page of a logged model search, asking for
/// `max_results + 1` rows: the caller returns the first `max_results` and knows from the extra row
/// that another page follows.
pub fn logged_model_search_statement_for(
    query: &LoggedModelQuery,
    dialect: Dialect,
) -> SelectStatement {
    let mut statement = Query::select();
    statement
        .column((LoggedModels::Table, LoggedModels::ModelId))
        .from(LoggedModels::Table)
        .and_where(
            Expr::col((LoggedModels::Table, LoggedModels::ExperimentId))
                .is_in(query.experiment_ids.iter().copied()),
        )
        .and_where(Expr::col((LoggedModels::Table, LoggedModels::LifecycleStage)).ne("deleted"));
    let mut has_metric_filter = false;
    for comparison in &query.filter {
        if matches!(comparison.entity, Entity::Metric(_)) {
            has_metric_filter = true;
        }
        statement.and_where(condition(comparison, &query.datasets, dialect));
    }
    if !query.datasets.is_empty() && !has_metric_filter {
        let mut subquery = Query::select();
        subquery
            .column((LoggedModelMetrics::Table, LoggedModelMetrics::ModelId))
            .from(LoggedModelMetrics::Table)
            .cond_where(datasets_condition(&query.datasets));
        statement.and_where(model_id_in(subquery));
    }
    order(&mut statement, &query.order_by);
    statement
        .limit(page_limit(query.max_results))
        .offset(bindable(query.offset));
    statement
}

// ---------------------------------------------------------------------------------------------------------
// Tables and columns (MLflow's names).

#[derive(Iden, Clone, Copy)]
enum LoggedModels {
    Table,
    ModelId,
    ExperimentId,
    Name,
    ArtifactLocation,
    CreationTimestampMs,
    LastUpdatedTimestampMs,
    Status,
    LifecycleStage,
    ModelType,
    SourceRunId,
    StatusMessage,
}

#[derive(Iden, Clone, Copy)]
enum LoggedModelMetrics {
    Table,
    ModelId,
    MetricName,
    MetricTimestampMs,
    MetricStep,
    MetricValue,
    RunId,
    DatasetName,
    DatasetDigest,
}

#[derive(Iden, Clone, Copy)]
enum LoggedModelParams {
    Table,
    ModelId,
    ParamKey,
    ParamValue,
}

#[derive(Iden, Clone, Copy)]
enum LoggedModelTags {
    Table,
    ModelId,
    TagKey,
    TagValue,
}

fn attribute_column(attribute: Attribute) -> LoggedModels {
    match attribute {
        Attribute::ModelId => LoggedModels::ModelId,
        Attribute::ExperimentId => LoggedModels::ExperimentId,
        Attribute::Name => LoggedModels::Name,
        Attribute::ArtifactLocation => LoggedModels::ArtifactLocation,
        Attribute::CreationTimestampMs => LoggedModels::CreationTimestampMs,
        Attribute::LastUpdatedTimestampMs => LoggedModels::LastUpdatedTimestampMs,
        Attribute::Status => LoggedModels::Status,
        Attribute::LifecycleStage => LoggedModels::LifecycleStage,
        Attribute::ModelType => LoggedModels::ModelType,
        Attribute::SourceRunId => LoggedModels::SourceRunId,
        Attribute::StatusMessage => LoggedModels::StatusMessage,
    }
}

/// Whether the attribute's column is an integer in MLflow's schema.
fn is_integer(attribute: Attribute) -> bool {
    match attribute {
        Attribute::ExperimentId
        | Attribute::CreationTimestampMs
        | Attribute::LastUpdatedTimestampMs
        | Attribute::Status => true,
        Attribute::ModelId
        | Attribute::Name
        | Attribute::ArtifactLocation
        | Attribute::LifecycleStage
        | Attribute::ModelType
        | Attribute::SourceRunId
        | Attribute::StatusMessage => false,
    }
}

// ---------------------------------------------------------------------------------------------------------
// Helpers.

/// sqlx binds integers as `i64`, so limits and offsets past `i64::MAX` are clamped.
fn bindable(count: usize) -> u64 {
    u64::try_from(count)
        .unwrap_or(u64::MAX)
        .min(i64::MAX as u64)
}

fn page_limit(max_results: usize) -> u64 {
    bindable(max_results).saturating_add(1).min(i64::MAX as u64)
}

/// `logged_models.model_id IN (<subquery>)`.
fn model_id_in(subquery: SelectStatement) -> SimpleExpr {
    Expr::col((LoggedModels::Table, LoggedModels::ModelId)).in_subquery(subquery)
}

/// `column <op> ?` for a numeric comparison. The number is bound as a double, as MLflow binds it.
fn numeric_condition(column: SimpleExpr, comparator: Comparator, number: f64) -> SimpleExpr {
    let column = Expr::expr(column);
    let value = sea_query::Value::Double(Some(number));
    match comparator {
        Comparator::Eq => column.eq(value),
        Comparator::NotEq => column.ne(value),
        Comparator::Lt => column.lt(value),
        Comparator::Le => column.lte(value),
        Comparator::Gt => column.gt(value),
        Comparator::Ge => column.gte(value),
        // The parser allows only the six above on numbers; a mismatch matches nothing.
        Comparator::Like
        | Comparator::ILike
        | Comparator::In
        | Comparator::NotIn
        | Comparator::IsNull
        | Comparator::IsNotNull => Expr::cust("1 = 0"),
    }
}

/// `column <op> ?` for a string comparison, case-sensitive except `ILIKE`.
fn string_condition(
    column: SimpleExpr,
    comparator: Comparator,
    value: &Value,
    dialect: Dialect,
) -> SimpleExpr {
    // The parser pairs strings with these operators and lists with IN; a mismatch matches nothing.
    string_comparison(column, comparator, value, dialect).unwrap_or_else(|| Expr::cust("1 = 0"))
}

/// `(name = ? AND digest = ?) OR ...` over `logged_model_metrics`, one term per dataset.
fn datasets_condition(datasets: &[DatasetFilter]) -> Cond {
    let mut any = Cond::any();
    for dataset in datasets {
        let name = Expr::col((LoggedModelMetrics::Table, LoggedModelMetrics::DatasetName))
            .eq(dataset.name.as_str());
        let digest_column =
            Expr::col((LoggedModelMetrics::Table, LoggedModelMetrics::DatasetDigest));
        let digest = match &dataset.digest {
            Some(digest) => digest_column.eq(digest.as_str()),
            None => digest_column.is_null(),
        };
        any = any.add(name.and(digest));
    }
    any
}

fn condition(comparison: &Comparison, datasets: &[DatasetFilter], dialect: Dialect) -> SimpleExpr {
    match (&comparison.entity, &comparison.value) {
        (Entity::Attribute(attribute), Value::Number(number)) => numeric_condition(
            Expr::col((LoggedModels::Table, attribute_column(*attribute))).into(),
            comparison.comparator,
            *number,
        ),
        (Entity::Attribute(attribute), value) => {
            let column: SimpleExpr =
                Expr::col((LoggedModels::Table, attribute_column(*attribute))).into();
            // SQLite compares an integer column with text by converting, MySQL's BINARY makes both
            // strings; PostgreSQL has no integer = text operator, so the column is compared as text.
            let column = match (dialect, is_integer(*attribute)) {
                (Dialect::Postgres, true) => column.cast_as(Alias::new("TEXT")),
                _ => column,
            };
            string_condition(column, comparison.comparator, value, dialect)
        }
        (Entity::Metric(key), value) => {
            let compared = match value {
                Value::Number(number) => numeric_condition(
                    Expr::col((LoggedModelMetrics::Table, LoggedModelMetrics::MetricValue)).into(),
                    comparison.comparator,
                    *number,
                ),
                Value::String(_) | Value::List(_) | Value::Null => Expr::cust("1 = 0"),
            };
            let mut subquery = Query::select();
            subquery
                .column((LoggedModelMetrics::Table, LoggedModelMetrics::ModelId))
                .from(LoggedModelMetrics::Table)
                .and_where(
                    Expr::col((LoggedModelMetrics::Table, LoggedModelMetrics::MetricName))
                        .eq(key.as_str()),
                )
                .and_where(compared);
            if !datasets.is_empty() {
                subquery.cond_where(datasets_condition(datasets));
            }
            model_id_in(subquery)
        }
        (Entity::Param(key), value) => {
            let mut subquery = Query::select();
            subquery
                .column((LoggedModelParams::Table, LoggedModelParams::ModelId))
                .from(LoggedModelParams::Table)
                .and_where(
                    Expr::col((LoggedModelParams::Table, LoggedModelParams::ParamKey))
                        .eq(key.as_str()),
                )
                .and_where(string_condition(
                    Expr::col((LoggedModelParams::Table, LoggedModelParams::ParamValue)).into(),
                    comparison.comparator,
                    value,
                    dialect,
                ));
            model_id_in(subquery)
        }
        (Entity::Tag(key), value) => {
            let mut subquery = Query::select();
            subquery
                .column((LoggedModelTags::Table, LoggedModelTags::ModelId))
                .from(LoggedModelTags::Table)
                .and_where(
                    Expr::col((LoggedModelTags::Table, LoggedModelTags::TagKey)).eq(key.as_str()),
                )
                .and_where(string_condition(
                    Expr::col((LoggedModelTags::Table, LoggedModelTags::TagValue)).into(),
                    comparison.comparator,
                    value,
                    dialect,
                ));
            model_id_in(subquery)
        }
    }
}

/// `CASE WHEN <value> IS NULL THEN 1 ELSE 0 END`: sorts missing values last in both directions.
fn null_last(value: SimpleExpr) -> SimpleExpr {
    Expr::case(Expr::expr(value).is_null(), Expr::cust("1"))
        .finally(Expr::cust("0"))
        .into()
}

/// `(SELECT metric_value FROM logged_model_metrics WHERE model_id = logged_models.model_id AND
/// metric_name = ? ... ORDER BY metric_timestamp_ms DESC, metric_step DESC, run_id ASC LIMIT 1)`.
fn latest_metric_value(
    key: &str,
    dataset_name: Option<&str>,
    dataset_digest: Option<&str>,
) -> SimpleExpr {
    let mut subquery = Query::select();
    subquery
        .column((LoggedModelMetrics::Table, LoggedModelMetrics::MetricValue))
        .from(LoggedModelMetrics::Table)
        .and_where(
            Expr::col((LoggedModelMetrics::Table, LoggedModelMetrics::ModelId))
                .equals((LoggedModels::Table, LoggedModels::ModelId)),
        )
        .and_where(Expr::col((LoggedModelMetrics::Table, LoggedModelMetrics::MetricName)).eq(key))
        .and_where_option(dataset_name.map(|name| {
            Expr::col((LoggedModelMetrics::Table, LoggedModelMetrics::DatasetName)).eq(name)
        }))
        .and_where_option(dataset_digest.map(|digest| {
            Expr::col((LoggedModelMetrics::Table, LoggedModelMetrics::DatasetDigest)).eq(digest)
        }))
        .order_by(
            (
                LoggedModelMetrics::Table,
                LoggedModelMetrics::MetricTimestampMs,
            ),
            Order::Desc,
        )
        .order_by(
            (LoggedModelMetrics::Table, LoggedModelMetrics::MetricStep),
            Order::Desc,
        )
        .order_by(
            (LoggedModelMetrics::Table, LoggedModelMetrics::RunId),
            Order::Asc,
        )
        .limit(1);
    SimpleExpr::SubQuery(None, Box::new(subquery.into_sub_query_statement()))
}

fn order(statement: &mut SelectStatement, order_by: &[OrderBy]) {
    let mut has_creation_timestamp = false;
    let mut has_model_id = false;
    for clause in order_by {
        let direction = if clause.ascending {
            Order::Asc
        } else {
            Order::Desc
        };
        let value: SimpleExpr = match &clause.field {
            OrderField::Attribute(attribute) => {
                has_creation_timestamp |= *attribute == Attribute::CreationTimestampMs;
                has_model_id |= *attribute == Attribute::ModelId;
                Expr::col((LoggedModels::Table, attribute_column(*attribute))).into()
            }
            OrderField::Metric {
                key,
                dataset_name,
                dataset_digest,
            } => latest_metric_value(key, dataset_name.as_deref(), dataset_digest.as_deref()),
        };
        statement
            .order_by_expr(null_last(value.clone()), Order::Asc)
            .order_by_expr(value, direction);
    }
    if !has_creation_timestamp {
        statement.order_by(
            (LoggedModels::Table, LoggedModels::CreationTimestampMs),
            Order::Desc,
        );
    }
    if !has_model_id {
        statement.order_by((LoggedModels::Table, LoggedModels::ModelId), Order::Asc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflow_core::logged_model_filter::{parse_filter, parse_order_by};
    use sea_query::SqliteQueryBuilder;

    fn query(
        filter: &str,
        datasets: Vec<DatasetFilter>,
        order_by: Vec<OrderBy>,
    ) -> LoggedModelQuery {
        LoggedModelQuery {
            experiment_ids: vec![1, 2],
            filter: parse_filter(filter).unwrap(),
            datasets,
            order_by,
            max_results: 10,
            offset: 20,
        }
    }

    #[test]
    fn values_are_bound_never_inlined() {
        let statement = logged_model_search_statement(&query(
            "name = 'secret-1' AND metrics.acc > 0.5 AND params.p LIKE 'secret-2%' AND tags.t IN \
             ('secret-3') AND model_type ILIKE 'secret-4'",
            vec![DatasetFilter {
                name: "secret-5".into(),
                digest: Some("secret-6".into()),
            }],
            vec![parse_order_by("metrics.secret-7", false, Some("secret-8"), None).unwrap()],
        ));
        let (sql, values) =
            sea_query_binder::SqlxBinder::build_sqlx(&statement, SqliteQueryBuilder);
        assert!(!sql.contains("secret"), "{sql}");
        assert!(sql.contains(" GLOB "), "{sql}");
        assert!(sql.contains("LIMIT ? OFFSET ?"), "{sql}");
        assert_eq!(values.0 .0.len(), 21, "{sql}");
    }

    #[test]
    fn default_order_and_deleted_models_excluded() {
        let sql =
            logged_model_search_statement(&query("", vec![], vec![])).to_string(SqliteQueryBuilder);
        assert_eq!(
            sql,
            "SELECT \"logged_models\".\"model_id\" FROM \"logged_models\" WHERE \
             \"logged_models\".\"experiment_id\" IN (1, 2) AND \"logged_models\".\"lifecycle_stage\" <> \
             'deleted' ORDER BY \"logged_models\".\"creation_timestamp_ms\" DESC, \
             \"logged_models\".\"model_id\" ASC LIMIT 11 OFFSET 20"
        );
    }

    #[test]
    fn explicit_order_replaces_the_default_tie_breaks() {
        let sql = logged_model_search_statement(&query(
            "",
            vec![],
            vec![
                parse_order_by("model_id", false, None, None).unwrap(),
                parse_order_by("creation_time", true, None, None).unwrap(),
            ],
        ))
        .to_string(SqliteQueryBuilder);
        assert!(
            sql.ends_with(
                "ORDER BY (CASE WHEN (\"logged_models\".\"model_id\" IS NULL) THEN 1 ELSE 0 END) ASC, \
                 \"logged_models\".\"model_id\" DESC, (CASE WHEN (\"logged_models\".\"creation_timestamp_ms\" \
                 IS NULL) THEN 1 ELSE 0 END) ASC, \"logged_models\".\"creation_timestamp_ms\" ASC LIMIT 11 \
                 OFFSET 20"
            ),
            "{sql}"
        );
    }
}
