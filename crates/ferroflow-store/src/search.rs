//! Run and experiment search compiled to one `SELECT` of ids on MLflow's own tables.
//!
//! The statements are sea-query builders, so the same code renders for SQLite, PostgreSQL and MySQL; every
//! value from the request is bound, never written into the SQL text. They select only the id column, one
//! page of it: the caller loads the full rows by id and keeps this order.
//!
//! # Semantics (those of MLflow 3.17's `SqlAlchemyStore`)
//!
//! - A metric filter compares the run's latest value (`latest_metrics`). A NaN metric is stored as value 0
//!   with `is_nan` set: it satisfies `!=` against any number and no other comparison.
//! - A param, tag or metric comparison needs the run to have the key: `params.a != 'x'` skips runs without
//!   `a`. `IS NULL` means the run lacks the key, `IS NOT NULL` that it has it.
//! - `run_name` in a filter is the `mlflow.runName` tag (MLflow's rule, for runs from before the `name`
//!   column); in `order_by` it is the `runs.name` column.
//! - Attribute comparisons follow SQL: a NULL `end_time` matches no comparison, `!=` included.
//! - `LIKE` is case-sensitive and `ILIKE` case-insensitive for ASCII letters, as MLflow on SQLite (it sets
//!   `PRAGMA case_sensitive_like`). `%` and `_` are the only wildcards and there is no escape character.
//!   Without the pragma, SQLite's `LIKE` ignores case, so on SQLite a `LIKE` is compiled to the equivalent
//!   `GLOB`.
//! - Dataset filters match when any dataset input of the run matches (`inputs` joined to `datasets`, and to
//!   `input_tags` named `mlflow.data.context` for `context`).
//! - Runs order by each `order_by` clause, runs without the key (or a NULL attribute) last in both
//!   directions and NaN metrics just before them, then `start_time DESC` unless `start_time` was ordered
//!   already, then `run_uuid`. Ordering by the same identifier twice is an error.
//! - Experiments order by `creation_time DESC, experiment_id ASC` by default. With an explicit `order_by`
//!   the tie-break is `experiment_id DESC` (MLflow's choice) unless `experiment_id` is ordered already; NULL
//!   attributes sort as the database sorts them (first when ascending on SQLite).

use ferroflow_core::filter::{Comparator, Comparison, KeyType, OrderBy, Value};
use ferroflow_core::model::{ExperimentQuery, RunQuery};
use ferroflow_core::{Error, Result};
use sea_query::{
    Alias, BinOper, Cond, Expr, Func, Iden, JoinType, Order, Query, SelectStatement, SimpleExpr,
};

/// The SQL dialect a statement is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

/// The `SELECT runs.run_uuid` of one page of a run search on SQLite; see [`run_search_statement_for`].
pub fn run_search_statement(query: &RunQuery) -> Result<SelectStatement> {
    run_search_statement_for(query, Dialect::Sqlite)
}

/// The `SELECT runs.run_uuid` of one page of a run search: the runs of `experiment_ids` in the stages of
/// `view_type` that satisfy every comparison of `filter`, in `order_by` order, from `offset`.
///
/// The statement asks for `max_results + 1` rows (`LIMIT max_results + 1`): the caller returns the first
/// `max_results` and makes a next-page token only if the extra row came back.
pub fn run_search_statement_for(query: &RunQuery, dialect: Dialect) -> Result<SelectStatement> {
    let experiment_ids = query
        .experiment_ids
        .iter()
        .map(|id| parse_experiment_id(id))
        .collect::<Result<Vec<i64>>>()?;
    let mut statement = Query::select();
    statement
        .column((Runs::Table, Runs::RunUuid))
        .from(Runs::Table)
        .and_where(Expr::col((Runs::Table, Runs::ExperimentId)).is_in(experiment_ids))
        .and_where(
            Expr::col((Runs::Table, Runs::LifecycleStage))
                .is_in(query.view_type.stages().iter().copied()),
        );
    for comparison in &query.filter {
        statement.and_where(run_condition(comparison, dialect)?);
    }
    order_runs(&mut statement, &query.order_by)?;
    statement
        .limit(page_limit(query.max_results))
        .offset(bindable(query.offset));
    Ok(statement)
}

/// The `SELECT experiments.experiment_id` of one page of an experiment search on SQLite; see
/// [`experiment_search_statement_for`].
pub fn experiment_search_statement(query: &ExperimentQuery) -> Result<SelectStatement> {
    experiment_search_statement_for(query, Dialect::Sqlite)
}

