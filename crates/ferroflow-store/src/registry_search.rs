//! Registered model and model version search compiled to one `SELECT` on MLflow's registry tables.
//!
//! As in `search.rs`, the statements are sea-query builders rendered for each dialect, every value from the
//! request is bound, and one page is selected (`LIMIT max_results + 1`, so the caller knows whether another
//! page follows). They select the rows' own columns; the caller loads tags, aliases and latest versions.
//!
//! # Semantics (those of MLflow 3.17's registry `SqlAlchemyStore`)
//!
//! - Only rows of the `default` workspace; model versions in the stage `Deleted_Internal` never match.
//! - A tag comparison needs the row to have the tag (`tags.k != 'x'` skips rows without `k`).
//! - Unless the query includes prompts, rows of prompts are left out: registered models that carry the tag
//!   `mlflow.prompt.is_prompt` = `true`, and versions of any model one of whose versions carries it. The
//!   filter's own comparisons on that tag are then ignored (MLflow drops them too).
//! - String comparisons are case-sensitive except `ILIKE`, on every database (`BINARY` on MySQL, `GLOB`
//!   for `LIKE` on SQLite).

use crate::search::{string_comparison, Dialect};
use ferroflow_core::registry::{RegistryQuery, STAGE_DELETED_INTERNAL};
use ferroflow_core::registry_filter::{
    Comparator, RegistryComparison, RegistryKey, RegistryOrderKey, Value, IS_PROMPT_TAG_KEY,
};
use sea_query::{Expr, Iden, Order, Query, SelectStatement, SimpleExpr};

/// The workspace every ferroflow row belongs to (MLflow's default when workspaces are off).
pub(crate) const WORKSPACE: &str = "default";

#[derive(Iden, Clone, Copy)]
pub(crate) enum RegisteredModels {
    Table,
    Workspace,
    Name,
    CreationTime,
    LastUpdatedTime,
    Description,
}

#[derive(Iden, Clone, Copy)]
pub(crate) enum ModelVersions {
    Table,
    Workspace,
    Name,
    Version,
    CreationTime,
    LastUpdatedTime,
    Description,
    UserId,
    CurrentStage,
    Source,
    RunId,
    Status,
    StatusMessage,
    RunLink,
}

#[derive(Iden, Clone, Copy)]
enum RegisteredModelTags {
    Table,
    Workspace,
    Name,
    Key,
    Value,
}

#[derive(Iden, Clone, Copy)]
enum ModelVersionTags {
    Table,
    Workspace,
    Name,
    Version,
    Key,
    Value,
}

/// sqlx binds integers as `i64`, so limits and offsets past `i64::MAX` are clamped.
fn bindable(count: usize) -> u64 {
    u64::try_from(count)
        .unwrap_or(u64::MAX)
        .min(i64::MAX as u64)
}

fn page_limit(max_results: usize) -> u64 {
    bindable(max_results).saturating_add(1).min(i64::MAX as u64)
}

fn exact_equals(column: SimpleExpr, text: &str, dialect: Dialect) -> SimpleExpr {
    string_comparison(
        column,
        Comparator::Eq,
        &Value::String(text.to_owned()),
        dialect,
    )
    .unwrap_or_else(|| Expr::cust("1 = 0"))
}

fn is_prompt_tag(comparison: &RegistryComparison) -> bool {
    matches!(&comparison.key, RegistryKey::Tag(key) if key == IS_PROMPT_TAG_KEY)
}

/// `EXISTS (SELECT 1 FROM registered_model_tags WHERE same model AND key = ? AND value <op> ?)`.
fn model_tag_exists(
    key: &str,
    value: Option<(Comparator, &Value)>,
    dialect: Dialect,
) -> SimpleExpr {
    let mut subquery = Query::select();
    subquery
        .expr(Expr::cust("1"))
        .from(RegisteredModelTags::Table)
        .and_where(
            Expr::col((RegisteredModelTags::Table, RegisteredModelTags::Workspace))
                .equals((RegisteredModels::Table, RegisteredModels::Workspace)),
        )
        .and_where(
            Expr::col((RegisteredModelTags::Table, RegisteredModelTags::Name))
                .equals((RegisteredModels::Table, RegisteredModels::Name)),
        )
        .and_where(exact_equals(
            Expr::col((RegisteredModelTags::Table, RegisteredModelTags::Key)).into(),
            key,
            dialect,
        ));
    if let Some((comparator, value)) = value {
        subquery.and_where(
            string_comparison(
                Expr::col((RegisteredModelTags::Table, RegisteredModelTags::Value)).into(),
                comparator,
                value,
                dialect,
            )
            .unwrap_or_else(|| Expr::cust("1 = 0")),
        );
    }
    Expr::exists(subquery)
}

