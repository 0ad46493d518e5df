//! `AuthStore` on MLflow 3.17's basic-auth database: `users`, `roles`, `role_permissions`,
//! `user_role_assignments` (and, on user deletion, the legacy per-resource permission tables MLflow keeps
//! for rollback). It is its own database (`database_uri` of `basic_auth.ini`), so an auth database written
//! by `mlflow server --app-name basic-auth` is served as it is; an empty one gets MLflow's schema, stamped
//! in `alembic_version_auth` as MLflow's alembic does.
//!
//! SQLite only for now: PostgreSQL and MySQL auth databases are refused at start with a clear message.

use super::connection::{db_error, is_unique_violation, query, Pools, Row, Transaction};
use super::placeholders;
use super::sqlite_readers::SqliteReaders;
use super::sqlite_writer::SqliteWriter;
use crate::uri::BackendUri;
use crate::OpenError;
use async_trait::async_trait;
use ferroflow_core::auth::{
    synthetic_role_name, AuthStore, Grant, Role, RoleAssignment, RolePermission, User,
    AUTH_SCHEMA_REVISION, SYNTHETIC_ROLE_PREFIX,
};
use ferroflow_core::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

const SCHEMA: &str = include_str!("../../schema/auth_sqlite.sql");

/// The legacy per-user tables MLflow 3.17 keeps on disk (with foreign keys to `users`) and scrubs when
/// a user is deleted.
const LEGACY_PERMISSION_TABLES: [&str; 7] = [
    "experiment_permissions",
    "registered_model_permissions",
    "scorer_permissions",
    "gateway_secret_permissions",
    "gateway_endpoint_permissions",
    "gateway_model_definition_permissions",
    "workspace_permissions",
];

/// MLflow's auth tables on one database.
#[derive(Clone)]
pub struct SqlAuthStore {
    pools: Pools,
}

/// Why the auth database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AuthOpenError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(
        "the auth database {database} is on {kind}; ferroflow serves the basic-auth database on SQLite \
         only (set database_uri = sqlite:///... in the auth configuration)"
    )]
    UnsupportedBackend {
        database: String,
        kind: &'static str,
    },
    #[error(
        "the auth database {database} is at revision '{found}', but ferroflow serves MLflow 3.17's \
         (revision '{AUTH_SCHEMA_REVISION}'); upgrade it with mlflow 3.17.2 first. The database was left \
         untouched"
    )]
    UnknownRevision { database: String, found: String },
    #[error(
        "the auth database {database} has tables but no alembic_version_auth; it is not an MLflow 3.17 \
         auth database (an MLflow < 3.6 one must be upgraded by mlflow 3.17.2 first). The database was \
         left untouched"
    )]
    NotMlflow { database: String },
}

impl SqlAuthStore {
    /// Opens the auth database of `database_uri` (`sqlite:///path`), creating MLflow's schema in an empty
    /// one and refusing one at another revision.
    pub async fn open(database_uri: &str) -> std::result::Result<Self, AuthOpenError> {
        let uri = BackendUri::parse(database_uri).map_err(OpenError::from)?;
        match &uri {
            BackendUri::Sqlite { path } => Self::open_sqlite(path).await,
            BackendUri::Postgres(_) => Err(AuthOpenError::UnsupportedBackend {
                database: uri.redacted(),
                kind: "PostgreSQL",
            }),
            BackendUri::MySql(_) => Err(AuthOpenError::UnsupportedBackend {
                database: uri.redacted(),
                kind: "MySQL",
            }),
        }
    }

