//! Trace search compiled to one `SELECT trace_info.request_id` on MLflow's tables.
//!
//! Like `search.rs`, the statement is a sea-query builder, so it renders for SQLite, PostgreSQL and
//! MySQL and every value from the request is bound. It selects one page of ids (`max_results + 1`
//! rows, the extra one telling that another page follows); the caller loads the traces by id.
//!
//! # Semantics (those of MLflow 3.17's `SqlAlchemyStore.search_traces`)
//!
//! - Only traces of the requested experiments.
//! - A tag or metadata comparison needs the trace to have the key; `IS NULL` means it has not.
//!   `mlflow.traceName` and `mlflow.trace.session` compare their `trace_info` columns.
//! - `run_id = X` matches traces made in the run (metadata `mlflow.sourceRun`) and traces linked to it
//!   (`entity_associations`).
//! - A span comparison matches when some span of the trace matches; `span.attributes.k LIKE 'v'` looks
//!   for `"k"v` in the span's JSON, as MLflow does.
//! - An assessment comparison matches a valid assessment of that kind and name; `<`, `<=`, `>`, `>=`
//!   compare numeric values only, `=` and `!=` the JSON value (a string with or without its quotes).
//! - `LIKE` is case-sensitive (a `GLOB` on SQLite) and `ILIKE` case-insensitive; `RLIKE` is a regular
//!   expression search: `~` on PostgreSQL, `REGEXP` on MySQL and on SQLite (whose `REGEXP` function the
//!   store registers, as MLflow does).
//! - Order: the `order_by` items (missing values last), then `timestamp_ms DESC` and `request_id ASC`
//!   unless ordered already.

use crate::search::{string_comparison, Dialect};
use ferroflow_core::filter::{Comparator, Value};
use ferroflow_core::trace_filter::{
    FilterValue, Operator, SpanField, TraceColumn, TraceCondition, TraceOrderKey,
};
use ferroflow_core::traces::TraceQuery;
use ferroflow_core::{Error, Result};
use sea_query::{
    Alias, BinOper, Cond, Expr, Func, Iden, Order, Query, SelectStatement, SimpleExpr,
};

#[derive(Iden, Clone, Copy)]
pub(crate) enum TraceInfo {
    Table,
    RequestId,
    ExperimentId,
    TimestampMs,
    ExecutionTimeMs,
    Status,
    ClientRequestId,
    TraceName,
    SessionId,
}

#[derive(Iden, Clone, Copy)]
enum TraceTags {
    Table,
    RequestId,
    Key,
    Value,
}

#[derive(Iden, Clone, Copy)]
enum TraceRequestMetadata {
    Table,
    RequestId,
    Key,
    Value,
}

#[derive(Iden, Clone, Copy)]
enum Spans {
    Table,
    TraceId,
    Name,
    Type,
    Status,
    Content,
}

#[derive(Iden, Clone, Copy)]
enum Assessments {
    Table,
    TraceId,
    Name,
    AssessmentType,
    Value,
    Valid,
    AggregateValue,
    IsNumericValue,
}

#[derive(Iden, Clone, Copy)]
enum EntityAssociations {
    Table,
    SourceType,
    SourceId,
    DestinationType,
    DestinationId,
}

fn unsupported(operator: Operator, what: &str) -> Error {
    Error::invalid_parameter(format!(
        "Invalid comparator '{}' for {what}",
        operator.as_str()
    ))
}

