//! Search compiled to SQL (being written by the filter work; this stub lets the store compile).

use ferroflow_core::model::{ExperimentQuery, RunQuery};
use sea_query::{Alias, Expr, Order, Query, SelectStatement};

pub fn run_search_statement(query: &RunQuery) -> ferroflow_core::Result<SelectStatement> {
    let mut statement = Query::select();
    statement
        .column(Alias::new("run_uuid"))
        .from(Alias::new("runs"))
        .and_where(Expr::col(Alias::new("experiment_id")).is_in(query.experiment_ids.iter().filter_map(|id| id.parse::<i64>().ok())))
        .and_where(Expr::col(Alias::new("lifecycle_stage")).is_in(query.view_type.stages().iter().copied()))
        .order_by(Alias::new("start_time"), Order::Desc)
        .order_by(Alias::new("run_uuid"), Order::Asc)
        .limit(query.max_results as u64 + 1)
        .offset(query.offset as u64);
    Ok(statement)
}

pub fn experiment_search_statement(query: &ExperimentQuery) -> ferroflow_core::Result<SelectStatement> {
    let mut statement = Query::select();
    statement
        .column(Alias::new("experiment_id"))
        .from(Alias::new("experiments"))
        .and_where(Expr::col(Alias::new("lifecycle_stage")).is_in(query.view_type.stages().iter().copied()))
        .order_by(Alias::new("creation_time"), Order::Desc)
        .order_by(Alias::new("experiment_id"), Order::Asc)
        .limit(query.max_results as u64 + 1)
        .offset(query.offset as u64);
    Ok(statement)
}