    async fn open_sqlite(path: &Path) -> std::result::Result<Self, AuthOpenError> {
        let display = path.display().to_string();
        let connect_error = |source| OpenError::Connect {
            database: display.clone(),
            source,
        };
        let in_memory = display == ":memory:";
        let writer = SqliteWriter::open(path).map_err(connect_error)?;
        let tables: Vec<String> = writer
            .fetch(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                Vec::new(),
                None,
            )
            .await
            .map_err(connect_error)?
            .into_iter()
            .map(|row| Row::Direct(row).get::<String>("name"))
            .collect::<Result<_>>()
            .map_err(|error| OpenError::Connect {
                database: display.clone(),
                source: sqlx::Error::Protocol(error.message),
            })?;
        if tables.is_empty() {
            let mut transaction = writer.begin().await.map_err(connect_error)?;
            for statement in SCHEMA.split(';') {
                let statement: String = statement
                    .lines()
                    .filter(|line| !line.trim_start().starts_with("--"))
                    .collect::<Vec<_>>()
                    .join("\n");
                if statement.trim().is_empty() {
                    continue;
                }
                transaction
                    .execute(&statement, Vec::new())
                    .map_err(connect_error)?;
            }
            transaction
                .execute(
                    "INSERT INTO alembic_version_auth (version_num) VALUES (?)",
                    vec![AUTH_SCHEMA_REVISION.into()],
                )
                .map_err(connect_error)?;
            transaction.commit().map_err(connect_error)?;
        } else if tables.iter().any(|table| table == "alembic_version_auth") {
            let revisions = writer
                .fetch(
                    "SELECT version_num FROM alembic_version_auth",
                    Vec::new(),
                    None,
                )
                .await
                .map_err(connect_error)?;
            let found: Vec<String> = revisions
                .into_iter()
                .filter_map(|row| Row::Direct(row).get::<String>("version_num").ok())
                .collect();
            if found != [AUTH_SCHEMA_REVISION] {
                return Err(AuthOpenError::UnknownRevision {
                    database: display,
                    found: found.join(","),
                });
            }
        } else {
            return Err(AuthOpenError::NotMlflow { database: display });
        }
        let readers = if in_memory {
            None
        } else {
            Some(SqliteReaders::open(path).map_err(connect_error)?)
        };
        Ok(Self {
            pools: Pools::Sqlite { writer, readers },
        })
    }
}

fn user_from_row(row: &Row) -> Result<User> {
    Ok(User {
        id: row.get("id")?,
        username: row.get::<Option<String>>("username")?.unwrap_or_default(),
        password_hash: row
            .get::<Option<String>>("password_hash")?
            .unwrap_or_default(),
        is_admin: row.get::<Option<bool>>("is_admin")?.unwrap_or(false),
    })
}

fn role_permission_from_row(row: &Row) -> Result<RolePermission> {
    Ok(RolePermission {
        id: row.get("id")?,
        role_id: row.get("role_id")?,
        resource_type: row.get("resource_type")?,
        resource_pattern: row.get("resource_pattern")?,
        permission: row.get("permission")?,
    })
}

const USER_COLUMNS: &str = "id, username, password_hash, is_admin";
const ROLE_COLUMNS: &str = "id, name, workspace, description";
const ROLE_PERMISSION_COLUMNS: &str = "id, role_id, resource_type, resource_pattern, permission";

/// Reads roles and attaches their permissions (one statement per 500 roles).
async fn roles_with_permissions(pools: &Pools, rows: Vec<Row>) -> Result<Vec<Role>> {
    let mut roles = Vec::with_capacity(rows.len());
    for row in &rows {
        roles.push(Role {
            id: row.get("id")?,
            name: row.get("name")?,
            workspace: row.get("workspace")?,
            description: row.get("description")?,
            permissions: Vec::new(),
        });
    }
    let ids: Vec<i64> = roles.iter().map(|role| role.id).collect();
    let mut by_role: BTreeMap<i64, Vec<RolePermission>> = BTreeMap::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT {ROLE_PERMISSION_COLUMNS} FROM role_permissions WHERE role_id IN ({}) ORDER BY id",
            placeholders(chunk.len())
        );
        let rows = pools
            .fetch_all(query(sql).bind_each(chunk.iter().copied()))
            .await
            .map_err(db_error)?;
        for row in &rows {
            let permission = role_permission_from_row(row)?;
            by_role
                .entry(permission.role_id)
                .or_default()
                .push(permission);
        }
    }
    for role in &mut roles {
        role.permissions = by_role.remove(&role.id).unwrap_or_default();
    }
    Ok(roles)
}