/// The `SELECT trace_info.request_id` of one page of a trace search.
pub fn trace_search_statement(query: &TraceQuery, dialect: Dialect) -> Result<SelectStatement> {
    let mut statement = Query::select();
    statement
        .column((TraceInfo::Table, TraceInfo::RequestId))
        .from(TraceInfo::Table)
        .and_where(
            Expr::col((TraceInfo::Table, TraceInfo::ExperimentId))
                .is_in(query.experiment_ids.iter().copied()),
        );
    for condition in &query.filter {
        statement.and_where(condition_of(condition, dialect)?);
    }
    let mut ordered_timestamp = false;
    let mut ordered_request_id = false;
    for order_by in &query.order_by {
        let direction = if order_by.ascending {
            Order::Asc
        } else {
            Order::Desc
        };
        let (expression, nullable) = match &order_by.key {
            TraceOrderKey::Column(column) => {
                ordered_timestamp |= *column == TraceColumn::TimestampMs;
                ordered_request_id |= *column == TraceColumn::RequestId;
                let nullable = matches!(
                    column,
                    TraceColumn::ExecutionTimeMs
                        | TraceColumn::ClientRequestId
                        | TraceColumn::TraceName
                        | TraceColumn::SessionId
                );
                (column_expr(*column), nullable)
            }
            TraceOrderKey::Tag(key) => (
                key_value_subquery(
                    TraceTags::Table,
                    TraceTags::RequestId,
                    TraceTags::Key,
                    TraceTags::Value,
                    key,
                ),
                true,
            ),
            TraceOrderKey::Metadata(key) => (
                key_value_subquery(
                    TraceRequestMetadata::Table,
                    TraceRequestMetadata::RequestId,
                    TraceRequestMetadata::Key,
                    TraceRequestMetadata::Value,
                    key,
                ),
                true,
            ),
        };
        if nullable {
            statement.order_by_expr(
                Expr::case(Expr::expr(expression.clone()).is_null(), 1)
                    .finally(0)
                    .into(),
                Order::Asc,
            );
        }
        statement.order_by_expr(expression, direction);
    }
    if !ordered_timestamp {
        statement.order_by((TraceInfo::Table, TraceInfo::TimestampMs), Order::Desc);
    }
    if !ordered_request_id {
        statement.order_by((TraceInfo::Table, TraceInfo::RequestId), Order::Asc);
    }
    statement
        .limit(
            u64::try_from(query.max_results)
                .unwrap_or(u64::MAX)
                .saturating_add(1),
        )
        .offset(u64::try_from(query.offset).unwrap_or(u64::MAX));
    Ok(statement)
}

fn column_expr(column: TraceColumn) -> SimpleExpr {
    let col = |name: TraceInfo| Expr::col((TraceInfo::Table, name)).into();
    match column {
        TraceColumn::TimestampMs => col(TraceInfo::TimestampMs),
        TraceColumn::ExecutionTimeMs => col(TraceInfo::ExecutionTimeMs),
        TraceColumn::EndTimeMs => {
            Expr::col((TraceInfo::Table, TraceInfo::TimestampMs)).add(Func::coalesce([
                Expr::col((TraceInfo::Table, TraceInfo::ExecutionTimeMs)).into(),
                Expr::val(0i64).into(),
            ]))
        }
        TraceColumn::Status => col(TraceInfo::Status),
        TraceColumn::RequestId => col(TraceInfo::RequestId),
        TraceColumn::ClientRequestId => col(TraceInfo::ClientRequestId),
        TraceColumn::TraceName => col(TraceInfo::TraceName),
        TraceColumn::SessionId => col(TraceInfo::SessionId),
        TraceColumn::ExperimentId => col(TraceInfo::ExperimentId),
    }
}

/// `(SELECT value FROM <table> WHERE <table>.request_id = trace_info.request_id AND key = ?)`.
fn key_value_subquery<T: Iden + Copy + 'static>(
    table: T,
    request_id: T,
    key_column: T,
    value_column: T,
    key: &str,
) -> SimpleExpr {
    let mut subquery = Query::select();
    subquery
        .column((table, value_column))
        .from(table)
        .and_where(Expr::col((table, request_id)).equals((TraceInfo::Table, TraceInfo::RequestId)))
        .and_where(Expr::col((table, key_column)).eq(key));
    SimpleExpr::SubQuery(None, Box::new(subquery.into_sub_query_statement()))
}