/// The `SELECT experiments.experiment_id` (an integer; the wire shows it as a string) of one page of an
/// experiment search: the experiments in the stages of `view_type` that satisfy every comparison of
/// `filter`, in `order_by` order, from `offset`.
///
/// The statement asks for `max_results + 1` rows (`LIMIT max_results + 1`): the caller returns the first
/// `max_results` and makes a next-page token only if the extra row came back.
pub fn experiment_search_statement_for(
    query: &ExperimentQuery,
    dialect: Dialect,
) -> Result<SelectStatement> {
    let mut statement = Query::select();
    statement
        .column((Experiments::Table, Experiments::ExperimentId))
        .from(Experiments::Table)
        .and_where(
            Expr::col((Experiments::Table, Experiments::LifecycleStage))
                .is_in(query.view_type.stages().iter().copied()),
        );
    for comparison in &query.filter {
        statement.and_where(experiment_condition(comparison, dialect)?);
    }
    order_experiments(&mut statement, &query.order_by)?;
    statement
        .limit(page_limit(query.max_results))
        .offset(bindable(query.offset));
    Ok(statement)
}

// ---------------------------------------------------------------------------------------------------------
// Tables and columns (MLflow's names).

#[derive(Iden, Clone, Copy)]
enum Runs {
    Table,
    RunUuid,
    Name,
    UserId,
    Status,
    StartTime,
    EndTime,
    LifecycleStage,
    ArtifactUri,
    ExperimentId,
}

#[derive(Iden, Clone, Copy)]
enum LatestMetrics {
    Table,
    Key,
    Value,
    IsNan,
    RunUuid,
}

#[derive(Iden, Clone, Copy)]
enum Params {
    Table,
    Key,
    Value,
    RunUuid,
}

#[derive(Iden, Clone, Copy)]
enum Tags {
    Table,
    Key,
    Value,
    RunUuid,
}

#[derive(Iden, Clone, Copy)]
enum Experiments {
    Table,
    ExperimentId,
    Name,
    LifecycleStage,
    CreationTime,
    LastUpdateTime,
}

#[derive(Iden, Clone, Copy)]
enum ExperimentTags {
    Table,
    Key,
    Value,
    ExperimentId,
}

#[derive(Iden, Clone, Copy)]
enum Datasets {
    Table,
    DatasetUuid,
    Name,
    Digest,
}

#[derive(Iden, Clone, Copy)]
enum Inputs {
    Table,
    InputUuid,
    SourceType,
    SourceId,
    DestinationType,
    DestinationId,
}

#[derive(Iden, Clone, Copy)]
enum InputTags {
    Table,
    InputUuid,
    Name,
    Value,
}

/// The tag that holds a run's name, which filters on `run_name` read.
const RUN_NAME_TAG: &str = "mlflow.runName";
/// The input tag that holds a dataset's context (`training`, `eval`, ...).
const DATASET_CONTEXT_TAG: &str = "mlflow.data.context";

// ---------------------------------------------------------------------------------------------------------
// Helpers.

/// sqlx binds integers as `i64`, so limits and offsets past `i64::MAX` are clamped (no table is that big).
fn bindable(count: usize) -> u64 {
    let count = u64::try_from(count).unwrap_or(u64::MAX);
    count.min(i64::MAX as u64)
}

fn page_limit(max_results: usize) -> u64 {
    bindable(max_results).saturating_add(1).min(i64::MAX as u64)
}

fn parse_experiment_id(id: &str) -> Result<i64> {
    id.trim().parse::<i64>().map_err(|_| {
        Error::invalid_parameter(format!(
            "Invalid experiment ID '{id}'. Experiment ID must be a valid integer."
        ))
    })
}

fn unsupported(comparison: &Comparison) -> Error {
    Error::invalid_parameter(format!("Invalid search expression '{comparison}'"))
}

/// A number as a bound value: integral values within `i64` bind as integers, so BIGINT columns compare
/// exactly, the rest as doubles.
fn number_value(number: f64) -> sea_query::Value {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if number.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&number) {
        // In range and integral, so the conversion is exact.
        sea_query::Value::BigInt(Some(number as i64))
    } else {
        sea_query::Value::Double(Some(number))
    }
}