/// The id of the row an INSERT made (SQLite and MySQL report it).
fn inserted_id(done: &super::connection::Done) -> Result<i64> {
    done.last_insert_id
        .ok_or_else(|| Error::internal(sqlx::Error::Protocol("no inserted id".to_owned())))
}

/// The user's hidden role in `workspace`, created and assigned when missing.
async fn synthetic_role(
    transaction: &mut Transaction,
    user_id: i64,
    workspace: &str,
) -> Result<i64> {
    let name = synthetic_role_name(user_id);
    let existing = transaction
        .fetch_optional(
            query("SELECT id FROM roles WHERE workspace = ? AND name = ?")
                .bind(workspace)
                .bind(name.as_str()),
        )
        .await
        .map_err(db_error)?;
    let role_id = match existing {
        Some(row) => {
            let role_id: i64 = row.get("id")?;
            let other = transaction
                .fetch_optional(
                    query(
                        "SELECT user_id FROM user_role_assignments WHERE role_id = ? AND user_id <> ?",
                    )
                    .bind(role_id)
                    .bind(user_id),
                )
                .await
                .map_err(db_error)?;
            if let Some(other) = other {
                let other_id: i64 = other.get("user_id")?;
                return Err(Error::invalid_parameter(format!(
                    "Role '{name}' in workspace '{workspace}' collides with the reserved '__user_<id>__' \
                     synthetic namespace but is already assigned to user_id={other_id}. Rename or delete \
                     the conflicting role before granting per-user permissions."
                )));
            }
            role_id
        }
        None => {
            let done = transaction
                .execute(
                    query("INSERT INTO roles (name, workspace, description) VALUES (?, ?, NULL)")
                        .bind(name.as_str())
                        .bind(workspace),
                )
                .await
                .map_err(db_error)?;
            inserted_id(&done)?
        }
    };
    let assigned = transaction
        .fetch_optional(
            query("SELECT id FROM user_role_assignments WHERE user_id = ? AND role_id = ?")
                .bind(user_id)
                .bind(role_id),
        )
        .await
        .map_err(db_error)?;
    if assigned.is_none() {
        transaction
            .execute(
                query("INSERT INTO user_role_assignments (user_id, role_id) VALUES (?, ?)")
                    .bind(user_id)
                    .bind(role_id),
            )
            .await
            .map_err(db_error)?;
    }
    Ok(role_id)
}

/// The ids of every hidden per-user role.
async fn synthetic_role_ids(transaction: &mut Transaction) -> Result<Vec<i64>> {
    let rows = transaction
        .fetch_all(query("SELECT id, name FROM roles"))
        .await
        .map_err(db_error)?;
    let mut ids = Vec::new();
    for row in &rows {
        let name: String = row.get("name")?;
        let is_synthetic = name
            .strip_prefix(SYNTHETIC_ROLE_PREFIX)
            .and_then(|rest| rest.strip_suffix("__"))
            .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
        if is_synthetic {
            ids.push(row.get("id")?);
        }
    }
    Ok(ids)
}