/// A number as a bound value: integral values bind as integers so BIGINT columns compare exactly.
fn number_value(number: f64) -> sea_query::Value {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if number.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&number) {
        sea_query::Value::BigInt(Some(number as i64))
    } else {
        sea_query::Value::Double(Some(number))
    }
}

/// `column <op> value` for the string operators, `RLIKE` included.
fn string_condition(
    column: SimpleExpr,
    operator: Operator,
    value: &FilterValue,
    dialect: Dialect,
    what: &str,
) -> Result<SimpleExpr> {
    let comparator = match operator {
        Operator::Eq => Comparator::Eq,
        Operator::NotEq => Comparator::NotEq,
        Operator::Like => Comparator::Like,
        Operator::ILike => Comparator::ILike,
        Operator::In => Comparator::In,
        Operator::NotIn => Comparator::NotIn,
        Operator::IsNull => return Ok(Expr::expr(column).is_null()),
        Operator::IsNotNull => return Ok(Expr::expr(column).is_not_null()),
        Operator::RLike => {
            let FilterValue::String(pattern) = value else {
                return Err(unsupported(operator, what));
            };
            return match dialect {
                Dialect::Postgres => {
                    Ok(Expr::expr(column).binary(BinOper::Custom("~"), pattern.as_str()))
                }
                Dialect::MySql => Ok(Expr::cust_with_exprs(
                    "BINARY ? REGEXP ?",
                    [column, Expr::val(pattern.as_str()).into()],
                )),
                Dialect::Sqlite => {
                    Ok(Expr::expr(column).binary(BinOper::Custom("REGEXP"), pattern.as_str()))
                }
            };
        }
        Operator::Gt | Operator::Ge | Operator::Lt | Operator::Le => {
            return Err(unsupported(operator, what))
        }
    };
    let value = match value {
        FilterValue::String(text) => Value::String(text.clone()),
        FilterValue::List(items) => Value::List(items.clone()),
        FilterValue::Number(_) | FilterValue::None => return Err(unsupported(operator, what)),
    };
    string_comparison(column, comparator, &value, dialect)
        .ok_or_else(|| unsupported(operator, what))
}

fn numeric_condition(
    column: SimpleExpr,
    operator: Operator,
    number: f64,
    what: &str,
) -> Result<SimpleExpr> {
    let value = number_value(number);
    let column = Expr::expr(column);
    Ok(match operator {
        Operator::Eq => column.eq(value),
        Operator::NotEq => column.ne(value),
        Operator::Gt => column.gt(value),
        Operator::Ge => column.gte(value),
        Operator::Lt => column.lt(value),
        Operator::Le => column.lte(value),
        other => return Err(unsupported(other, what)),
    })
}

/// `EXISTS (SELECT 1 FROM <table> WHERE <table>.<trace column> = trace_info.request_id AND ...)`.
fn exists_in<T: Iden + Copy + 'static>(
    table: T,
    trace_column: T,
    conditions: Vec<SimpleExpr>,
) -> SimpleExpr {
    let mut subquery = Query::select();
    subquery.expr(Expr::cust("1")).from(table).and_where(
        Expr::col((table, trace_column)).equals((TraceInfo::Table, TraceInfo::RequestId)),
    );
    for condition in conditions {
        subquery.and_where(condition);
    }
    Expr::exists(subquery)
}

/// A key-value table of traces: the table, its trace id, key and value columns.
type KeyValueTable<T> = (T, T, T, T);

fn key_value_condition<T: Iden + Copy + 'static>(
    (table, request_id, key_column, value_column): KeyValueTable<T>,
    key: &str,
    operator: Operator,
    value: &FilterValue,
    dialect: Dialect,
) -> Result<SimpleExpr> {
    let key_match = Expr::col((table, key_column)).eq(key);
    match operator {
        Operator::IsNull => Ok(exists_in(table, request_id, vec![key_match]).not()),
        Operator::IsNotNull => Ok(exists_in(table, request_id, vec![key_match])),
        _ => {
            let value_match = string_condition(
                Expr::col((table, value_column)).into(),
                operator,
                value,
                dialect,
                key,
            )?;
            Ok(exists_in(table, request_id, vec![key_match, value_match]))
        }
    }
}

