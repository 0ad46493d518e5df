//! MLflow 3.17's basic-auth routes: users (`/api/2.0/mlflow/users/…`), per-user grants, roles and their
//! permissions and assignments (`/api/3.0/mlflow/…`), each also under `/ajax-api`. Mounted only with
//! `--app-name basic-auth`; the middleware (`crate::auth`) has authenticated the caller and applied the
//! route's rule before a handler runs.

use crate::auth::{user_permission, Auth, AuthenticatedUser};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, MethodRouter};
use axum::Json;
use ferroflow_core::auth::{
    bad_request, hash_password, parse_permission, reject_synthetic_role_name, role_not_found,
    role_permission_not_found, user_not_found, validate_password,
    validate_permission_for_resource_type, validate_resource_pattern, validate_resource_type,
    validate_username, verify_password, Role, User, UserJson, DEFAULT_WORKSPACE, RESOURCE_TYPES,
};
use ferroflow_core::Error;
use serde_json::{json, Value};
use std::sync::Arc;

/// The routes under `/api/2.0/mlflow` and `/ajax-api/2.0/mlflow`.
pub fn routes_v2() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/users/create", post(create_user)),
        ("/users/get", get(get_user)),
        ("/users/current", get(get_current_user)),
        ("/users/list", get(list_users)),
        ("/users/update-password", patch(update_user_password)),
        ("/users/update-admin", patch(update_user_admin)),
        ("/users/delete", delete(delete_user)),
        ("/users/create-ui", post(create_user_ui)),
    ]
}

/// MLflow's sign-up page, at the root.
pub const SIGNUP: &str = "/signup";

/// The routes at the root: MLflow's sign-up page.
pub fn routes_root() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![(SIGNUP, get(signup))]
}

/// The routes under `/api/3.0/mlflow` and `/ajax-api/3.0/mlflow`.
pub fn routes_v3() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        (
            "/users/current/permissions",
            get(list_current_user_permissions),
        ),
        ("/users/permissions/list", get(list_user_permissions)),
        ("/users/permissions/grant", post(grant_user_permission)),
        ("/users/permissions/revoke", post(revoke_user_permission)),
        ("/users/permissions/get", get(get_user_permission)),
        ("/users/roles/list", get(list_user_roles)),
        ("/roles/create", post(create_role)),
        ("/roles/get", get(get_role)),
        ("/roles/list", get(list_roles)),
        ("/roles/update", patch(update_role)),
        ("/roles/delete", delete(delete_role)),
        ("/roles/permissions/add", post(add_role_permission)),
        ("/roles/permissions/remove", delete(remove_role_permission)),
        ("/roles/permissions/list", get(list_role_permissions)),
        ("/roles/permissions/update", patch(update_role_permission)),
        ("/roles/assign", post(assign_role)),
        ("/roles/unassign", delete(unassign_role)),
        ("/roles/users/list", get(list_role_users)),
    ]
}

/// What an auth handler starts from: the basic-auth app, the request's parameters and the user acting.
struct Call {
    auth: Arc<Auth>,
    params: AuthParams,
    sender: User,
}

impl FromRequest<AppState> for Call {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let auth = auth_of(state).map_err(IntoResponse::into_response)?;
        let (mut parts, body) = request.into_parts();
        let AuthenticatedUser(sender) = AuthenticatedUser::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let params = AuthParams::read(Request::from_parts(parts, body))
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            auth,
            params,
            sender,
        })
    }
}

/// A request's parameters as MLflow's `_get_request_param` reads them: the query of a GET, the JSON body
/// of a POST or PATCH, the JSON body (else the query) of a DELETE.
struct AuthParams {
    query: Vec<(String, String)>,
    body: Value,
    is_json: bool,
    method: Method,
}