/// `column <op> number` for a numeric comparator.
fn numeric_condition(
    column: SimpleExpr,
    comparison: &Comparison,
    value: sea_query::Value,
) -> Result<SimpleExpr> {
    let column = Expr::expr(column);
    Ok(match comparison.comparator {
        Comparator::Eq => column.eq(value),
        Comparator::NotEq => column.ne(value),
        Comparator::Gt => column.gt(value),
        Comparator::Ge => column.gte(value),
        Comparator::Lt => column.lt(value),
        Comparator::Le => column.lte(value),
        Comparator::Like
        | Comparator::ILike
        | Comparator::In
        | Comparator::NotIn
        | Comparator::IsNull
        | Comparator::IsNotNull => return Err(unsupported(comparison)),
    })
}

fn number_of(comparison: &Comparison) -> Result<f64> {
    match comparison.value {
        Value::Number(number) => Ok(number),
        Value::String(_) | Value::List(_) | Value::Null => Err(unsupported(comparison)),
    }
}

/// Translates a `LIKE` pattern (`%`, `_`, no escape) into the `GLOB` pattern that matches the same strings.
fn like_to_glob(pattern: &str) -> String {
    let mut glob = String::with_capacity(pattern.len());
    for character in pattern.chars() {
        match character {
            '%' => glob.push('*'),
            '_' => glob.push('?'),
            '*' => glob.push_str("[*]"),
            '?' => glob.push_str("[?]"),
            '[' => glob.push_str("[[]"),
            other => glob.push(other),
        }
    }
    glob
}

/// `column <op> value` for a string comparator, case-sensitive except `ILIKE`, in the given dialect.
fn string_condition(
    column: SimpleExpr,
    comparison: &Comparison,
    dialect: Dialect,
) -> Result<SimpleExpr> {
    // MySQL compares strings case-insensitively under its default collations; MLflow adds BINARY.
    let exact = |column: SimpleExpr| match dialect {
        Dialect::MySql => Expr::cust_with_exprs("BINARY $1", [column]),
        Dialect::Sqlite | Dialect::Postgres => column,
    };
    let condition = match (&comparison.comparator, &comparison.value) {
        (Comparator::Eq, Value::String(text)) => Expr::expr(exact(column)).eq(text.as_str()),
        (Comparator::NotEq, Value::String(text)) => Expr::expr(exact(column)).ne(text.as_str()),
        (Comparator::Like, Value::String(pattern)) => match dialect {
            Dialect::Sqlite => {
                Expr::expr(column).binary(BinOper::Custom("GLOB"), like_to_glob(pattern))
            }
            Dialect::Postgres | Dialect::MySql => Expr::expr(exact(column)).like(pattern.as_str()),
        },
        (Comparator::ILike, Value::String(pattern)) => match dialect {
            Dialect::Postgres => {
                Expr::expr(column).binary(BinOper::Custom("ILIKE"), pattern.as_str())
            }
            Dialect::Sqlite | Dialect::MySql => Expr::expr(Func::lower(column))
                .binary(BinOper::Like, Func::lower(Expr::val(pattern.as_str()))),
        },
        (Comparator::In, Value::List(items)) => {
            Expr::expr(exact(column)).is_in(items.iter().map(String::as_str))
        }
        (Comparator::NotIn, Value::List(items)) => {
            Expr::expr(exact(column)).is_not_in(items.iter().map(String::as_str))
        }
        _ => return Err(unsupported(comparison)),
    };
    Ok(condition)
}

/// `EXISTS (SELECT 1 FROM <table> WHERE <table>.run_uuid = runs.run_uuid AND <table>.key = ? AND ...)`.
fn exists_key_row<T: Iden + Copy + 'static>(
    table: T,
    run_uuid: T,
    key_column: T,
    key: &str,
    condition: Option<SimpleExpr>,
) -> SimpleExpr {
    let mut subquery = Query::select();
    subquery
        .expr(Expr::cust("1"))
        .from(table)
        .and_where(Expr::col((table, run_uuid)).equals((Runs::Table, Runs::RunUuid)))
        .and_where(Expr::col((table, key_column)).eq(key))
        .and_where_option(condition);
    Expr::exists(subquery)
}

// ---------------------------------------------------------------------------------------------------------
// Run filters.

