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
    string_comparison(column, comparison.comparator, &comparison.value, dialect)
        .ok_or_else(|| unsupported(comparison))
}

/// `column <op> ?` for a string comparator, case-sensitive except `ILIKE`, in the given dialect; `None`
/// when the comparator does not take this value (a number, or a list with `=`). Shared by every search
/// that compares strings as MLflow does.
pub(crate) fn string_comparison(
    column: SimpleExpr,
    comparator: Comparator,
    value: &Value,
    dialect: Dialect,
) -> Option<SimpleExpr> {
    // MySQL compares strings case-insensitively under its default collations; MLflow adds BINARY.
    let exact = |column: SimpleExpr| match dialect {
        Dialect::MySql => Expr::cust_with_exprs("BINARY ?", [column]),
        Dialect::Sqlite | Dialect::Postgres => column,
    };
    let condition = match (comparator, value) {
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
        _ => return None,
    };
    Some(condition)
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

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflow_core::filter::{
        parse_experiment_filter, parse_experiment_order_by, parse_run_filter, parse_run_order_by,
        render_filter,
    };
    use ferroflow_core::model::ViewType;
    use proptest::prelude::*;
    use sea_query::{MysqlQueryBuilder, PostgresQueryBuilder, SqliteQueryBuilder};
    use sea_query_binder::SqlxBinder;
    use sqlx::{Connection, SqliteConnection};
    use std::cmp::Ordering;

    /// The store's schema, which is MLflow 3.17's (`schema/sqlite.sql`, from the reference in `shared/reference/`).
    const SCHEMA: &str = include_str!("../schema/sqlite.sql");

    /// The datasets of experiment 1 as (name, digest); a run input points at one by index.
    const DATASETS: [(&str, &str); 3] = [("iris", "d1"), ("wine", "d2"), ("Iris", "d3")];

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum StoredMetric {
        Number(f64),
        NaN,
    }

    #[derive(Debug, Clone)]
    struct TestRun {
        id: String,
        experiment_id: i64,
        deleted: bool,
        /// `runs.name`, which order_by reads.
        name: Option<String>,
        /// The `mlflow.runName` tag, which filters read.
        name_tag: Option<String>,
        user_id: String,
        status: String,
        start_time: i64,
        end_time: Option<i64>,
        artifact_uri: String,
        metrics: Vec<(String, StoredMetric)>,
        params: Vec<(String, String)>,
        tags: Vec<(String, String)>,
        /// (index into DATASETS, context tag).
        inputs: Vec<(usize, Option<String>)>,
    }

    impl TestRun {
        fn new(id: &str, start_time: i64) -> Self {
            Self {
                id: id.to_owned(),
                experiment_id: 1,
                deleted: false,
                name: Some(id.to_owned()),
                name_tag: Some(id.to_owned()),
                user_id: "alice".to_owned(),
                status: "FINISHED".to_owned(),
                start_time,
                end_time: Some(start_time + 10),
                artifact_uri: format!("mlflow-artifacts:/1/{id}/artifacts"),
                metrics: Vec::new(),
                params: Vec::new(),
                tags: Vec::new(),
                inputs: Vec::new(),
            }
        }

        fn metric(&self, key: &str) -> Option<StoredMetric> {
            self.metrics
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| *value)
        }

        fn param(&self, key: &str) -> Option<&str> {
            self.params
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.as_str())
        }

        /// Tags as stored: the explicit ones plus `mlflow.runName`.
        fn tag(&self, key: &str) -> Option<&str> {
            if key == RUN_NAME_TAG {
                return self.name_tag.as_deref();
            }
            self.tags
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.as_str())
        }
    }

    async fn database(runs: &[TestRun]) -> SqliteConnection {
        let mut connection = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::raw_sql(SCHEMA)
            .execute(&mut connection)
            .await
            .unwrap();
        for id in [1, 2] {
            sqlx::query(
                "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, \
                 last_update_time) VALUES (?, ?, '', 'active', 0, 0)",
            )
            .bind(id)
            .bind(format!("experiment {id}"))
            .execute(&mut connection)
            .await
            .unwrap();
        }
        for (index, (name, digest)) in DATASETS.iter().enumerate() {
            sqlx::query(
                "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, dataset_source_type, dataset_source) \
                 VALUES (?, 1, ?, ?, 'local', '{}')",
            )
            .bind(format!("dataset-{index}"))
            .bind(name)
            .bind(digest)
            .execute(&mut connection)
            .await
            .unwrap();
        }
        for run in runs {
            sqlx::query(
                "INSERT INTO runs (run_uuid, name, source_type, user_id, status, start_time, end_time, lifecycle_stage, \
                 artifact_uri, experiment_id) VALUES (?, ?, 'UNKNOWN', ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&run.id)
            .bind(&run.name)
            .bind(&run.user_id)
            .bind(&run.status)
            .bind(run.start_time)
            .bind(run.end_time)
            .bind(if run.deleted { "deleted" } else { "active" })
            .bind(&run.artifact_uri)
            .bind(run.experiment_id)
            .execute(&mut connection)
            .await
            .unwrap();
            for (key, metric) in &run.metrics {
                let (value, is_nan) = match metric {
                    StoredMetric::Number(value) => (*value, false),
                    StoredMetric::NaN => (0.0, true),
                };
                sqlx::query(
                    "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, 0, 0, ?, ?)",
                )
                .bind(key)
                .bind(value)
                .bind(is_nan)
                .bind(&run.id)
                .execute(&mut connection)
                .await
                .unwrap();
            }
            for (key, value) in &run.params {
                sqlx::query("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)")
                    .bind(key)
                    .bind(value)
                    .bind(&run.id)
                    .execute(&mut connection)
                    .await
                    .unwrap();
            }
            let name_tag = run
                .name_tag
                .iter()
                .map(|name| (RUN_NAME_TAG.to_owned(), name.clone()));
            for (key, value) in run.tags.iter().cloned().chain(name_tag) {
                sqlx::query("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)")
                    .bind(key)
                    .bind(value)
                    .bind(&run.id)
                    .execute(&mut connection)
                    .await
                    .unwrap();
            }
            for (index, (dataset, context)) in run.inputs.iter().enumerate() {
                let input_uuid = format!("{}-input-{index}", run.id);
                sqlx::query(
                    "INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id) \
                     VALUES (?, 'DATASET', ?, 'RUN', ?)",
                )
                .bind(&input_uuid)
                .bind(format!("dataset-{dataset}"))
                .bind(&run.id)
                .execute(&mut connection)
                .await
                .unwrap();
                if let Some(context) = context {
                    sqlx::query(
                        "INSERT INTO input_tags (input_uuid, name, value) VALUES (?, ?, ?)",
                    )
                    .bind(&input_uuid)
                    .bind(DATASET_CONTEXT_TAG)
                    .bind(context)
                    .execute(&mut connection)
                    .await
                    .unwrap();
                }
            }
        }
        connection
    }

    async fn search_runs(
        connection: &mut SqliteConnection,
        query: &RunQuery,
    ) -> Result<Vec<String>> {
        let (sql, values) = run_search_statement(query)?.build_sqlx(SqliteQueryBuilder);
        Ok(sqlx::query_scalar_with(&sql, values)
            .fetch_all(connection)
            .await
            .unwrap())
    }

    fn run_query(filter: &str, order_by: &[&str]) -> RunQuery {
        RunQuery {
            experiment_ids: vec!["1".to_owned()],
            filter: parse_run_filter(filter).unwrap(),
            order_by: order_by
                .iter()
                .map(|clause| parse_run_order_by(clause).unwrap())
                .collect(),
            view_type: ViewType::ActiveOnly,
            max_results: 100,
            offset: 0,
        }
    }

    /// Runs of experiment 1 (r4 deleted) and r5 in experiment 2. Default order of the active runs of
    /// experiment 1: r2, r3 (start 200, by id), r6 (150), r1 (100).
    fn fixture() -> Vec<TestRun> {
        let mut r1 = TestRun::new("r1", 100);
        r1.name = Some("alpha".to_owned());
        r1.name_tag = Some("alpha".to_owned());
        r1.end_time = Some(200);
        r1.metrics = vec![
            ("acc".to_owned(), StoredMetric::Number(0.9)),
            ("loss".to_owned(), StoredMetric::Number(0.5)),
        ];
        r1.params = vec![
            ("lr".to_owned(), "0.01".to_owned()),
            ("opt".to_owned(), "adam".to_owned()),
        ];
        r1.tags = vec![("team".to_owned(), "Core".to_owned())];
        r1.inputs = vec![(0, Some("train".to_owned()))];

        let mut r2 = TestRun::new("r2", 200);
        r2.name = Some("beta".to_owned());
        r2.name_tag = Some("beta".to_owned());
        r2.user_id = "bob".to_owned();
        r2.status = "RUNNING".to_owned();
        r2.end_time = None;
        r2.metrics = vec![
            ("acc".to_owned(), StoredMetric::Number(0.8)),
            ("loss".to_owned(), StoredMetric::NaN),
        ];
        r2.params = vec![("lr".to_owned(), "0.1".to_owned())];
        r2.tags = vec![("team".to_owned(), "core".to_owned())];
        r2.inputs = vec![(0, Some("eval".to_owned())), (1, None)];

        let mut r3 = TestRun::new("r3", 200);
        r3.name = Some("Gamma".to_owned());
        r3.name_tag = Some("Gamma".to_owned());
        r3.status = "FAILED".to_owned();
        r3.end_time = Some(300);
        r3.metrics = vec![("acc".to_owned(), StoredMetric::Number(f64::MAX))];
        r3.params = vec![("opt".to_owned(), "sgd".to_owned())];
        r3.tags = vec![("note".to_owned(), "50%_off".to_owned())];

        let mut r4 = TestRun::new("r4", 50);
        r4.deleted = true;
        r4.name_tag = Some("delta".to_owned());
        r4.metrics = vec![("acc".to_owned(), StoredMetric::Number(0.95))];

        let mut r5 = TestRun::new("r5", 300);
        r5.experiment_id = 2;
        r5.metrics = vec![("acc".to_owned(), StoredMetric::Number(0.1))];

        let mut r6 = TestRun::new("r6", 150);
        r6.name = Some("zeta".to_owned());
        r6.name_tag = Some("zeta".to_owned());
        r6.user_id = "dave".to_owned();
        r6.status = "KILLED".to_owned();
        r6.end_time = Some(160);
        r6.tags = vec![
            ("team".to_owned(), "CORE".to_owned()),
            ("note".to_owned(), "a*b[c]?".to_owned()),
        ];

        vec![r1, r2, r3, r4, r5, r6]
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn run_filters_and_orders() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("", &[], &["r2", "r3", "r6", "r1"]),
            // Metrics: latest value; NaN only satisfies `!=`; +inf is stored as f64::MAX.
            ("metrics.acc > 0.85", &[], &["r3", "r1"]),
            ("metrics.acc = 0.8", &[], &["r2"]),
            ("metrics.acc >= 1e308", &[], &["r3"]),
            ("metrics.loss != 0.5", &[], &["r2"]),
            ("metrics.loss = 0", &[], &[]),
            ("metrics.loss < 1", &[], &["r1"]),
            ("metrics.missing != 1", &[], &[]),
            // Params and tags: `!=` needs the key; IS NULL is absence.
            ("params.lr = '0.01'", &[], &["r1"]),
            ("params.lr != '0.01'", &[], &["r2"]),
            ("params.lr IS NULL", &[], &["r3", "r6"]),
            ("params.lr IS NOT NULL", &[], &["r2", "r1"]),
            (
                "params.lr IS NOT NULL AND params.opt IS NOT NULL",
                &[],
                &["r1"],
            ),
            ("tags.team = 'core'", &[], &["r2"]),
            ("tags.team LIKE 'c%'", &[], &["r2"]),
            ("tags.team ILIKE 'c%'", &[], &["r2", "r6", "r1"]),
            ("tags.team ILIKE 'CO_E'", &[], &["r2", "r6", "r1"]),
            ("tags.note LIKE '50%'", &[], &["r3"]),
            ("tags.note LIKE '50\\%%'", &[], &[]),
            ("tags.note LIKE '*%'", &[], &[]),
            ("tags.note LIKE 'a*b[c]?'", &[], &["r6"]),
            ("tags.note LIKE 'a_b[_]_'", &[], &["r6"]),
            ("tags.note LIKE 'a*b[c]'", &[], &[]),
            ("tags.`mlflow.runName` = 'beta'", &[], &["r2"]),
            // run_name filters read the mlflow.runName tag.
            ("run_name = 'alpha'", &[], &["r1"]),
            ("`Run Name` ILIKE 'g%'", &[], &["r3"]),
            ("run_name LIKE 'g%'", &[], &[]),
            ("run_name != 'alpha'", &[], &["r2", "r3", "r6"]),
            // Attributes.
            (
                "attributes.run_id IN ('r1', 'r3', 'r4')",
                &[],
                &["r3", "r1"],
            ),
            ("run_id NOT IN ('r1')", &[], &["r2", "r3", "r6"]),
            ("run_id = 'r6'", &[], &["r6"]),
            ("status = 'RUNNING'", &[], &["r2"]),
            ("status != 'RUNNING'", &[], &["r3", "r6", "r1"]),
            ("status LIKE '%ED'", &[], &["r3", "r6", "r1"]),
            ("status LIKE '%ed'", &[], &[]),
            ("status ILIKE '%ed'", &[], &["r3", "r6", "r1"]),
            ("user_id = 'alice' AND metrics.acc > 0", &[], &["r3", "r1"]),
            ("user_id = 'Alice'", &[], &[]),
            ("artifact_uri LIKE '%/r1/%'", &[], &["r1"]),
            ("start_time >= 150", &[], &["r2", "r3", "r6"]),
            ("created < 150", &[], &["r1"]),
            ("start_time = 100.0", &[], &["r1"]),
            ("start_time < 100.5", &[], &["r1"]),
            ("end_time > 0", &[], &["r3", "r6", "r1"]),
            ("end_time != 0", &[], &["r3", "r6", "r1"]),
            // Datasets: any input of the run.
            ("dataset.name = 'iris'", &[], &["r2", "r1"]),
            ("dataset.name != 'iris'", &[], &["r2"]),
            ("dataset.name LIKE 'I%'", &[], &[]),
            ("dataset.name ILIKE 'I%'", &[], &["r2", "r1"]),
            ("dataset.context = 'train'", &[], &["r1"]),
            ("dataset.context ILIKE 'EV%'", &[], &["r2"]),
            ("dataset.context NOT IN ('train')", &[], &["r2"]),
            ("dataset.digest IN ('d2', 'd3')", &[], &["r2"]),
            (
                "dataset.name = 'wine' AND dataset.context = 'eval'",
                &[],
                &["r2"],
            ),
            // Order: missing keys last both ways, NaN before them, then start_time DESC, run_uuid.
            ("", &["metrics.acc DESC"], &["r3", "r1", "r2", "r6"]),
            ("", &["metrics.acc"], &["r2", "r1", "r3", "r6"]),
            ("", &["metrics.loss ASC"], &["r1", "r2", "r3", "r6"]),
            ("", &["metrics.loss DESC"], &["r1", "r2", "r3", "r6"]),
            ("", &["params.lr DESC"], &["r2", "r1", "r3", "r6"]),
            ("", &["params.lr ASC"], &["r1", "r2", "r3", "r6"]),
            ("", &["tags.team"], &["r6", "r1", "r2", "r3"]),
            ("", &["tags.team DESC"], &["r2", "r1", "r6", "r3"]),
            ("", &["end_time"], &["r6", "r1", "r3", "r2"]),
            ("", &["end_time DESC"], &["r3", "r1", "r6", "r2"]),
            ("", &["start_time ASC"], &["r1", "r6", "r2", "r3"]),
            ("", &["created ASC"], &["r1", "r6", "r2", "r3"]),
            ("", &["start_time DESC"], &["r2", "r3", "r6", "r1"]),
            ("", &["run_name"], &["r3", "r1", "r2", "r6"]),
            ("", &["attribute.run_id DESC"], &["r6", "r3", "r2", "r1"]),
            (
                "",
                &["status", "start_time DESC"],
                &["r3", "r1", "r6", "r2"],
            ),
            (
                "",
                &["params.opt DESC", "metrics.acc"],
                &["r3", "r1", "r2", "r6"],
            ),
            ("metrics.acc > 0", &["metrics.acc"], &["r2", "r1", "r3"]),
        ];
        block_on(async {
            let mut connection = database(&fixture()).await;
            for (filter, order_by, expected) in cases {
                let actual = search_runs(&mut connection, &run_query(filter, order_by))
                    .await
                    .unwrap();
                assert_eq!(
                    actual, *expected,
                    "filter {filter:?}, order_by {order_by:?}"
                );
            }
        });
    }

    /// (experiment ids, view, max_results, offset, expected ids with the extra row).
    type PageCase = (
        &'static [&'static str],
        ViewType,
        usize,
        usize,
        &'static [&'static str],
    );

    /// (filter, order_by, view, max_results, offset, expected ids with the extra row).
    type ExperimentCase = (
        &'static str,
        &'static [&'static str],
        ViewType,
        usize,
        usize,
        &'static [i64],
    );

    #[test]
    fn run_views_experiments_and_pages() {
        let cases: &[PageCase] = &[
            (&["1"], ViewType::DeletedOnly, 100, 0, &["r4"]),
            (
                &["1"],
                ViewType::All,
                100,
                0,
                &["r2", "r3", "r6", "r1", "r4"],
            ),
            (
                &["1", "2"],
                ViewType::ActiveOnly,
                100,
                0,
                &["r5", "r2", "r3", "r6", "r1"],
            ),
            (&["2"], ViewType::ActiveOnly, 100, 0, &["r5"]),
            (&[], ViewType::All, 100, 0, &[]),
            (&["7"], ViewType::All, 100, 0, &[]),
            (&["1"], ViewType::ActiveOnly, 2, 0, &["r2", "r3", "r6"]),
            (&["1"], ViewType::ActiveOnly, 2, 2, &["r6", "r1"]),
            (&["1"], ViewType::ActiveOnly, 2, 4, &[]),
            (&["1"], ViewType::ActiveOnly, 0, 0, &["r2"]),
            (&["1"], ViewType::ActiveOnly, 3, 1, &["r3", "r6", "r1"]),
            (&["1"], ViewType::ActiveOnly, usize::MAX, usize::MAX, &[]),
        ];
        block_on(async {
            let mut connection = database(&fixture()).await;
            for (experiment_ids, view_type, max_results, offset, expected) in cases {
                let query = RunQuery {
                    experiment_ids: experiment_ids.iter().map(|id| (*id).to_owned()).collect(),
                    view_type: *view_type,
                    max_results: *max_results,
                    offset: *offset,
                    ..run_query("", &[])
                };
                let actual = search_runs(&mut connection, &query).await.unwrap();
                assert_eq!(
                    actual, *expected,
                    "{experiment_ids:?} {view_type:?} {max_results} {offset}"
                );
            }
        });
    }

    #[test]
    fn run_search_errors() {
        let duplicate = |order_by: &[&str]| {
            run_search_statement(&run_query("", order_by))
                .unwrap_err()
                .message
        };
        assert!(duplicate(&["metrics.acc", "metrics.acc DESC"])
            .starts_with("`order_by` contains duplicate fields"));
        assert!(duplicate(&["created", "start_time"])
            .starts_with("`order_by` contains duplicate fields"));
        let bad_experiment = RunQuery {
            experiment_ids: vec!["abc".to_owned()],
            ..run_query("", &[])
        };
        let error = run_search_statement(&bad_experiment).unwrap_err();
        assert_eq!(
            error.code,
            ferroflow_proto::ErrorCode::InvalidParameterValue
        );
        assert_eq!(
            error.message,
            "Invalid experiment ID 'abc'. Experiment ID must be a valid integer."
        );
        // Hand-made comparisons the parser would never produce are refused, not compiled.
        let nonsense = RunQuery {
            filter: vec![Comparison {
                key_type: KeyType::Metric,
                key: "a".to_owned(),
                comparator: Comparator::Like,
                value: Value::String("x".to_owned()),
            }],
            ..run_query("", &[])
        };
        assert!(run_search_statement(&nonsense).is_err());
    }

    #[test]
    fn values_are_bound_and_every_dialect_renders() {
        let query = run_query(
            "metrics.m < 7.25 AND params.p = 'secret-1' AND tags.t LIKE 'secret-2%' AND run_name ILIKE 'secret-3' \
             AND run_id IN ('secret-4') AND dataset.context = 'secret-5' AND start_time > 12345",
            &["metrics.m DESC", "tags.`secret-6`"],
        );
        for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::MySql] {
            let statement = run_search_statement_for(&query, dialect).unwrap();
            let (sql, values) = match dialect {
                Dialect::Sqlite => statement.build(SqliteQueryBuilder),
                Dialect::Postgres => statement.build(PostgresQueryBuilder),
                Dialect::MySql => statement.build(MysqlQueryBuilder),
            };
            for secret in ["secret", "7.25", "12345"] {
                assert!(!sql.contains(secret), "{dialect:?} inlines {secret}: {sql}");
            }
            assert_eq!(values.0.len(), 22, "{dialect:?}: {sql}");
            match dialect {
                Dialect::Sqlite => assert!(sql.contains(" GLOB "), "{sql}"),
                Dialect::Postgres => {
                    assert!(sql.contains(" ILIKE ") && sql.contains(" LIKE "), "{sql}")
                }
                Dialect::MySql => assert!(sql.contains("BINARY "), "{sql}"),
            }
        }
        let experiments = ExperimentQuery {
            filter: parse_experiment_filter(
                "name LIKE 'secret%' AND tags.k = 'secret' AND experiment_id IN ('5')",
            )
            .unwrap(),
            order_by: vec![],
            view_type: ViewType::ActiveOnly,
            max_results: 10,
            offset: 0,
        };
        for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::MySql] {
            let (sql, _) = experiment_search_statement_for(&experiments, dialect)
                .unwrap()
                .build(PostgresQueryBuilder);
            assert!(!sql.contains("secret"), "{sql}");
        }
    }

    #[test]
    fn like_patterns_become_equivalent_globs() {
        let cases = [
            ("a%", "a*"),
            ("_b", "?b"),
            ("*?[]", "[*][?][[]]"),
            ("50%_off\\", "50*?off\\"),
            ("", ""),
        ];
        for (like, glob) in cases {
            assert_eq!(like_to_glob(like), glob, "{like:?}");
        }
    }

    async fn experiments_database() -> SqliteConnection {
        let mut connection = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::raw_sql(SCHEMA)
            .execute(&mut connection)
            .await
            .unwrap();
        let experiments = [
            (0, "Default", "active", 10, 10),
            (1, "exp-one", "active", 100, 300),
            (2, "exp-two", "active", 200, 200),
            (3, "Exp-Three", "deleted", 200, 250),
            (4, "other", "active", 50, 50),
        ];
        for (id, name, stage, created, updated) in experiments {
            sqlx::query(
                "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, \
                 last_update_time) VALUES (?, ?, '', ?, ?, ?)",
            )
            .bind(id)
            .bind(name)
            .bind(stage)
            .bind(created)
            .bind(updated)
            .execute(&mut connection)
            .await
            .unwrap();
        }
        for (id, key, value) in [
            (1, "k", "v"),
            (2, "k", "w"),
            (3, "k", "V"),
            (2, "other", "x"),
        ] {
            sqlx::query("INSERT INTO experiment_tags (key, value, experiment_id) VALUES (?, ?, ?)")
                .bind(key)
                .bind(value)
                .bind(id)
                .execute(&mut connection)
                .await
                .unwrap();
        }
        connection
    }

    #[test]
    fn experiment_filters_orders_and_pages() {
        let cases: &[ExperimentCase] = &[
            ("", &[], ViewType::ActiveOnly, 100, 0, &[2, 1, 4, 0]),
            ("", &[], ViewType::All, 100, 0, &[2, 3, 1, 4, 0]),
            ("", &[], ViewType::DeletedOnly, 100, 0, &[3]),
            ("name = 'exp-one'", &[], ViewType::ActiveOnly, 100, 0, &[1]),
            (
                "name != 'exp-one'",
                &[],
                ViewType::ActiveOnly,
                100,
                0,
                &[2, 4, 0],
            ),
            ("name LIKE 'exp%'", &[], ViewType::All, 100, 0, &[2, 1]),
            ("name ILIKE 'exp%'", &[], ViewType::All, 100, 0, &[2, 3, 1]),
            ("name LIKE '%-t%'", &[], ViewType::All, 100, 0, &[2]),
            ("name ILIKE '%-t%'", &[], ViewType::All, 100, 0, &[2, 3]),
            ("tags.k = 'v'", &[], ViewType::All, 100, 0, &[1]),
            ("tags.k ILIKE 'v'", &[], ViewType::All, 100, 0, &[3, 1]),
            ("tags.k != 'v'", &[], ViewType::ActiveOnly, 100, 0, &[2]),
            ("tags.k IS NULL", &[], ViewType::ActiveOnly, 100, 0, &[4, 0]),
            (
                "tags.k IS NOT NULL",
                &[],
                ViewType::ActiveOnly,
                100,
                0,
                &[2, 1],
            ),
            (
                "tags.k IS NOT NULL AND tags.other = 'x'",
                &[],
                ViewType::ActiveOnly,
                100,
                0,
                &[2],
            ),
            (
                "experiment_id = '0'",
                &[],
                ViewType::ActiveOnly,
                100,
                0,
                &[0],
            ),
            (
                "experiment_id != '0'",
                &[],
                ViewType::ActiveOnly,
                100,
                0,
                &[2, 1, 4],
            ),
            (
                "experiment_id IN ('1', '4', '9')",
                &[],
                ViewType::ActiveOnly,
                100,
                0,
                &[1, 4],
            ),
            (
                "experiment_id NOT IN ('1', '4')",
                &[],
                ViewType::ActiveOnly,
                100,
                0,
                &[2, 0],
            ),
            (
                "creation_time >= 100",
                &[],
                ViewType::ActiveOnly,
                100,
                0,
                &[2, 1],
            ),
            (
                "last_update_time < 250 AND creation_time > 10",
                &[],
                ViewType::All,
                100,
                0,
                &[2, 4],
            ),
            ("", &["name"], ViewType::ActiveOnly, 100, 0, &[0, 1, 2, 4]),
            ("", &["name DESC"], ViewType::All, 100, 0, &[4, 2, 1, 3, 0]),
            // The tie-break after an explicit order_by is experiment_id DESC.
            (
                "",
                &["creation_time"],
                ViewType::All,
                100,
                0,
                &[0, 4, 1, 3, 2],
            ),
            (
                "",
                &["creation_time DESC"],
                ViewType::All,
                100,
                0,
                &[3, 2, 1, 4, 0],
            ),
            (
                "",
                &["creation_time DESC", "experiment_id"],
                ViewType::All,
                100,
                0,
                &[2, 3, 1, 4, 0],
            ),
            (
                "",
                &["last_update_time DESC"],
                ViewType::All,
                100,
                0,
                &[1, 3, 2, 4, 0],
            ),
            (
                "",
                &["experiment_id DESC"],
                ViewType::ActiveOnly,
                100,
                0,
                &[4, 2, 1, 0],
            ),
            ("", &[], ViewType::ActiveOnly, 2, 0, &[2, 1, 4]),
            ("", &[], ViewType::ActiveOnly, 2, 2, &[4, 0]),
            ("", &[], ViewType::ActiveOnly, 1, 4, &[]),
        ];
        block_on(async {
            let mut connection = experiments_database().await;
            for (filter, order_by, view_type, max_results, offset, expected) in cases {
                let query = ExperimentQuery {
                    filter: parse_experiment_filter(filter).unwrap(),
                    order_by: order_by
                        .iter()
                        .map(|clause| parse_experiment_order_by(clause).unwrap())
                        .collect(),
                    view_type: *view_type,
                    max_results: *max_results,
                    offset: *offset,
                };
                let (sql, values) = experiment_search_statement(&query)
                    .unwrap()
                    .build_sqlx(SqliteQueryBuilder);
                let actual: Vec<i64> = sqlx::query_scalar_with(&sql, values)
                    .fetch_all(&mut connection)
                    .await
                    .unwrap();
                assert_eq!(
                    actual, *expected,
                    "filter {filter:?}, order_by {order_by:?}, {view_type:?}"
                );
            }
        });
    }

    // ---------------------------------------------------------------------------------------------------
    // Property: on random runs and random valid filters, SQL returns what a naive evaluator returns.

    /// `LIKE` as MLflow means it: `%` any run of characters, `_` one character, everything else literal.
    fn like(text: &[char], pattern: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('%', rest)) => (0..=text.len()).any(|skip| like(&text[skip..], rest)),
            Some(('_', rest)) => !text.is_empty() && like(&text[1..], rest),
            Some((literal, rest)) => text.first() == Some(literal) && like(&text[1..], rest),
        }
    }

    fn string_matches(actual: Option<&str>, comparison: &Comparison) -> bool {
        let Some(actual) = actual else {
            return false; // SQL: a comparison with NULL is never true.
        };
        let chars = |text: &str| text.chars().collect::<Vec<_>>();
        match (&comparison.comparator, &comparison.value) {
            (Comparator::Eq, Value::String(expected)) => actual == expected,
            (Comparator::NotEq, Value::String(expected)) => actual != expected,
            (Comparator::Like, Value::String(pattern)) => like(&chars(actual), &chars(pattern)),
            (Comparator::ILike, Value::String(pattern)) => like(
                &chars(&actual.to_ascii_lowercase()),
                &chars(&pattern.to_ascii_lowercase()),
            ),
            (Comparator::In, Value::List(items)) => items.iter().any(|item| item == actual),
            (Comparator::NotIn, Value::List(items)) => items.iter().all(|item| item != actual),
            other => panic!("no string comparison {other:?}"),
        }
    }

    fn number_matches(actual: Option<f64>, comparison: &Comparison) -> bool {
        let (Some(actual), Value::Number(expected)) = (actual, &comparison.value) else {
            return false;
        };
        match comparison.comparator {
            Comparator::Eq => actual == *expected,
            Comparator::NotEq => actual != *expected,
            Comparator::Gt => actual > *expected,
            Comparator::Ge => actual >= *expected,
            Comparator::Lt => actual < *expected,
            Comparator::Le => actual <= *expected,
            other => panic!("no numeric comparison {other:?}"),
        }
    }

    fn run_matches(run: &TestRun, comparison: &Comparison) -> bool {
        let key = comparison.key.as_str();
        let key_value = |value: Option<&str>| match comparison.comparator {
            Comparator::IsNull => value.is_none(),
            Comparator::IsNotNull => value.is_some(),
            _ => string_matches(value, comparison),
        };
        match comparison.key_type {
            KeyType::Metric => match run.metric(key) {
                None => false,
                Some(StoredMetric::NaN) => comparison.comparator == Comparator::NotEq,
                Some(StoredMetric::Number(value)) => number_matches(Some(value), comparison),
            },
            KeyType::Param => key_value(run.param(key)),
            KeyType::Tag => key_value(run.tag(key)),
            KeyType::Attribute => match key {
                "run_id" => string_matches(Some(&run.id), comparison),
                "run_name" => string_matches(run.name_tag.as_deref(), comparison),
                "status" => string_matches(Some(&run.status), comparison),
                "user_id" => string_matches(Some(&run.user_id), comparison),
                "artifact_uri" => string_matches(Some(&run.artifact_uri), comparison),
                "start_time" => number_matches(Some(run.start_time as f64), comparison),
                "end_time" => number_matches(run.end_time.map(|time| time as f64), comparison),
                other => panic!("no attribute {other}"),
            },
            KeyType::Dataset => run.inputs.iter().any(|(dataset, context)| {
                let (name, digest) = DATASETS[*dataset];
                match key {
                    "name" => string_matches(Some(name), comparison),
                    "digest" => string_matches(Some(digest), comparison),
                    "context" => string_matches(context.as_deref(), comparison),
                    other => panic!("no dataset field {other}"),
                }
            }),
        }
    }

    /// A sortable value: its rank (0 present, 1 NaN, 2 missing) and the value.
    #[derive(Debug, PartialEq, PartialOrd)]
    enum SortValue {
        Number(f64),
        Text(String),
    }

    fn sort_value(run: &TestRun, order_by: &OrderBy) -> (u8, Option<SortValue>) {
        let text = |value: Option<&str>| match value {
            Some(value) => (0, Some(SortValue::Text(value.to_owned()))),
            None => (1, None),
        };
        match order_by.key_type {
            KeyType::Metric => match run.metric(&order_by.key) {
                Some(StoredMetric::Number(value)) => (0, Some(SortValue::Number(value))),
                Some(StoredMetric::NaN) => (1, Some(SortValue::Number(0.0))),
                None => (2, None),
            },
            KeyType::Param => text(run.param(&order_by.key)),
            KeyType::Tag => text(run.tag(&order_by.key)),
            KeyType::Attribute => match order_by.key.as_str() {
                "run_id" => text(Some(&run.id)),
                "run_name" => text(run.name.as_deref()),
                "status" => text(Some(&run.status)),
                "user_id" => text(Some(&run.user_id)),
                "artifact_uri" => text(Some(&run.artifact_uri)),
                "start_time" => (0, Some(SortValue::Number(run.start_time as f64))),
                "end_time" => match run.end_time {
                    Some(time) => (0, Some(SortValue::Number(time as f64))),
                    None => (1, None),
                },
                other => panic!("no attribute {other}"),
            },
            KeyType::Dataset => panic!("datasets do not order"),
        }
    }

    fn evaluate(runs: &[TestRun], query: &RunQuery) -> Vec<String> {
        let stages = query.view_type.stages();
        let mut selected: Vec<&TestRun> = runs
            .iter()
            .filter(|run| {
                query
                    .experiment_ids
                    .contains(&run.experiment_id.to_string())
            })
            .filter(|run| stages.contains(&if run.deleted { "deleted" } else { "active" }))
            .filter(|run| {
                query
                    .filter
                    .iter()
                    .all(|comparison| run_matches(run, comparison))
            })
            .collect();
        let ordered_by_start = query
            .order_by
            .iter()
            .any(|clause| clause.key_type == KeyType::Attribute && clause.key == "start_time");
        selected.sort_by(|left, right| {
            for clause in &query.order_by {
                let (left_rank, left_value) = sort_value(left, clause);
                let (right_rank, right_value) = sort_value(right, clause);
                let mut ordering = left_rank.cmp(&right_rank);
                if ordering == Ordering::Equal {
                    let by_value = left_value
                        .partial_cmp(&right_value)
                        .unwrap_or(Ordering::Equal);
                    ordering = if clause.ascending {
                        by_value
                    } else {
                        by_value.reverse()
                    };
                }
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
            let by_start = if ordered_by_start {
                Ordering::Equal
            } else {
                right.start_time.cmp(&left.start_time)
            };
            by_start.then_with(|| left.id.cmp(&right.id))
        });
        selected
            .into_iter()
            .skip(query.offset)
            .take(query.max_results + 1)
            .map(|run| run.id.clone())
            .collect()
    }

    const TEXTS: &[&str] = &[
        "a", "b", "A", "ab", "a%b", "a_b", "", "É", "é", "x*y", "[a]",
    ];
    const PATTERNS: &[&str] = &[
        "a", "A", "a%", "%b", "_", "%", "a_b", "%B%", "", "a%b", "é", "É%", "x*y", "[a]", "x?y",
        "%*%",
    ];
    const RUN_IDS: &[&str] = &["r0", "r1", "r2", "r3", "r4", "r5", "r6"];

    fn pick(items: &'static [&'static str]) -> impl Strategy<Value = String> {
        prop::sample::select(items).prop_map(str::to_owned)
    }

    fn stored_metric() -> impl Strategy<Value = StoredMetric> {
        prop_oneof![
            prop::sample::select(&[-1.0, 0.0, 0.5, 1.0, 2.0, f64::MAX, -f64::MAX][..])
                .prop_map(StoredMetric::Number),
            Just(StoredMetric::NaN),
        ]
    }

    fn entries<T: std::fmt::Debug + Clone>(
        keys: &'static [&'static str],
        value: impl Strategy<Value = T>,
    ) -> impl Strategy<Value = Vec<(String, T)>> {
        prop::collection::vec(prop::option::weighted(0.6, value), keys.len()).prop_map(
            move |values| {
                keys.iter()
                    .zip(values)
                    .filter_map(|(key, value)| value.map(|value| ((*key).to_owned(), value)))
                    .collect()
            },
        )
    }

    fn test_run() -> impl Strategy<Value = TestRun> {
        (
            (
                1i64..=2,
                prop::bool::weighted(0.2),
                pick(&["RUNNING", "FINISHED", "FAILED", "KILLED"]),
            ),
            (
                pick(&["alice", "bob", "Alice"]),
                0i64..4,
                prop::option::weighted(0.7, 0i64..4),
            ),
            (
                prop::option::weighted(0.8, pick(TEXTS)),
                prop::option::weighted(0.8, pick(TEXTS)),
            ),
            entries(&["m1", "m2"], stored_metric()),
            entries(&["p1", "p2"], pick(TEXTS)),
            entries(&["t1", "t2"], pick(TEXTS)),
            prop::collection::btree_map(
                0usize..DATASETS.len(),
                prop::option::of(pick(&["train", "eval", "Train"])),
                0..3,
            ),
        )
            .prop_map(
                |(
                    (experiment_id, deleted, status),
                    (user_id, start_time, end_time),
                    (name, name_tag),
                    metrics,
                    params,
                    tags,
                    inputs,
                )| {
                    TestRun {
                        id: String::new(),
                        experiment_id,
                        deleted,
                        name,
                        name_tag,
                        user_id,
                        status,
                        start_time,
                        end_time,
                        artifact_uri: String::new(),
                        metrics,
                        params,
                        tags,
                        inputs: inputs.into_iter().collect(),
                    }
                },
            )
    }

    fn test_runs() -> impl Strategy<Value = Vec<TestRun>> {
        prop::collection::vec(test_run(), 1..RUN_IDS.len()).prop_map(|mut runs| {
            for (index, run) in runs.iter_mut().enumerate() {
                run.id = RUN_IDS[index].to_owned();
                run.artifact_uri = format!(
                    "mlflow-artifacts:/{}/{}/artifacts",
                    run.experiment_id, run.id
                );
            }
            runs
        })
    }

    fn comparison() -> impl Strategy<Value = Comparison> {
        let numeric = prop::sample::select(
            &[
                Comparator::Eq,
                Comparator::NotEq,
                Comparator::Gt,
                Comparator::Ge,
                Comparator::Lt,
                Comparator::Le,
            ][..],
        );
        let string = prop::sample::select(
            &[
                Comparator::Eq,
                Comparator::NotEq,
                Comparator::Like,
                Comparator::ILike,
            ][..],
        );
        let in_list = prop::sample::select(&[Comparator::In, Comparator::NotIn][..]);
        let make = |key_type, key: String, comparator, value| Comparison {
            key_type,
            key,
            comparator,
            value,
        };
        prop_oneof![
            (
                pick(&["m1", "m2", "m3"]),
                numeric.clone(),
                prop::sample::select(&[-1.0, 0.0, 0.5, 1.0, 1e308, -1e308, 2.0][..])
            )
                .prop_map(move |(key, comparator, number)| make(
                    KeyType::Metric,
                    key,
                    comparator,
                    Value::Number(number)
                )),
            (
                prop::sample::select(&[KeyType::Param, KeyType::Tag][..]),
                pick(&["p1", "p2", "t1", "t2", "x"]),
                string.clone(),
                pick(PATTERNS)
            )
                .prop_map(move |(key_type, key, comparator, text)| make(
                    key_type,
                    key,
                    comparator,
                    Value::String(text)
                )),
            (
                prop::sample::select(&[KeyType::Param, KeyType::Tag][..]),
                pick(&["p1", "p2", "t1", "t2", "mlflow.runName"]),
                prop::sample::select(&[Comparator::IsNull, Comparator::IsNotNull][..])
            )
                .prop_map(move |(key_type, key, comparator)| make(
                    key_type,
                    key,
                    comparator,
                    Value::Null
                )),
            (
                pick(&["status", "user_id", "run_name", "artifact_uri", "run_id"]),
                string.clone(),
                pick(&["FINISHED", "%ED", "%ing", "alice", "A%", "a", "%a%", "r1", "%/r2/%"])
            )
                .prop_map(move |(key, comparator, text)| make(
                    KeyType::Attribute,
                    key,
                    comparator,
                    Value::String(text)
                )),
            (in_list.clone(), prop::sample::subsequence(RUN_IDS, 1..4)).prop_map(
                move |(comparator, ids)| make(
                    KeyType::Attribute,
                    "run_id".to_owned(),
                    comparator,
                    Value::List(ids.iter().map(|id| (*id).to_owned()).collect())
                )
            ),
            (
                pick(&["start_time", "end_time"]),
                numeric,
                prop::sample::select(&[-1.0, 0.0, 1.0, 2.0, 2.5, 4.0][..])
            )
                .prop_map(move |(key, comparator, number)| make(
                    KeyType::Attribute,
                    key,
                    comparator,
                    Value::Number(number)
                )),
            (
                pick(&["name", "digest", "context"]),
                string,
                pick(&["iris", "Iris", "wine", "i%", "%E", "d1", "d_", "train", "eval", "T%"])
            )
                .prop_map(move |(key, comparator, text)| make(
                    KeyType::Dataset,
                    key,
                    comparator,
                    Value::String(text)
                )),
            (
                pick(&["name", "digest", "context"]),
                in_list,
                prop::sample::subsequence(
                    &["iris", "Iris", "wine", "d1", "d3", "train", "eval"][..],
                    1..3
                )
            )
                .prop_map(move |(key, comparator, items)| make(
                    KeyType::Dataset,
                    key,
                    comparator,
                    Value::List(items.iter().map(|item| (*item).to_owned()).collect())
                )),
        ]
    }

    fn order_by() -> impl Strategy<Value = OrderBy> {
        let keys: &'static [(KeyType, &'static str)] = &[
            (KeyType::Metric, "m1"),
            (KeyType::Metric, "m2"),
            (KeyType::Metric, "m3"),
            (KeyType::Param, "p1"),
            (KeyType::Tag, "t1"),
            (KeyType::Tag, "mlflow.runName"),
            (KeyType::Attribute, "run_id"),
            (KeyType::Attribute, "run_name"),
            (KeyType::Attribute, "status"),
            (KeyType::Attribute, "user_id"),
            (KeyType::Attribute, "start_time"),
            (KeyType::Attribute, "end_time"),
        ];
        (prop::sample::select(keys), any::<bool>()).prop_map(|((key_type, key), ascending)| {
            OrderBy {
                key_type,
                key: key.to_owned(),
                ascending,
            }
        })
    }

    fn run_query_strategy() -> impl Strategy<Value = RunQuery> {
        (
            prop::collection::vec(comparison(), 0..4),
            prop::collection::vec(order_by(), 0..3),
            prop::sample::select(&[ViewType::ActiveOnly, ViewType::DeletedOnly, ViewType::All][..]),
            prop::sample::subsequence(&["1", "2"][..], 0..=2),
            0usize..8,
            0usize..4,
        )
            .prop_map(
                |(filter, mut order_by, view_type, experiment_ids, max_results, offset)| {
                    let mut seen = Vec::new();
                    order_by.retain(|clause| {
                        let identity = (clause.key_type, clause.key.clone());
                        let fresh = !seen.contains(&identity);
                        seen.push(identity);
                        fresh
                    });
                    RunQuery {
                        experiment_ids: experiment_ids.iter().map(|id| (*id).to_owned()).collect(),
                        filter,
                        order_by,
                        view_type,
                        max_results,
                        offset,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn sql_search_matches_naive_evaluator(runs in test_runs(), queries in prop::collection::vec(run_query_strategy(), 1..8)) {
            block_on(async {
                let mut connection = database(&runs).await;
                for query in &queries {
                    // Through the text grammar too: the filter the client would send parses to the same query.
                    let text = render_filter(&query.filter);
                    prop_assert_eq!(&parse_run_filter(&text).unwrap(), &query.filter, "{}", text);
                    let actual = search_runs(&mut connection, query).await.unwrap();
                    let expected = evaluate(&runs, query);
                    prop_assert_eq!(actual, expected, "filter {:?} order_by {:?} view {:?} experiments {:?} max {} offset {}",
                        text, query.order_by.iter().map(ToString::to_string).collect::<Vec<_>>(), query.view_type,
                        query.experiment_ids, query.max_results, query.offset);
                }
                Ok(())
            })?;
        }
    }
}