impl AuthParams {
    async fn read(request: Request) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let query = parts
            .uri
            .query()
            .map(crate::auth::url_decoded_pairs)
            .unwrap_or_default();
        let is_json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/json"));
        let bytes = axum::body::to_bytes(body, 1024 * 1024)
            .await
            .map_err(|_| ApiError::invalid_parameter("request body too large"))?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok(Self {
            query,
            body,
            is_json,
            method: parts.method,
        })
    }

    fn reads_query(&self) -> bool {
        self.method == Method::GET || (self.method == Method::DELETE && !self.is_json)
    }

    fn optional(&self, name: &str) -> Option<Value> {
        if self.reads_query() {
            self.query
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| Value::String(value.clone()))
        } else {
            self.body.get(name).cloned()
        }
    }

    fn value(&self, name: &str) -> Result<Value, Error> {
        self.optional(name)
            .ok_or_else(|| Error::missing_parameter(name))
    }

    fn string(&self, name: &str) -> Result<String, Error> {
        Ok(match self.value(name)? {
            Value::String(text) => text,
            Value::Null => String::new(),
            other => other.to_string(),
        })
    }

    fn int(&self, name: &str) -> Result<i64, Error> {
        let raw = self.value(name)?;
        let parsed = match &raw {
            Value::Number(number) => number.as_i64(),
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        };
        parsed.ok_or_else(|| {
            let shown = match &raw {
                Value::String(text) => format!("'{text}'"),
                other => other.to_string(),
            };
            Error::invalid_parameter(format!(
                "Parameter '{name}' must be an integer. Got: {shown}"
            ))
        })
    }

    fn query_list(&self, name: &str) -> Vec<String> {
        self.query
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect()
    }
}

fn auth_of(state: &AppState) -> Result<Arc<Auth>, ApiError> {
    state
        .auth
        .clone()
        .ok_or_else(|| ApiError(Error::not_implemented("authentication is not enabled")))
}

async fn find_user(auth: &Auth, username: &str) -> Result<User, Error> {
    auth.store
        .get_user(username)
        .await?
        .ok_or_else(|| user_not_found(username))
}

async fn hashed(password: String) -> Result<String, Error> {
    validate_password(&password)?;
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(Error::internal)?
}

fn empty() -> Json<Value> {
    Json(json!({}))
}

fn role_json(role: &Role) -> Value {
    serde_json::to_value(role).unwrap_or(Value::Null)
}

async fn create_user(Call { auth, params, .. }: Call) -> ApiResult<Response> {
    if !params.is_json {
        return Ok((
            StatusCode::BAD_REQUEST,
            "Invalid content type. Must be application/json",
        )
            .into_response());
    }
    let username = params.string("username")?;
    let password = params.string("password")?;
    if username.is_empty() || password.is_empty() {
        return Ok((
            StatusCode::BAD_REQUEST,
            "Username and password cannot be empty.",
        )
            .into_response());
    }
    validate_username(&username)?;
    let hash = hashed(password).await?;
    let user = auth.store.create_user(&username, &hash, false).await?;
    Ok(Json(json!({ "user": UserJson::from(&user) })).into_response())
}

async fn get_user(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let user = find_user(&auth, &params.string("username")?).await?;
    Ok(Json(json!({ "user": UserJson::from(&user) })))
}

async fn get_current_user(AuthenticatedUser(user): AuthenticatedUser) -> Json<Value> {
    Json(json!({
        "user": {"id": user.id, "username": user.username, "is_admin": user.is_admin},
        "is_basic_auth": true,
    }))
}

async fn list_users(Call { auth, .. }: Call) -> ApiResult<Json<Value>> {
    let mut users = Vec::new();
    for user in auth.store.list_users().await? {
        let roles = auth.store.list_user_roles(user.id).await?;
        users.push(json!({
            "id": user.id,
            "username": user.username,
            "is_admin": user.is_admin,
            "roles": roles.iter().map(role_json).collect::<Vec<_>>(),
        }));
    }
    Ok(Json(json!({ "users": users })))
}

async fn update_user_password(
    Call {
        auth,
        params,
        sender,
    }: Call,
) -> ApiResult<Json<Value>> {
    let username = params.string("username")?;
    let password = params.string("password")?;
    if sender.username == username {
        let current = params
            .body
            .get("current_password")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if current.is_empty() {
            return Err(ApiError::invalid_parameter(
                "Current password is required when changing your own password.",
            ));
        }
        let stored = sender.password_hash.clone();
        let candidate = current.clone();
        let matches = tokio::task::spawn_blocking(move || verify_password(&stored, &candidate))
            .await
            .unwrap_or(false);
        if !matches {
            return Err(ApiError::invalid_parameter(
                "Current password does not match.",
            ));
        }
        if password == current {
            return Err(ApiError::invalid_parameter(
                "New password must differ from the current password.",
            ));
        }
    }
    if auth.store.get_user(&username).await?.is_none() {
        return Err(ApiError(user_not_found(&username)));
    }
    let hash = hashed(password).await?;
    if !auth.store.update_user(&username, Some(&hash), None).await? {
        return Err(ApiError(user_not_found(&username)));
    }
    auth.forget_credentials(&username);
    Ok(empty())
}