fn run_condition(comparison: &Comparison, dialect: Dialect) -> Result<SimpleExpr> {
    let key = comparison.key.as_str();
    match comparison.key_type {
        KeyType::Metric => {
            let number = number_of(comparison)?;
            let value = Expr::col((LatestMetrics::Table, LatestMetrics::Value)).into();
            let compared =
                numeric_condition(value, comparison, sea_query::Value::Double(Some(number)))?;
            let is_nan = Expr::col((LatestMetrics::Table, LatestMetrics::IsNan));
            // A NaN is stored as 0: it differs from every number and equals, exceeds or trails none.
            let condition = if comparison.comparator == Comparator::NotEq {
                compared.or(is_nan.eq(true))
            } else {
                compared.and(is_nan.eq(false))
            };
            Ok(exists_key_row(
                LatestMetrics::Table,
                LatestMetrics::RunUuid,
                LatestMetrics::Key,
                key,
                Some(condition),
            ))
        }
        KeyType::Param => key_value_condition(
            comparison,
            dialect,
            (Params::Table, Params::RunUuid, Params::Key, Params::Value),
        ),
        KeyType::Tag => key_value_condition(
            comparison,
            dialect,
            (Tags::Table, Tags::RunUuid, Tags::Key, Tags::Value),
        ),
        KeyType::Attribute => match key {
            "run_name" => {
                let value = Expr::col((Tags::Table, Tags::Value)).into();
                let condition = string_condition(value, comparison, dialect)?;
                Ok(exists_key_row(
                    Tags::Table,
                    Tags::RunUuid,
                    Tags::Key,
                    RUN_NAME_TAG,
                    Some(condition),
                ))
            }
            "start_time" | "end_time" => {
                let column = if key == "start_time" {
                    Runs::StartTime
                } else {
                    Runs::EndTime
                };
                let number = number_of(comparison)?;
                numeric_condition(
                    Expr::col((Runs::Table, column)).into(),
                    comparison,
                    number_value(number),
                )
            }
            "run_id" | "status" | "user_id" | "artifact_uri" => {
                let column = run_attribute_column(key).ok_or_else(|| unsupported(comparison))?;
                string_condition(Expr::col((Runs::Table, column)).into(), comparison, dialect)
            }
            _ => Err(unsupported(comparison)),
        },
        KeyType::Dataset => dataset_condition(comparison, dialect),
    }
}

/// The `runs` column of a string or numeric attribute (`run_name` is `runs.name` here, for ordering).
fn run_attribute_column(key: &str) -> Option<Runs> {
    Some(match key {
        "run_id" => Runs::RunUuid,
        "run_name" => Runs::Name,
        "status" => Runs::Status,
        "user_id" => Runs::UserId,
        "artifact_uri" => Runs::ArtifactUri,
        "start_time" => Runs::StartTime,
        "end_time" => Runs::EndTime,
        _ => return None,
    })
}

fn key_value_condition<T: Iden + Copy + 'static>(
    comparison: &Comparison,
    dialect: Dialect,
    (table, run_uuid, key_column, value_column): (T, T, T, T),
) -> Result<SimpleExpr> {
    let key = comparison.key.as_str();
    match comparison.comparator {
        Comparator::IsNull => Ok(exists_key_row(table, run_uuid, key_column, key, None).not()),
        Comparator::IsNotNull => Ok(exists_key_row(table, run_uuid, key_column, key, None)),
        _ => {
            let condition =
                string_condition(Expr::col((table, value_column)).into(), comparison, dialect)?;
            Ok(exists_key_row(
                table,
                run_uuid,
                key_column,
                key,
                Some(condition),
            ))
        }
    }
}

/// `EXISTS` a dataset input of the run whose name, digest or context matches.
fn dataset_condition(comparison: &Comparison, dialect: Dialect) -> Result<SimpleExpr> {
    let mut subquery = Query::select();
    subquery
        .expr(Expr::cust("1"))
        .from(Inputs::Table)
        .inner_join(
            Datasets::Table,
            Expr::col((Datasets::Table, Datasets::DatasetUuid))
                .equals((Inputs::Table, Inputs::SourceId)),
        )
        .and_where(
            Expr::col((Inputs::Table, Inputs::DestinationId)).equals((Runs::Table, Runs::RunUuid)),
        )
        .and_where(Expr::col((Inputs::Table, Inputs::DestinationType)).eq("RUN"))
        .and_where(Expr::col((Inputs::Table, Inputs::SourceType)).eq("DATASET"));
    match comparison.key.as_str() {
        "name" => {
            let column = Expr::col((Datasets::Table, Datasets::Name)).into();
            subquery.and_where(string_condition(column, comparison, dialect)?);
        }
        "digest" => {
            let column = Expr::col((Datasets::Table, Datasets::Digest)).into();
            subquery.and_where(string_condition(column, comparison, dialect)?);
        }
        "context" => {
            let column = Expr::col((InputTags::Table, InputTags::Value)).into();
            subquery
                .inner_join(
                    InputTags::Table,
                    Expr::col((InputTags::Table, InputTags::InputUuid))
                        .equals((Inputs::Table, Inputs::InputUuid)),
                )
                .and_where(Expr::col((InputTags::Table, InputTags::Name)).eq(DATASET_CONTEXT_TAG))
                .and_where(string_condition(column, comparison, dialect)?);
        }
        _ => return Err(unsupported(comparison)),
    }
    Ok(Expr::exists(subquery))
}

