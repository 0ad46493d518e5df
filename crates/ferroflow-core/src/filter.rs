//! The MLflow search filter and order-by grammar (filled in by the filter parser work).

use crate::error::{Error, Result};

/// What an identifier refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    Metric,
    Param,
    Tag,
    Attribute,
    Dataset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Eq,
    NotEq,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    String(String),
    List(Vec<String>),
    Null,
}

/// One `identifier comparator value` term; a filter is a conjunction of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub key_type: KeyType,
    /// For attributes, the canonical column name (`start_time` for `created`, `run_name` for `run name`).
    pub key: String,
    pub comparator: Comparator,
    pub value: Value,
}

/// One `order_by` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub key_type: KeyType,
    pub key: String,
    pub ascending: bool,
}

pub fn parse_run_filter(filter: &str) -> Result<Vec<Comparison>> {
    if filter.trim().is_empty() {
        return Ok(Vec::new());
    }
    Err(Error::invalid_parameter(format!("unsupported filter '{filter}'")))
}

pub fn parse_experiment_filter(filter: &str) -> Result<Vec<Comparison>> {
    parse_run_filter(filter)
}

pub fn parse_run_order_by(clause: &str) -> Result<OrderBy> {
    Err(Error::invalid_parameter(format!("Invalid order_by clause '{clause}'")))
}

pub fn parse_experiment_order_by(clause: &str) -> Result<OrderBy> {
    parse_run_order_by(clause)
}