#[async_trait]
impl AuthStore for SqlAuthStore {
    async fn get_user(&self, username: &str) -> Result<Option<User>> {
        let row = self
            .pools
            .fetch_optional(
                query(format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE username = ?"
                ))
                .bind(username),
            )
            .await
            .map_err(db_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn get_user_by_id(&self, user_id: i64) -> Result<Option<User>> {
        let row = self
            .pools
            .fetch_optional(
                query(format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?")).bind(user_id),
            )
            .await
            .map_err(db_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        is_admin: bool,
    ) -> Result<User> {
        let result = self
            .pools
            .execute(
                query("INSERT INTO users (username, password_hash, is_admin) VALUES (?, ?, ?)")
                    .bind(username)
                    .bind(password_hash)
                    .bind(is_admin),
            )
            .await;
        match result {
            Ok(done) => Ok(User {
                id: inserted_id(&done)?,
                username: username.to_owned(),
                password_hash: password_hash.to_owned(),
                is_admin,
            }),
            Err(error) if is_unique_violation(&error) => Err(Error::already_exists(format!(
                "User (username={username}) already exists."
            ))),
            Err(error) => Err(db_error(error)),
        }
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let rows = self
            .pools
            .fetch_all(query(format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY id"
            )))
            .await
            .map_err(db_error)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn update_user(
        &self,
        username: &str,
        password_hash: Option<&str>,
        is_admin: Option<bool>,
    ) -> Result<bool> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let found = transaction
            .fetch_optional(query("SELECT id FROM users WHERE username = ?").bind(username))
            .await
            .map_err(db_error)?
            .is_some();
        if found {
            if let Some(hash) = password_hash {
                transaction
                    .execute(
                        query("UPDATE users SET password_hash = ? WHERE username = ?")
                            .bind(hash)
                            .bind(username),
                    )
                    .await
                    .map_err(db_error)?;
            }
            if let Some(is_admin) = is_admin {
                transaction
                    .execute(
                        query("UPDATE users SET is_admin = ? WHERE username = ?")
                            .bind(is_admin)
                            .bind(username),
                    )
                    .await
                    .map_err(db_error)?;
            }
        }
        transaction.commit().await.map_err(db_error)?;
        Ok(found)
    }

    async fn delete_user(&self, username: &str) -> Result<bool> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let Some(row) = transaction
            .fetch_optional(query("SELECT id FROM users WHERE username = ?").bind(username))
            .await
            .map_err(db_error)?
        else {
            return Ok(false);
        };
        let user_id: i64 = row.get("id")?;
        let hidden_roles = transaction
            .fetch_all(
                query("SELECT id FROM roles WHERE name = ?").bind(synthetic_role_name(user_id)),
            )
            .await
            .map_err(db_error)?;
        for role in &hidden_roles {
            let role_id: i64 = role.get("id")?;
            for statement in [
                "DELETE FROM role_permissions WHERE role_id = ?",
                "DELETE FROM user_role_assignments WHERE role_id = ?",
                "DELETE FROM roles WHERE id = ?",
            ] {
                transaction
                    .execute(query(statement).bind(role_id))
                    .await
                    .map_err(db_error)?;
            }
        }
        transaction
            .execute(query("DELETE FROM user_role_assignments WHERE user_id = ?").bind(user_id))
            .await
            .map_err(db_error)?;
        for table in LEGACY_PERMISSION_TABLES {
            transaction
                .execute(query(format!("DELETE FROM {table} WHERE user_id = ?")).bind(user_id))
                .await
                .map_err(db_error)?;
        }
        transaction
            .execute(query("DELETE FROM users WHERE id = ?").bind(user_id))
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn list_grants(
        &self,
        user_id: i64,
        workspace: &str,
        resource_types: &[&str],
    ) -> Result<Vec<Grant>> {
        let mut types: Vec<&str> = resource_types.to_vec();
        types.push("workspace");
        types.sort_unstable();
        types.dedup();
        let sql = format!(
            "SELECT rp.resource_type, rp.resource_pattern, rp.permission FROM role_permissions rp \
             JOIN roles r ON r.id = rp.role_id \
             JOIN user_role_assignments a ON a.role_id = r.id \
             WHERE a.user_id = ? AND r.workspace = ? AND rp.resource_type IN ({})",
            placeholders(types.len())
        );
        let rows = self
            .pools
            .fetch_all(query(sql).bind(user_id).bind(workspace).bind_each(types))
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(Grant {
                    resource_type: row.get("resource_type")?,
                    resource_pattern: row.get("resource_pattern")?,
                    permission: row.get("permission")?,
                })
            })
            .collect()
    }

