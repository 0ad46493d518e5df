//! The basic-auth database (`SqlAuthStore`) on every backend: MLflow's schema created and stamped in an
//! empty database and served as is when reopened, users, per-user grants and roles.

use crate::backends::{test_pool_settings, Backend, TestDatabase};
use ferroflow_core::auth::{AuthStore, Grant, AUTH_SCHEMA_REVISION};
use ferroflow_proto::ErrorCode;
use ferroflow_store::{AuthOpenError, SqlAuthStore};

async fn open(database: &TestDatabase) -> Result<SqlAuthStore, AuthOpenError> {
    SqlAuthStore::open_uri(&database.uri, &test_pool_settings()).await
}

on_every_backend!(
    auth_schema_created_stamped_and_reopened,
    auth_users_and_grants,
    auth_roles,
    auth_refuses_foreign_databases,
);

async fn auth_schema_created_stamped_and_reopened(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let store = open(&database).await.unwrap();
    let alice = store.create_user("alice", "hash-a", false).await.unwrap();
    store.close().await;
    assert_eq!(
        database
            .fetch_text("SELECT version_num FROM alembic_version_auth")
            .await,
        AUTH_SCHEMA_REVISION
    );
    // Reopened, the stamped database is served as it is.
    let store = open(&database).await.unwrap();
    let found = store.get_user("alice").await.unwrap().unwrap();
    assert_eq!(found.id, alice.id);
    assert_eq!(found.password_hash, "hash-a");
    assert!(!found.is_admin);
    store.close().await;
}

async fn auth_users_and_grants(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let store = open(&database).await.unwrap();
    let admin = store.create_user("admin", "h0", true).await.unwrap();
    let bob = store.create_user("bob", "h1", false).await.unwrap();
    assert_ne!(admin.id, bob.id);
    let duplicate = store.create_user("bob", "h2", false).await.unwrap_err();
    assert_eq!(duplicate.code, ErrorCode::ResourceAlreadyExists);
    assert_eq!(duplicate.message, "User (username=bob) already exists.");
    assert!(store
        .update_user("bob", Some("h3"), Some(true))
        .await
        .unwrap());
    let bob = store.get_user_by_id(bob.id).await.unwrap().unwrap();
    assert_eq!((bob.password_hash.as_str(), bob.is_admin), ("h3", true));

    assert!(store
        .grant_user_permission(bob.id, "default", "experiment", "7", "READ", false)
        .await
        .unwrap());
    // Without `replace` an existing grant stays; with it, it is replaced.
    assert!(!store
        .grant_user_permission(bob.id, "default", "experiment", "7", "EDIT", false)
        .await
        .unwrap());
    store
        .grant_user_permission(bob.id, "default", "registered_model", "m", "MANAGE", true)
        .await
        .unwrap();
    store
        .rename_grants_for_resource("registered_model", "m", "m2")
        .await
        .unwrap();
    let grants = store
        .list_grants(bob.id, "default", &["experiment", "registered_model"])
        .await
        .unwrap();
    let grant = |kind: &str, pattern: &str, permission: &str| Grant {
        resource_type: kind.to_owned(),
        resource_pattern: pattern.to_owned(),
        permission: permission.to_owned(),
    };
    let mut sorted = grants.clone();
    sorted.sort_by(|left, right| left.resource_type.cmp(&right.resource_type));
    assert_eq!(
        sorted,
        vec![
            grant("experiment", "7", "READ"),
            grant("registered_model", "m2", "MANAGE")
        ]
    );
    assert!(store
        .revoke_user_permission(bob.id, "default", "experiment", "7")
        .await
        .unwrap());
    store
        .delete_grants_for_resource("registered_model", "m2")
        .await
        .unwrap();
    assert!(store
        .list_grants(bob.id, "default", &["experiment", "registered_model"])
        .await
        .unwrap()
        .is_empty());
    assert!(store.delete_user("bob").await.unwrap());
    assert!(!store.delete_user("bob").await.unwrap());
    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|user| user.username)
        .collect();
    assert_eq!(names, ["admin"]);
    store.close().await;
}

async fn auth_roles(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let store = open(&database).await.unwrap();
    let carol = store.create_user("carol", "h", false).await.unwrap();
    let role = store
        .create_role("readers", "default", Some("read all"))
        .await
        .unwrap();
    let other = store.create_role("writers", "default", None).await.unwrap();
    assert_ne!(role.id, other.id);
    assert_eq!(
        store
            .create_role("readers", "default", None)
            .await
            .unwrap_err()
            .code,
        ErrorCode::ResourceAlreadyExists
    );
    let permission = store
        .add_role_permission(role.id, "experiment", "*", "READ")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(permission.role_id, role.id);
    let updated = store
        .update_role_permission(permission.id, "EDIT")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.permission, "EDIT");
    let assignment = store.assign_role(carol.id, role.id).await.unwrap();
    assert_eq!(
        (assignment.user_id, assignment.role_id),
        (carol.id, role.id)
    );
    let roles = store.list_user_roles(carol.id).await.unwrap();
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0].name, "readers");
    assert_eq!(roles[0].description.as_deref(), Some("read all"));
    assert_eq!(roles[0].permissions, vec![updated.clone()]);
    let renamed = store
        .update_role(role.id, Some("viewers"), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renamed.name, "viewers");
    assert_eq!(
        store.list_role_users(role.id).await.unwrap(),
        vec![assignment]
    );
    assert!(store.unassign_role(carol.id, role.id).await.unwrap());
    assert!(store.delete_role(role.id).await.unwrap());
    assert!(store.get_role(role.id).await.unwrap().is_none());
    assert_eq!(store.list_roles(None).await.unwrap().len(), 1);
    store.close().await;
}

async fn auth_refuses_foreign_databases(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    database
        .execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
        .await;
    let refused = open(&database).await.err().unwrap();
    assert!(
        matches!(refused, AuthOpenError::NotMlflow { .. }),
        "{refused}"
    );
    database
        .execute("CREATE TABLE alembic_version_auth (version_num VARCHAR(32) NOT NULL)")
        .await;
    database
        .execute("INSERT INTO alembic_version_auth (version_num) VALUES ('8606fa83a998')")
        .await;
    let refused = open(&database).await.err().unwrap();
    assert!(
        matches!(&refused, AuthOpenError::UnknownRevision { found, .. } if found == "8606fa83a998"),
        "{refused}"
    );
}