async fn update_user_admin(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let username = params.string("username")?;
    let is_admin = match params.value("is_admin")? {
        Value::Bool(flag) => flag,
        Value::String(text) => matches!(text.to_ascii_lowercase().as_str(), "true" | "1"),
        Value::Number(number) => number.as_i64().unwrap_or(0) != 0,
        _ => false,
    };
    if !auth
        .store
        .update_user(&username, None, Some(is_admin))
        .await?
    {
        return Err(ApiError(user_not_found(&username)));
    }
    auth.forget_credentials(&username);
    Ok(empty())
}

async fn delete_user(
    Call {
        auth,
        params,
        sender,
    }: Call,
) -> ApiResult<Json<Value>> {
    let username = params.string("username")?;
    if username == sender.username {
        return Err(ApiError(bad_request(
            "Users cannot delete their own account. Ask another admin to delete this user instead.",
        )));
    }
    if !auth.store.delete_user(&username).await? {
        return Err(ApiError(user_not_found(&username)));
    }
    auth.forget_credentials(&username);
    Ok(empty())
}

/// The rows of `/users/permissions/list`: every grant of every role the user holds.
async fn permission_rows(auth: &Auth, user: &User) -> Result<Vec<Value>, Error> {
    let mut rows = Vec::new();
    for role in auth.store.list_user_roles(user.id).await? {
        for permission in &role.permissions {
            rows.push(json!({
                "role_id": role.id,
                "role_name": role.name,
                "workspace": role.workspace,
                "resource_type": permission.resource_type,
                "resource_pattern": permission.resource_pattern,
                "permission": permission.permission,
            }));
        }
    }
    Ok(rows)
}

async fn list_current_user_permissions(
    Call {
        auth, sender: user, ..
    }: Call,
) -> ApiResult<Json<Value>> {
    let rows = permission_rows(&auth, &user).await?;
    Ok(Json(
        json!({ "is_admin": user.is_admin, "permissions": rows }),
    ))
}

async fn list_user_permissions(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let user = find_user(&auth, &params.string("username")?).await?;
    let rows = permission_rows(&auth, &user).await?;
    Ok(Json(
        json!({ "is_admin": user.is_admin, "permissions": rows }),
    ))
}

fn reject_workspace_type(resource_type: &str) -> Result<(), Error> {
    if resource_type == "workspace" {
        return Err(Error::invalid_parameter(
            "resource_type 'workspace' is not supported by the per-user permission convenience APIs. \
             Use set_workspace_permission / delete_workspace_permission for workspace-wide grants.",
        ));
    }
    Ok(())
}

/// The `username`, `resource_type` and `resource_id` of a per-user grant route.
fn grant_target(params: &AuthParams) -> Result<(String, String, String), Error> {
    Ok((
        params.string("username")?,
        params.string("resource_type")?,
        params.string("resource_id")?,
    ))
}

/// MLflow's message about one per-user grant.
fn grant_message(username: &str, resource_type: &str, resource_id: &str, outcome: &str) -> String {
    format!(
        "Permission for user={username} on resource_type={resource_type}, \
         resource_id={resource_id} {outcome}."
    )
}

/// The user a per-user grant route names, once its resource type is one those routes take.
async fn grant_user(auth: &Auth, username: &str, resource_type: &str) -> Result<User, Error> {
    let user = find_user(auth, username).await?;
    reject_workspace_type(resource_type)?;
    Ok(user)
}