    async fn grant_user_permission(
        &self,
        user_id: i64,
        workspace: &str,
        resource_type: &str,
        resource_pattern: &str,
        permission: &str,
        replace: bool,
    ) -> Result<bool> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let role_id = synthetic_role(&mut transaction, user_id, workspace).await?;
        let existing = transaction
            .fetch_optional(
                query(
                    "SELECT id FROM role_permissions WHERE role_id = ? AND resource_type = ? \
                     AND resource_pattern = ?",
                )
                .bind(role_id)
                .bind(resource_type)
                .bind(resource_pattern),
            )
            .await
            .map_err(db_error)?;
        match existing {
            Some(row) if replace => {
                let id: i64 = row.get("id")?;
                transaction
                    .execute(
                        query("UPDATE role_permissions SET permission = ? WHERE id = ?")
                            .bind(permission)
                            .bind(id),
                    )
                    .await
                    .map_err(db_error)?;
            }
            Some(_) => return Ok(false),
            None => {
                transaction
                    .execute(
                        query(
                            "INSERT INTO role_permissions (role_id, resource_type, resource_pattern, \
                             permission) VALUES (?, ?, ?, ?)",
                        )
                        .bind(role_id)
                        .bind(resource_type)
                        .bind(resource_pattern)
                        .bind(permission),
                    )
                    .await
                    .map_err(db_error)?;
            }
        }
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn revoke_user_permission(
        &self,
        user_id: i64,
        workspace: &str,
        resource_type: &str,
        resource_pattern: &str,
    ) -> Result<bool> {
        let done = self
            .pools
            .execute(
                query(
                    "DELETE FROM role_permissions WHERE resource_type = ? AND resource_pattern = ? \
                     AND role_id IN (SELECT id FROM roles WHERE workspace = ? AND name = ?)",
                )
                .bind(resource_type)
                .bind(resource_pattern)
                .bind(workspace)
                .bind(synthetic_role_name(user_id)),
            )
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected > 0)
    }

    async fn delete_grants_for_resource(
        &self,
        resource_type: &str,
        resource_pattern: &str,
    ) -> Result<()> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        for chunk in synthetic_role_ids(&mut transaction).await?.chunks(500) {
            let sql = format!(
                "DELETE FROM role_permissions WHERE resource_type = ? AND resource_pattern = ? \
                 AND role_id IN ({})",
                placeholders(chunk.len())
            );
            transaction
                .execute(
                    query(sql)
                        .bind(resource_type)
                        .bind(resource_pattern)
                        .bind_each(chunk.iter().copied()),
                )
                .await
                .map_err(db_error)?;
        }
        transaction.commit().await.map_err(db_error)
    }

    async fn rename_grants_for_resource(
        &self,
        resource_type: &str,
        old_pattern: &str,
        new_pattern: &str,
    ) -> Result<()> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        for chunk in synthetic_role_ids(&mut transaction).await?.chunks(500) {
            let sql = format!(
                "UPDATE role_permissions SET resource_pattern = ? WHERE resource_type = ? \
                 AND resource_pattern = ? AND role_id IN ({})",
                placeholders(chunk.len())
            );
            transaction
                .execute(
                    query(sql)
                        .bind(new_pattern)
                        .bind(resource_type)
                        .bind(old_pattern)
                        .bind_each(chunk.iter().copied()),
                )
                .await
                .map_err(db_error)?;
        }
        transaction.commit().await.map_err(db_error)
    }

    async fn create_role(
        &self,
        name: &str,
        workspace: &str,
        description: Option<&str>,
    ) -> Result<Role> {
        let result = self
            .pools
            .execute(
                query("INSERT INTO roles (name, workspace, description) VALUES (?, ?, ?)")
                    .bind(name)
                    .bind(workspace)
                    .bind(description.map(str::to_owned)),
            )
            .await;
        match result {
            Ok(done) => Ok(Role {
                id: inserted_id(&done)?,
                name: name.to_owned(),
                workspace: workspace.to_owned(),
                description: description.map(str::to_owned),
                permissions: Vec::new(),
            }),
            Err(error) if is_unique_violation(&error) => Err(Error::already_exists(format!(
                "Role (name={name}, workspace={workspace}) already exists."
            ))),
            Err(error) => Err(db_error(error)),
        }
    }

    async fn get_role(&self, role_id: i64) -> Result<Option<Role>> {
        let rows = self
            .pools
            .fetch_all(
                query(format!("SELECT {ROLE_COLUMNS} FROM roles WHERE id = ?")).bind(role_id),
            )
            .await
            .map_err(db_error)?;
        Ok(roles_with_permissions(&self.pools, rows)
            .await?
            .into_iter()
            .next())
    }

    async fn list_roles(&self, workspaces: Option<&[String]>) -> Result<Vec<Role>> {
        let rows = match workspaces {
            None => self
                .pools
                .fetch_all(query(format!(
                    "SELECT {ROLE_COLUMNS} FROM roles ORDER BY id"
                )))
                .await
                .map_err(db_error)?,
            Some([]) => return Ok(Vec::new()),
            Some(names) => {
                let sql = format!(
                    "SELECT {ROLE_COLUMNS} FROM roles WHERE workspace IN ({}) ORDER BY id",
                    placeholders(names.len())
                );
                self.pools
                    .fetch_all(query(sql).bind_each(names.iter().cloned()))
                    .await
                    .map_err(db_error)?
            }
        };
        roles_with_permissions(&self.pools, rows).await
    }

    async fn update_role(
        &self,
        role_id: i64,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Option<Role>> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        let Some(row) = transaction
            .fetch_optional(query("SELECT workspace FROM roles WHERE id = ?").bind(role_id))
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        let workspace: String = row.get("workspace")?;
        if let Some(name) = name {
            let clash = transaction
                .fetch_optional(
                    query("SELECT id FROM roles WHERE workspace = ? AND name = ? AND id <> ?")
                        .bind(workspace.as_str())
                        .bind(name)
                        .bind(role_id),
                )
                .await
                .map_err(db_error)?;
            if clash.is_some() {
                return Err(Error::already_exists(format!(
                    "Role with name={name} already exists in workspace={workspace}"
                )));
            }
            transaction
                .execute(
                    query("UPDATE roles SET name = ? WHERE id = ?")
                        .bind(name)
                        .bind(role_id),
                )
                .await
                .map_err(db_error)?;
        }
        if let Some(description) = description {
            transaction
                .execute(
                    query("UPDATE roles SET description = ? WHERE id = ?")
                        .bind(description)
                        .bind(role_id),
                )
                .await
                .map_err(db_error)?;
        }
        transaction.commit().await.map_err(db_error)?;
        self.get_role(role_id).await
    }

    async fn delete_role(&self, role_id: i64) -> Result<bool> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        for statement in [
            "DELETE FROM role_permissions WHERE role_id = ?",
            "DELETE FROM user_role_assignments WHERE role_id = ?",
        ] {
            transaction
                .execute(query(statement).bind(role_id))
                .await
                .map_err(db_error)?;
        }
        let done = transaction
            .execute(query("DELETE FROM roles WHERE id = ?").bind(role_id))
            .await
            .map_err(db_error)?;
        if done.rows_affected == 0 {
            return Ok(false);
        }
        transaction.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn add_role_permission(
        &self,
        role_id: i64,
        resource_type: &str,
        resource_pattern: &str,
        permission: &str,
    ) -> Result<Option<RolePermission>> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        if transaction
            .fetch_optional(query("SELECT id FROM roles WHERE id = ?").bind(role_id))
            .await
            .map_err(db_error)?
            .is_none()
        {
            return Ok(None);
        }
        let result = transaction
            .execute(
                query(
                    "INSERT INTO role_permissions (role_id, resource_type, resource_pattern, permission) \
                     VALUES (?, ?, ?, ?)",
                )
                .bind(role_id)
                .bind(resource_type)
                .bind(resource_pattern)
                .bind(permission),
            )
            .await;
        let done = match result {
            Ok(done) => done,
            Err(error) if is_unique_violation(&error) => {
                return Err(Error::already_exists(format!(
                    "Role permission (role_id={role_id}, resource_type={resource_type}, \
                     resource_pattern={resource_pattern}) already exists."
                )))
            }
            Err(error) => return Err(db_error(error)),
        };
        transaction.commit().await.map_err(db_error)?;
        Ok(Some(RolePermission {
            id: inserted_id(&done)?,
            role_id,
            resource_type: resource_type.to_owned(),
            resource_pattern: resource_pattern.to_owned(),
            permission: permission.to_owned(),
        }))
    }

    async fn get_role_permission(&self, role_permission_id: i64) -> Result<Option<RolePermission>> {
        let row = self
            .pools
            .fetch_optional(
                query(format!(
                    "SELECT {ROLE_PERMISSION_COLUMNS} FROM role_permissions WHERE id = ?"
                ))
                .bind(role_permission_id),
            )
            .await
            .map_err(db_error)?;
        row.as_ref().map(role_permission_from_row).transpose()
    }

    async fn remove_role_permission(&self, role_permission_id: i64) -> Result<bool> {
        let done = self
            .pools
            .execute(query("DELETE FROM role_permissions WHERE id = ?").bind(role_permission_id))
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected > 0)
    }

    async fn update_role_permission(
        &self,
        role_permission_id: i64,
        permission: &str,
    ) -> Result<Option<RolePermission>> {
        self.pools
            .execute(
                query("UPDATE role_permissions SET permission = ? WHERE id = ?")
                    .bind(permission)
                    .bind(role_permission_id),
            )
            .await
            .map_err(db_error)?;
        self.get_role_permission(role_permission_id).await
    }

    async fn assign_role(&self, user_id: i64, role_id: i64) -> Result<RoleAssignment> {
        let mut transaction = self.pools.begin().await.map_err(db_error)?;
        if transaction
            .fetch_optional(query("SELECT id FROM users WHERE id = ?").bind(user_id))
            .await
            .map_err(db_error)?
            .is_none()
        {
            return Err(Error::not_found(format!(
                "User with id={user_id} not found"
            )));
        }
        if transaction
            .fetch_optional(query("SELECT id FROM roles WHERE id = ?").bind(role_id))
            .await
            .map_err(db_error)?
            .is_none()
        {
            return Err(ferroflow_core::auth::role_not_found(role_id));
        }
        if transaction
            .fetch_optional(
                query("SELECT id FROM user_role_assignments WHERE user_id = ? AND role_id = ?")
                    .bind(user_id)
                    .bind(role_id),
            )
            .await
            .map_err(db_error)?
            .is_some()
        {
            return Err(Error::already_exists(format!(
                "User role assignment (user_id={user_id}, role_id={role_id}) already exists"
            )));
        }
        let done = transaction
            .execute(
                query("INSERT INTO user_role_assignments (user_id, role_id) VALUES (?, ?)")
                    .bind(user_id)
                    .bind(role_id),
            )
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        Ok(RoleAssignment {
            id: inserted_id(&done)?,
            user_id,
            role_id,
        })
    }

    async fn unassign_role(&self, user_id: i64, role_id: i64) -> Result<bool> {
        let done = self
            .pools
            .execute(
                query("DELETE FROM user_role_assignments WHERE user_id = ? AND role_id = ?")
                    .bind(user_id)
                    .bind(role_id),
            )
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected > 0)
    }

    async fn list_user_roles(&self, user_id: i64) -> Result<Vec<Role>> {
        let rows = self
            .pools
            .fetch_all(
                query(
                    "SELECT r.id, r.name, r.workspace, r.description FROM roles r \
                     JOIN user_role_assignments a ON a.role_id = r.id WHERE a.user_id = ? ORDER BY r.id",
                )
                .bind(user_id),
            )
            .await
            .map_err(db_error)?;
        roles_with_permissions(&self.pools, rows).await
    }

    async fn list_role_users(&self, role_id: i64) -> Result<Vec<RoleAssignment>> {
        let rows = self
            .pools
            .fetch_all(
                query("SELECT id, user_id, role_id FROM user_role_assignments WHERE role_id = ? ORDER BY id")
                    .bind(role_id),
            )
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(RoleAssignment {
                    id: row.get("id")?,
                    user_id: row.get("user_id")?,
                    role_id: row.get("role_id")?,
                })
            })
            .collect()
    }
}