/// `EXISTS (SELECT 1 FROM model_version_tags WHERE <match> AND key = ? AND value <op> ?)`, matching the
/// same version, or with `any_version` any version of the same model.
fn version_tag_exists(
    key: &str,
    value: Option<(Comparator, &Value)>,
    any_version: bool,
    dialect: Dialect,
) -> SimpleExpr {
    let mut subquery = Query::select();
    subquery
        .expr(Expr::cust("1"))
        .from(ModelVersionTags::Table)
        .and_where(
            Expr::col((ModelVersionTags::Table, ModelVersionTags::Workspace))
                .equals((ModelVersions::Table, ModelVersions::Workspace)),
        )
        .and_where(
            Expr::col((ModelVersionTags::Table, ModelVersionTags::Name))
                .equals((ModelVersions::Table, ModelVersions::Name)),
        )
        .and_where(exact_equals(
            Expr::col((ModelVersionTags::Table, ModelVersionTags::Key)).into(),
            key,
            dialect,
        ));
    if !any_version {
        subquery.and_where(
            Expr::col((ModelVersionTags::Table, ModelVersionTags::Version))
                .equals((ModelVersions::Table, ModelVersions::Version)),
        );
    }
    if let Some((comparator, value)) = value {
        subquery.and_where(
            string_comparison(
                Expr::col((ModelVersionTags::Table, ModelVersionTags::Value)).into(),
                comparator,
                value,
                dialect,
            )
            .unwrap_or_else(|| Expr::cust("1 = 0")),
        );
    }
    Expr::exists(subquery)
}

fn direction(ascending: bool) -> Order {
    if ascending {
        Order::Asc
    } else {
        Order::Desc
    }
}

/// One page of registered models: `SELECT name, creation_time, last_updated_time, description`.
pub fn registered_model_search_statement(
    query: &RegistryQuery,
    dialect: Dialect,
) -> SelectStatement {
    let mut statement = Query::select();
    statement
        .columns([
            (RegisteredModels::Table, RegisteredModels::Name),
            (RegisteredModels::Table, RegisteredModels::CreationTime),
            (RegisteredModels::Table, RegisteredModels::LastUpdatedTime),
            (RegisteredModels::Table, RegisteredModels::Description),
        ])
        .from(RegisteredModels::Table)
        .and_where(Expr::col((RegisteredModels::Table, RegisteredModels::Workspace)).eq(WORKSPACE));
    for comparison in &query.filter {
        if !query.include_prompts && is_prompt_tag(comparison) {
            continue;
        }
        let condition = match &comparison.key {
            RegistryKey::Tag(key) => model_tag_exists(
                key,
                Some((comparison.comparator, &comparison.value)),
                dialect,
            ),
            // The parser allows only `name` on registered models.
            RegistryKey::Name
            | RegistryKey::RunId
            | RegistryKey::SourcePath
            | RegistryKey::VersionNumber => string_comparison(
                Expr::col((RegisteredModels::Table, RegisteredModels::Name)).into(),
                comparison.comparator,
                &comparison.value,
                dialect,
            )
            .unwrap_or_else(|| Expr::cust("1 = 0")),
        };
        statement.and_where(condition);
    }
    if !query.include_prompts {
        statement.and_where(
            model_tag_exists(
                IS_PROMPT_TAG_KEY,
                Some((Comparator::Eq, &Value::String("true".to_owned()))),
                dialect,
            )
            .not(),
        );
    }
    for item in &query.order_by {
        let column = match item.key {
            RegistryOrderKey::Name => RegisteredModels::Name,
            RegistryOrderKey::CreationTimestamp => RegisteredModels::CreationTime,
            RegistryOrderKey::LastUpdatedTimestamp | RegistryOrderKey::VersionNumber => {
                RegisteredModels::LastUpdatedTime
            }
        };
        statement.order_by((RegisteredModels::Table, column), direction(item.ascending));
    }
    statement
        .limit(page_limit(query.max_results))
        .offset(bindable(query.offset));
    statement
}

/// The columns of a model version row, in the order [`model_version_search_statement`] selects them.
pub(crate) const MODEL_VERSION_COLUMNS: [ModelVersions; 12] = [
    ModelVersions::Name,
    ModelVersions::Version,
    ModelVersions::CreationTime,
    ModelVersions::LastUpdatedTime,
    ModelVersions::Description,
    ModelVersions::UserId,
    ModelVersions::CurrentStage,
    ModelVersions::Source,
    ModelVersions::RunId,
    ModelVersions::Status,
    ModelVersions::StatusMessage,
    ModelVersions::RunLink,
];