async fn grant_user_permission(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let (username, resource_type, resource_id) = grant_target(&params)?;
    let permission = params.string("permission")?;
    let user = grant_user(&auth, &username, &resource_type).await?;
    validate_resource_pattern(&resource_id, &resource_type)?;
    validate_permission_for_resource_type(&permission, &resource_type)?;
    let added = auth
        .store
        .grant_user_permission(
            user.id,
            DEFAULT_WORKSPACE,
            &resource_type,
            &resource_id,
            &permission,
            false,
        )
        .await?;
    if !added {
        return Err(ApiError(Error::already_exists(grant_message(
            &username,
            &resource_type,
            &resource_id,
            "already exists",
        ))));
    }
    Ok(empty())
}

async fn revoke_user_permission(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let (username, resource_type, resource_id) = grant_target(&params)?;
    let user = grant_user(&auth, &username, &resource_type).await?;
    validate_resource_type(&resource_type)?;
    let removed = auth
        .store
        .revoke_user_permission(user.id, DEFAULT_WORKSPACE, &resource_type, &resource_id)
        .await?;
    if !removed {
        return Err(ApiError(Error::not_found(grant_message(
            &username,
            &resource_type,
            &resource_id,
            "not found",
        ))));
    }
    Ok(empty())
}

async fn get_user_permission(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let (username, resource_type, resource_id) = grant_target(&params)?;
    let user = grant_user(&auth, &username, &resource_type).await?;
    validate_resource_type(&resource_type)?;
    let kind = RESOURCE_TYPES
        .iter()
        .map(|(name, _)| *name)
        .find(|name| *name == resource_type)
        .unwrap_or("experiment");
    let permission = user_permission(&auth, &user, kind, &resource_id).await?;
    Ok(Json(json!({
        "allowed": permission.can_use(),
        "permission": permission.name(),
    })))
}

async fn list_user_roles(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let user = find_user(&auth, &params.string("username")?).await?;
    let roles = auth.store.list_user_roles(user.id).await?;
    Ok(Json(
        json!({ "roles": roles.iter().map(role_json).collect::<Vec<_>>() }),
    ))
}

fn non_empty_string(value: Option<Value>, message: &str) -> Result<Option<String>, Error> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(Some(text)),
        Some(_) => Err(Error::invalid_parameter(message)),
    }
}

async fn create_role(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let name = non_empty_string(Some(params.value("name")?), "Role name cannot be empty.")?
        .ok_or_else(|| ApiError::invalid_parameter("Role name cannot be empty."))?;
    let workspace = non_empty_string(
        Some(params.value("workspace")?),
        "Workspace cannot be empty.",
    )?
    .ok_or_else(|| ApiError::invalid_parameter("Workspace cannot be empty."))?;
    let description = match params.body.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            return Err(ApiError::invalid_parameter(
                "Role description must be a string or null.",
            ))
        }
    };
    reject_synthetic_role_name(&name)?;
    let role = auth
        .store
        .create_role(&name, &workspace, description.as_deref())
        .await?;
    Ok(Json(json!({ "role": role_json(&role) })))
}

async fn get_role(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let role_id = params.int("role_id")?;
    let role = auth
        .store
        .get_role(role_id)
        .await?
        .ok_or_else(|| ApiError(role_not_found(role_id)))?;
    Ok(Json(json!({ "role": role_json(&role) })))
}

async fn list_roles(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let workspaces = params.query_list("workspace");
    if workspaces
        .iter()
        .any(|workspace| workspace.trim().is_empty())
    {
        return Err(ApiError::invalid_parameter(
            "Parameter 'workspace' must be a non-empty string when provided.",
        ));
    }
    let roles = if workspaces.is_empty() {
        auth.store.list_roles(None).await?
    } else {
        auth.store.list_roles(Some(&workspaces)).await?
    };
    Ok(Json(
        json!({ "roles": roles.iter().map(role_json).collect::<Vec<_>>() }),
    ))
}

async fn update_role(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let role_id = params.int("role_id")?;
    let name = params
        .body
        .get("name")
        .cloned()
        .filter(|value| !value.is_null());
    let description = params
        .body
        .get("description")
        .cloned()
        .filter(|value| !value.is_null());
    if name.is_none() && description.is_none() {
        return Err(ApiError::invalid_parameter(
            "At least one of 'name' or 'description' must be provided to update a role.",
        ));
    }
    let name = non_empty_string(name, "Role name cannot be empty.")?;
    let description = match description {
        None => None,
        Some(Value::String(text)) => Some(text),
        Some(_) => {
            return Err(ApiError::invalid_parameter(
                "Role description must be a string.",
            ))
        }
    };
    if let Some(name) = &name {
        reject_synthetic_role_name(name)?;
    }
    let role = auth
        .store
        .update_role(role_id, name.as_deref(), description.as_deref())
        .await?
        .ok_or_else(|| ApiError(role_not_found(role_id)))?;
    Ok(Json(json!({ "role": role_json(&role) })))
}