// ---------------------------------------------------------------------------------------------------------
// Run order.

fn order_runs(statement: &mut SelectStatement, order_by: &[OrderBy]) -> Result<()> {
    let mut seen: Vec<(KeyType, &str)> = Vec::new();
    for (index, clause) in order_by.iter().enumerate() {
        let identity = (clause.key_type, clause.key.as_str());
        if seen.contains(&identity) {
            let clauses: Vec<String> = order_by.iter().map(ToString::to_string).collect();
            return Err(Error::invalid_parameter(format!(
                "`order_by` contains duplicate fields: {clauses:?}"
            )));
        }
        seen.push(identity);
        let direction = if clause.ascending {
            Order::Asc
        } else {
            Order::Desc
        };
        let alias = Alias::new(format!("order_{index}"));
        match clause.key_type {
            KeyType::Attribute => {
                let column = run_attribute_column(&clause.key).ok_or_else(|| {
                    Error::invalid_parameter(format!("Invalid order_by clause '{clause}'"))
                })?;
                let value = Expr::col((Runs::Table, column));
                statement
                    .order_by_expr(null_last(value.clone().is_null(), None), Order::Asc)
                    .order_by_expr(value.into(), direction);
            }
            KeyType::Metric => {
                join_key_row(
                    statement,
                    LatestMetrics::Table,
                    &alias,
                    LatestMetrics::RunUuid,
                    LatestMetrics::Key,
                    &clause.key,
                );
                let value = Expr::col((alias.clone(), LatestMetrics::Value));
                let is_nan = Expr::col((alias.clone(), LatestMetrics::IsNan)).eq(true);
                statement
                    .order_by_expr(null_last(value.clone().is_null(), Some(is_nan)), Order::Asc)
                    .order_by_expr(value.into(), direction);
            }
            KeyType::Param => {
                join_key_row(
                    statement,
                    Params::Table,
                    &alias,
                    Params::RunUuid,
                    Params::Key,
                    &clause.key,
                );
                let value = Expr::col((alias.clone(), Params::Value));
                statement
                    .order_by_expr(null_last(value.clone().is_null(), None), Order::Asc)
                    .order_by_expr(value.into(), direction);
            }
            KeyType::Tag => {
                join_key_row(
                    statement,
                    Tags::Table,
                    &alias,
                    Tags::RunUuid,
                    Tags::Key,
                    &clause.key,
                );
                let value = Expr::col((alias.clone(), Tags::Value));
                statement
                    .order_by_expr(null_last(value.clone().is_null(), None), Order::Asc)
                    .order_by_expr(value.into(), direction);
            }
            KeyType::Dataset => {
                return Err(Error::invalid_parameter(
                    "Invalid identifier type 'dataset'",
                ));
            }
        }
    }
    if !seen.contains(&(KeyType::Attribute, "start_time")) {
        statement.order_by((Runs::Table, Runs::StartTime), Order::Desc);
    }
    statement.order_by((Runs::Table, Runs::RunUuid), Order::Asc);
    Ok(())
}

/// `LEFT JOIN <table> AS <alias> ON <alias>.run_uuid = runs.run_uuid AND <alias>.key = ?`.
fn join_key_row<T: Iden + Copy + 'static>(
    statement: &mut SelectStatement,
    table: T,
    alias: &Alias,
    run_uuid: T,
    key_column: T,
    key: &str,
) {
    statement.join_as(
        JoinType::LeftJoin,
        table,
        alias.clone(),
        Cond::all()
            .add(Expr::col((alias.clone(), run_uuid)).equals((Runs::Table, Runs::RunUuid)))
            .add(Expr::col((alias.clone(), key_column)).eq(key)),
    );
}