/// One page of model versions: every column of `model_versions` the wire shows.
pub fn model_version_search_statement(query: &RegistryQuery, dialect: Dialect) -> SelectStatement {
    let mut statement = Query::select();
    statement
        .columns(
            MODEL_VERSION_COLUMNS
                .iter()
                .map(|column| (ModelVersions::Table, *column)),
        )
        .from(ModelVersions::Table)
        .and_where(Expr::col((ModelVersions::Table, ModelVersions::Workspace)).eq(WORKSPACE))
        .and_where(
            Expr::col((ModelVersions::Table, ModelVersions::CurrentStage))
                .ne(STAGE_DELETED_INTERNAL),
        );
    for comparison in &query.filter {
        if !query.include_prompts && is_prompt_tag(comparison) {
            continue;
        }
        let string_column = |column: ModelVersions| {
            string_comparison(
                Expr::col((ModelVersions::Table, column)).into(),
                comparison.comparator,
                &comparison.value,
                dialect,
            )
            .unwrap_or_else(|| Expr::cust("1 = 0"))
        };
        let condition = match &comparison.key {
            RegistryKey::Tag(key) => version_tag_exists(
                key,
                Some((comparison.comparator, &comparison.value)),
                false,
                dialect,
            ),
            RegistryKey::Name => string_column(ModelVersions::Name),
            RegistryKey::RunId => string_column(ModelVersions::RunId),
            RegistryKey::SourcePath => string_column(ModelVersions::Source),
            RegistryKey::VersionNumber => {
                let column = Expr::col((ModelVersions::Table, ModelVersions::Version));
                match (comparison.comparator, &comparison.value) {
                    (comparator, Value::Number(number)) => {
                        // The parser only gives integral numbers here.
                        let number = *number as i64;
                        match comparator {
                            Comparator::Eq => column.eq(number),
                            Comparator::NotEq => column.ne(number),
                            Comparator::Lt => column.lt(number),
                            Comparator::Le => column.lte(number),
                            Comparator::Gt => column.gt(number),
                            Comparator::Ge => column.gte(number),
                            Comparator::Like
                            | Comparator::ILike
                            | Comparator::In
                            | Comparator::NotIn
                            | Comparator::IsNull
                            | Comparator::IsNotNull => Expr::cust("1 = 0"),
                        }
                    }
                    _ => Expr::cust("1 = 0"),
                }
            }
        };
        statement.and_where(condition);
    }
    if !query.include_prompts {
        statement.and_where(
            version_tag_exists(
                IS_PROMPT_TAG_KEY,
                Some((Comparator::Eq, &Value::String("true".to_owned()))),
                true,
                dialect,
            )
            .not(),
        );
    }
    for item in &query.order_by {
        let column = match item.key {
            RegistryOrderKey::Name => ModelVersions::Name,
            RegistryOrderKey::VersionNumber => ModelVersions::Version,
            RegistryOrderKey::CreationTimestamp => ModelVersions::CreationTime,
            RegistryOrderKey::LastUpdatedTimestamp => ModelVersions::LastUpdatedTime,
        };
        statement.order_by((ModelVersions::Table, column), direction(item.ascending));
    }
    statement
        .limit(page_limit(query.max_results))
        .offset(bindable(query.offset));
    statement
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflow_core::registry_filter::{
        parse_model_version_filter, parse_model_version_order_by, parse_registered_model_filter,
        parse_registered_model_order_by,
    };
    use sea_query::SqliteQueryBuilder;

    #[test]
    fn registered_model_search_binds_values_and_hides_prompts() {
        let query = RegistryQuery {
            filter: parse_registered_model_filter(
                "name LIKE 'secret-1%' AND tags.t = 'secret-2' AND tag.`mlflow.prompt.is_prompt` != 'true'",
            )
            .unwrap(),
            order_by: parse_registered_model_order_by(&[]).unwrap(),
            include_prompts: false,
            max_results: 10,
            offset: 5,
        };
        let statement = registered_model_search_statement(&query, Dialect::Sqlite);
        let (sql, values) =
            sea_query_binder::SqlxBinder::build_sqlx(&statement, SqliteQueryBuilder);
        assert!(!sql.contains("secret"), "{sql}");
        assert!(sql.contains("NOT EXISTS"), "{sql}");
        assert!(
            sql.ends_with("ORDER BY \"registered_models\".\"name\" ASC LIMIT ? OFFSET ?"),
            "{sql}"
        );
        // workspace, name glob, tag key and value, prompt key and value, limit, offset.
        assert_eq!(values.0 .0.len(), 8, "{sql}");
    }

    #[test]
    fn model_version_search_skips_deleted_versions() {
        let query = RegistryQuery {
            filter: parse_model_version_filter("name = 'm' AND version_number > 1").unwrap(),
            order_by: parse_model_version_order_by(&[]).unwrap(),
            include_prompts: true,
            max_results: 10,
            offset: 0,
        };
        let sql =
            model_version_search_statement(&query, Dialect::Sqlite).to_string(SqliteQueryBuilder);
        assert!(
            sql.contains("\"current_stage\" <> 'Deleted_Internal'"),
            "{sql}"
        );
        assert!(sql.contains("\"version\" > 1"), "{sql}");
        assert!(
            sql.contains(
                "ORDER BY \"model_versions\".\"last_updated_time\" DESC, \"model_versions\".\"name\" ASC, \
                 \"model_versions\".\"version\" DESC"
            ),
            "{sql}"
        );
        assert!(!sql.contains("EXISTS"), "{sql}");
    }
}