async fn delete_role(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let role_id = params.int("role_id")?;
    if !auth.store.delete_role(role_id).await? {
        return Err(ApiError(role_not_found(role_id)));
    }
    Ok(empty())
}

async fn add_role_permission(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let role_id = params.int("role_id")?;
    let resource_type = params.string("resource_type")?;
    let resource_pattern = params.string("resource_pattern")?;
    let permission = params.string("permission")?;
    validate_permission_for_resource_type(&permission, &resource_type)?;
    validate_resource_pattern(&resource_pattern, &resource_type)?;
    let added = auth
        .store
        .add_role_permission(role_id, &resource_type, &resource_pattern, &permission)
        .await?
        .ok_or_else(|| ApiError(role_not_found(role_id)))?;
    Ok(Json(json!({ "role_permission": added })))
}

async fn remove_role_permission(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let id = params.int("role_permission_id")?;
    if !auth.store.remove_role_permission(id).await? {
        return Err(ApiError(role_permission_not_found(id)));
    }
    Ok(empty())
}

async fn list_role_permissions(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let role_id = params.int("role_id")?;
    let role = auth
        .store
        .get_role(role_id)
        .await?
        .ok_or_else(|| ApiError(role_not_found(role_id)))?;
    Ok(Json(json!({ "role_permissions": role.permissions })))
}

async fn update_role_permission(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let id = params.int("role_permission_id")?;
    let permission = params.string("permission")?;
    let existing = auth
        .store
        .get_role_permission(id)
        .await?
        .ok_or_else(|| ApiError(role_permission_not_found(id)))?;
    parse_permission(&permission)?;
    validate_permission_for_resource_type(&permission, &existing.resource_type)?;
    let updated = auth
        .store
        .update_role_permission(id, &permission)
        .await?
        .ok_or_else(|| ApiError(role_permission_not_found(id)))?;
    Ok(Json(json!({ "role_permission": updated })))
}

async fn assign_role(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let username = params.string("username")?;
    let role_id = params.int("role_id")?;
    let user = find_user(&auth, &username).await?;
    let assignment = auth.store.assign_role(user.id, role_id).await?;
    Ok(Json(json!({ "assignment": assignment })))
}

async fn unassign_role(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let username = params.string("username")?;
    let role_id = params.int("role_id")?;
    let user = find_user(&auth, &username).await?;
    if !auth.store.unassign_role(user.id, role_id).await? {
        return Err(ApiError(Error::not_found(format!(
            "User role assignment (user_id={}, role_id={role_id}) not found",
            user.id
        ))));
    }
    Ok(empty())
}

async fn list_role_users(Call { auth, params, .. }: Call) -> ApiResult<Json<Value>> {
    let role_id = params.int("role_id")?;
    if auth.store.get_role(role_id).await?.is_none() {
        return Err(ApiError(role_not_found(role_id)));
    }
    let assignments = auth.store.list_role_users(role_id).await?;
    Ok(Json(json!({ "assignments": assignments })))
}

// ------------------------------------------------------------------------------------------------------
// MLflow's sign-up form: `/signup` shows it, `users/create-ui` takes its POST.
// ------------------------------------------------------------------------------------------------------

/// The form's page rules: no script at all, inline styles, posts only to this origin.
const FORM_PAGE_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'self'";

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

fn html_page(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, FORM_PAGE_POLICY),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn now_seconds() -> i64 {
    ferroflow_core::ids::now_millis() / 1000
}