/// The rank that sorts missing values last whatever the direction: `CASE WHEN <nan> THEN 1 WHEN <missing>
/// THEN 2 ELSE 0 END` for metrics, `CASE WHEN <missing> THEN 1 ELSE 0 END` otherwise. The ranks are SQL
/// literals, not bound values, so every dialect knows their type.
fn null_last(missing: SimpleExpr, nan: Option<SimpleExpr>) -> SimpleExpr {
    match nan {
        Some(nan) => Expr::case(nan, Expr::cust("1"))
            .case(missing, Expr::cust("2"))
            .finally(Expr::cust("0"))
            .into(),
        None => Expr::case(missing, Expr::cust("1"))
            .finally(Expr::cust("0"))
            .into(),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Experiments.

fn experiment_condition(comparison: &Comparison, dialect: Dialect) -> Result<SimpleExpr> {
    match (comparison.key_type, comparison.key.as_str()) {
        (KeyType::Attribute, "name") => string_condition(
            Expr::col((Experiments::Table, Experiments::Name)).into(),
            comparison,
            dialect,
        ),
        (KeyType::Attribute, "experiment_id") => {
            let column = Expr::col((Experiments::Table, Experiments::ExperimentId));
            match (&comparison.comparator, &comparison.value) {
                (Comparator::Eq, Value::String(id)) => Ok(column.eq(parse_experiment_id(id)?)),
                (Comparator::NotEq, Value::String(id)) => Ok(column.ne(parse_experiment_id(id)?)),
                (Comparator::In, Value::List(ids)) => Ok(column.is_in(
                    ids.iter()
                        .map(|id| parse_experiment_id(id))
                        .collect::<Result<Vec<_>>>()?,
                )),
                (Comparator::NotIn, Value::List(ids)) => Ok(column.is_not_in(
                    ids.iter()
                        .map(|id| parse_experiment_id(id))
                        .collect::<Result<Vec<_>>>()?,
                )),
                _ => Err(unsupported(comparison)),
            }
        }
        (KeyType::Attribute, key @ ("creation_time" | "last_update_time")) => {
            let column = if key == "creation_time" {
                Experiments::CreationTime
            } else {
                Experiments::LastUpdateTime
            };
            let number = number_of(comparison)?;
            numeric_condition(
                Expr::col((Experiments::Table, column)).into(),
                comparison,
                number_value(number),
            )
        }
        (KeyType::Tag, key) => {
            let mut subquery = Query::select();
            subquery
                .expr(Expr::cust("1"))
                .from(ExperimentTags::Table)
                .and_where(
                    Expr::col((ExperimentTags::Table, ExperimentTags::ExperimentId))
                        .equals((Experiments::Table, Experiments::ExperimentId)),
                )
                .and_where(Expr::col((ExperimentTags::Table, ExperimentTags::Key)).eq(key));
            match comparison.comparator {
                Comparator::IsNull => return Ok(Expr::exists(subquery).not()),
                Comparator::IsNotNull => {}
                _ => {
                    let value = Expr::col((ExperimentTags::Table, ExperimentTags::Value)).into();
                    subquery.and_where(string_condition(value, comparison, dialect)?);
                }
            }
            Ok(Expr::exists(subquery))
        }
        _ => Err(unsupported(comparison)),
    }
}

fn order_experiments(statement: &mut SelectStatement, order_by: &[OrderBy]) -> Result<()> {
    if order_by.is_empty() {
        statement
            .order_by((Experiments::Table, Experiments::CreationTime), Order::Desc)
            .order_by((Experiments::Table, Experiments::ExperimentId), Order::Asc);
        return Ok(());
    }
    let mut ordered_by_id = false;
    for clause in order_by {
        let column = match (clause.key_type, clause.key.as_str()) {
            (KeyType::Attribute, "name") => Experiments::Name,
            (KeyType::Attribute, "experiment_id") => {
                ordered_by_id = true;
                Experiments::ExperimentId
            }
            (KeyType::Attribute, "creation_time") => Experiments::CreationTime,
            (KeyType::Attribute, "last_update_time") => Experiments::LastUpdateTime,
            _ => {
                return Err(Error::invalid_parameter(format!(
                    "Invalid order_by clause '{clause}'"
                )))
            }
        };
        let direction = if clause.ascending {
            Order::Asc
        } else {
            Order::Desc
        };
        statement.order_by((Experiments::Table, column), direction);
    }
    if !ordered_by_id {
        statement.order_by((Experiments::Table, Experiments::ExperimentId), Order::Desc);
    }
    Ok(())
}