fn association_exists(destination_type: &str, destination_id: &str) -> SimpleExpr {
    let mut subquery = Query::select();
    subquery
        .expr(Expr::cust("1"))
        .from(EntityAssociations::Table)
        .and_where(
            Expr::col((EntityAssociations::Table, EntityAssociations::SourceType)).eq("trace"),
        )
        .and_where(
            Expr::col((EntityAssociations::Table, EntityAssociations::SourceId))
                .equals((TraceInfo::Table, TraceInfo::RequestId)),
        )
        .and_where(
            Expr::col((
                EntityAssociations::Table,
                EntityAssociations::DestinationType,
            ))
            .eq(destination_type),
        )
        .and_where(
            Expr::col((EntityAssociations::Table, EntityAssociations::DestinationId))
                .eq(destination_id),
        );
    Expr::exists(subquery)
}

/// The literal text of a filter value, as MLflow compares JSON values.
fn literal_text(value: &FilterValue) -> Option<String> {
    match value {
        FilterValue::String(text) => Some(text.clone()),
        FilterValue::Number(number) => Some(ferroflow_core::trace_json::python_float(*number)),
        FilterValue::List(_) | FilterValue::None => None,
    }
}

fn condition_of(condition: &TraceCondition, dialect: Dialect) -> Result<SimpleExpr> {
    match condition {
        TraceCondition::Column {
            column,
            operator,
            value,
        } => {
            if column.is_numeric() {
                let FilterValue::Number(number) = value else {
                    return Err(unsupported(*operator, "a numeric attribute"));
                };
                numeric_condition(
                    column_expr(*column),
                    *operator,
                    *number,
                    "a numeric attribute",
                )
            } else {
                string_condition(
                    column_expr(*column),
                    *operator,
                    value,
                    dialect,
                    "an attribute",
                )
            }
        }
        TraceCondition::Tag {
            key,
            operator,
            value,
        } => key_value_condition(
            (
                TraceTags::Table,
                TraceTags::RequestId,
                TraceTags::Key,
                TraceTags::Value,
            ),
            key,
            *operator,
            value,
            dialect,
        ),
        TraceCondition::Metadata {
            key,
            operator,
            value,
        } => key_value_condition(
            (
                TraceRequestMetadata::Table,
                TraceRequestMetadata::RequestId,
                TraceRequestMetadata::Key,
                TraceRequestMetadata::Value,
            ),
            key,
            *operator,
            value,
            dialect,
        ),
        TraceCondition::RunId(run_id) => Ok(Cond::any()
            .add(exists_in(
                TraceRequestMetadata::Table,
                TraceRequestMetadata::RequestId,
                vec![
                    Expr::col((TraceRequestMetadata::Table, TraceRequestMetadata::Key))
                        .eq(ferroflow_core::trace_filter::SOURCE_RUN_METADATA),
                    Expr::col((TraceRequestMetadata::Table, TraceRequestMetadata::Value))
                        .eq(run_id.as_str()),
                ],
            ))
            .add(association_exists("run", run_id))
            .into()),
        TraceCondition::Prompt(prompt) => Ok(association_exists("prompt_version", prompt)),
        TraceCondition::Span {
            field,
            operator,
            value,
        } => {
            let span_condition = match field {
                SpanField::Name => string_condition(
                    Expr::col((Spans::Table, Spans::Name)).into(),
                    *operator,
                    value,
                    dialect,
                    "span.name",
                )?,
                SpanField::Type => string_condition(
                    Expr::col((Spans::Table, Spans::Type)).into(),
                    *operator,
                    value,
                    dialect,
                    "span.type",
                )?,
                SpanField::Status => string_condition(
                    Expr::col((Spans::Table, Spans::Status)).into(),
                    *operator,
                    value,
                    dialect,
                    "span.status",
                )?,
                SpanField::Content => string_condition(
                    Expr::col((Spans::Table, Spans::Content)).into(),
                    *operator,
                    value,
                    dialect,
                    "span.content",
                )?,
                SpanField::Attribute(name) => {
                    let FilterValue::String(text) = value else {
                        return Err(unsupported(*operator, "span attributes"));
                    };
                    let pattern = match operator {
                        Operator::RLike => {
                            let (body, prefix) = match text.strip_prefix('^') {
                                Some(body) => (body, "\"\\\\\""),
                                None => (text.as_str(), "\"\\\\\".*"),
                            };
                            let (body, suffix) = match body.strip_suffix('$') {
                                Some(body) => (body, "\\\\\""),
                                None => (body, ""),
                            };
                            format!("\"{name}\": {prefix}{body}{suffix}")
                        }
                        Operator::In | Operator::NotIn => {
                            return Err(unsupported(*operator, "span attributes"))
                        }
                        _ => format!("%\"{name}\"{text}%"),
                    };
                    string_condition(
                        Expr::col((Spans::Table, Spans::Content)).into(),
                        *operator,
                        &FilterValue::String(pattern),
                        dialect,
                        "span attributes",
                    )?
                }
            };
            Ok(exists_in(
                Spans::Table,
                Spans::TraceId,
                vec![span_condition],
            ))
        }
        TraceCondition::Assessment {
            kind,
            name,
            operator,
            value,
        } => {
            let mut conditions = vec![
                Expr::col((Assessments::Table, Assessments::AssessmentType)).eq(kind.as_str()),
                Expr::col((Assessments::Table, Assessments::Name)).eq(name.as_str()),
                Expr::col((Assessments::Table, Assessments::Valid)).eq(true),
            ];
            let value_column = || Expr::col((Assessments::Table, Assessments::Value));
            match operator {
                Operator::IsNull => {
                    return Ok(
                        exists_in(Assessments::Table, Assessments::TraceId, conditions).not(),
                    )
                }
                Operator::IsNotNull => {}
                Operator::Gt | Operator::Ge | Operator::Lt | Operator::Le => {
                    let FilterValue::Number(number) = value else {
                        return Err(unsupported(*operator, "a non-numeric assessment value"));
                    };
                    conditions.push(
                        Expr::col((Assessments::Table, Assessments::IsNumericValue)).eq(true),
                    );
                    conditions.push(numeric_condition(
                        Expr::col((Assessments::Table, Assessments::AggregateValue)).into(),
                        *operator,
                        *number,
                        "assessments",
                    )?);
                }
                Operator::Eq | Operator::NotEq => {
                    let text =
                        literal_text(value).ok_or_else(|| unsupported(*operator, "assessments"))?;
                    let mut candidates = vec![
                        text.clone(),
                        ferroflow_core::trace_json::python_json_string(&text, true),
                    ];
                    if let FilterValue::Number(number) = value {
                        if number.fract() == 0.0 {
                            candidates.push(format!("{}", *number as i64));
                        }
                    }
                    let matches = value_column().is_in(candidates);
                    conditions.push(if *operator == Operator::Eq {
                        matches
                    } else {
                        matches.not()
                    });
                }
                Operator::Like | Operator::ILike | Operator::RLike => {
                    conditions.push(string_condition(
                        value_column().into(),
                        *operator,
                        value,
                        dialect,
                        "assessments",
                    )?);
                }
                Operator::In | Operator::NotIn => {
                    return Err(unsupported(*operator, "assessments"))
                }
            }
            Ok(exists_in(
                Assessments::Table,
                Assessments::TraceId,
                conditions,
            ))
        }
        TraceCondition::Analytics {
            columns,
            operator,
            expected,
        } => {
            let column = |name: &str| Expr::col((TraceInfo::Table, Alias::new(name)));
            let present = columns
                .iter()
                .fold(Cond::any(), |any, name| any.add(column(name).is_not_null()));
            let matches: SimpleExpr = match expected {
                None => Expr::cust("1 = 0"),
                Some(values) => columns
                    .iter()
                    .zip(values)
                    .fold(Cond::all(), |all, (name, value)| match value {
                        Some(number) => all.add(column(name).eq(number_value(*number))),
                        None => all.add(column(name).is_null()),
                    })
                    .into(),
            };
            Ok(match operator {
                Operator::IsNull => SimpleExpr::from(present).not(),
                Operator::IsNotNull => present.into(),
                Operator::Eq => matches,
                _ => Cond::all().add(present).add(matches.not()).into(),
            })
        }
        TraceCondition::Issue(issue_id) => Ok(exists_in(
            Assessments::Table,
            Assessments::TraceId,
            vec![
                Expr::col((Assessments::Table, Assessments::AssessmentType)).eq("issue"),
                Expr::col((Assessments::Table, Assessments::Name)).eq(issue_id.as_str()),
            ],
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflow_core::trace_filter::{parse_trace_filter, parse_trace_order_bys};
    use sea_query::SqliteQueryBuilder;

    fn sql(filter: &str, order_by: &[&str]) -> String {
        let query = TraceQuery {
            experiment_ids: vec![1],
            filter: parse_trace_filter(filter).unwrap(),
            order_by: parse_trace_order_bys(
                &order_by
                    .iter()
                    .map(|item| (*item).to_owned())
                    .collect::<Vec<_>>(),
            )
            .unwrap(),
            max_results: 10,
            offset: 20,
        };
        trace_search_statement(&query, Dialect::Sqlite)
            .unwrap()
            .to_string(SqliteQueryBuilder)
    }

    #[test]
    fn statements() {
        let text = sql("tag.k = 'v' AND timestamp_ms > 5", &[]);
        assert!(
            text.contains("EXISTS(SELECT 1 FROM \"trace_tags\""),
            "{text}"
        );
        assert!(
            text.contains("\"trace_info\".\"timestamp_ms\" > 5"),
            "{text}"
        );
        assert!(text.ends_with("ORDER BY \"trace_info\".\"timestamp_ms\" DESC, \"trace_info\".\"request_id\" ASC LIMIT 11 OFFSET 20"), "{text}");
        let text = sql("run_id = 'r'", &["timestamp_ms ASC"]);
        assert!(text.contains("\"entity_associations\""), "{text}");
        assert!(
            text.contains(
                "ORDER BY \"trace_info\".\"timestamp_ms\" ASC, \"trace_info\".\"request_id\" ASC"
            ),
            "{text}"
        );
        assert!(sql("span.name LIKE 'in%'", &[]).contains("GLOB"));
    }

    #[test]
    fn rlike_renders_for_each_dialect() {
        let query = TraceQuery {
            experiment_ids: vec![1],
            filter: parse_trace_filter("status RLIKE '^O'").unwrap(),
            order_by: Vec::new(),
            max_results: 10,
            offset: 0,
        };
        for (dialect, operator) in [
            (Dialect::Sqlite, " REGEXP "),
            (Dialect::Postgres, " ~ "),
            (Dialect::MySql, " REGEXP "),
        ] {
            let statement = trace_search_statement(&query, dialect).unwrap();
            let text = match dialect {
                Dialect::Sqlite => statement.to_string(SqliteQueryBuilder),
                Dialect::Postgres => statement.to_string(sea_query::PostgresQueryBuilder),
                Dialect::MySql => statement.to_string(sea_query::MysqlQueryBuilder),
            };
            assert!(text.contains(operator), "{text}");
        }
    }
}