/// `GET /signup`: MLflow's form (username at least 4 characters, password at least 12) with a CSRF token
/// bound to the signed-in user.
async fn signup(
    Call {
        auth, sender: user, ..
    }: Call,
) -> ApiResult<Response> {
    let token = auth.signup_token(&user.username, now_seconds());
    Ok(html_page(
        StatusCode::OK,
        format!(
            r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>MLflow: sign up</title>
<style>
  form {{ background-color: #F5F5F5; border: 1px solid #CCCCCC; border-radius: 4px; padding: 20px;
    max-width: 400px; margin: 0 auto; font-family: Arial, sans-serif; font-size: 14px; line-height: 1.5; }}
  input[type=text], input[type=password] {{ width: 100%; padding: 10px; margin-bottom: 10px;
    border: 1px solid #CCCCCC; border-radius: 4px; box-sizing: border-box; }}
  input[type=submit] {{ background-color: rgb(34, 114, 180); color: #FFFFFF; border: none; border-radius: 4px;
    padding: 10px 20px; cursor: pointer; font-size: 16px; font-weight: bold; }}
  input[type=submit]:hover {{ background-color: rgb(14, 83, 139); }}
  h1 {{ text-align: center; font-size: 20px; }}
</style>
</head>
<body>
<form action="{action}" method="post">
  <input type="hidden" name="csrf_token" value="{token}"/>
  <h1>MLflow</h1>
  <label for="username">Username:</label>
  <br>
  <input type="text" id="username" name="username" minlength="4">
  <br>
  <label for="password">Password:</label>
  <br>
  <input type="password" id="password" name="password" minlength="12">
  <br>
  <br>
  <input type="submit" value="Sign up">
</form>
</body>
</html>
"#,
            action = CREATE_USER_UI,
            token = escape_html(&token),
        ),
    ))
}

/// Where the sign-up form posts (MLflow's `CREATE_USER_UI`).
pub const CREATE_USER_UI: &str = "/api/2.0/mlflow/users/create-ui";

/// The page MLflow answers a form post with: the message, then on to `href`.
fn notice(message: &str, href: &str) -> Response {
    let message = escape_html(message);
    let href = escape_html(href);
    html_page(
        StatusCode::OK,
        format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"refresh\" content=\"3;url={href}\">\n<title>MLflow</title>\n</head>\n\
             <body>\n<p>{message}</p>\n<p><a href=\"{href}\">Continue</a></p>\n</body>\n</html>\n"
        ),
    )
}

/// `POST users/create-ui`: the sign-up form's fields, checked against its CSRF token (400 without a
/// valid one, as Flask-WTF answers), then MLflow's answers: a notice that the name is taken (back to
/// `/signup`) or that the user was created (on to `/`).
async fn create_user_ui(
    State(state): State<AppState>,
    AuthenticatedUser(sender): AuthenticatedUser,
    request: Request,
) -> ApiResult<Response> {
    let auth = auth_of(&state)?;
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        == Some("application/x-www-form-urlencoded");
    let bytes = axum::body::to_bytes(request.into_body(), 64 * 1024)
        .await
        .map_err(|_| ApiError::invalid_parameter("request body too large"))?;
    let fields = crate::auth::url_decoded_pairs(&String::from_utf8_lossy(&bytes));
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let bad_request = |message: &str| (StatusCode::BAD_REQUEST, message.to_owned()).into_response();
    // Flask-WTF checks the token before the view looks at the content type.
    let Some(token) = field("csrf_token").filter(|token| !token.is_empty()) else {
        return Ok(bad_request("Bad Request: The CSRF token is missing."));
    };
    if !auth.signup_token_valid(&token, &sender.username, now_seconds()) {
        return Ok(bad_request("Bad Request: The CSRF token is invalid."));
    }
    if !is_form {
        return Ok(bad_request(
            "Invalid content type. Must be application/x-www-form-urlencoded",
        ));
    }
    let username = field("username").unwrap_or_default();
    let password = field("password").unwrap_or_default();
    if username.is_empty() || password.is_empty() {
        return Ok(bad_request("Username and password cannot be empty."));
    }
    if auth.store.get_user(&username).await?.is_some() {
        return Ok(notice(
            &format!("Username has already been taken: {username}"),
            SIGNUP,
        ));
    }
    validate_username(&username)?;
    let hash = hashed(password).await?;
    auth.store.create_user(&username, &hash, false).await?;
    Ok(notice(
        &format!("Successfully signed up user: {username}"),
        "/",
    ))
}
