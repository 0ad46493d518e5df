//! `ferroflow db check` and `ferroflow db upgrade`: each outcome on every backend.

use crate::backends::{Backend, TestDatabase, ARTIFACT_ROOT};
use ferroflow_store::{check_schema, upgrade_schema, OpenError, SchemaState, UpgradeOutcome};

on_every_backend!(
    check_reports_an_empty_database,
    upgrade_creates_then_leaves_the_schema,
    another_revision_is_refused_untouched,
    tables_without_alembic_version_are_refused,
);

async fn check_reports_an_empty_database(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    assert_eq!(
        check_schema(&database.uri).await.unwrap(),
        SchemaState::Empty
    );
    // Checking created nothing: the database is still empty.
    assert_eq!(
        check_schema(&database.uri).await.unwrap(),
        SchemaState::Empty
    );
    if let ferroflow_store::BackendUri::Sqlite { path } = &database.uri {
        assert!(!path.exists(), "check must not create the SQLite file");
    }
}

async fn upgrade_creates_then_leaves_the_schema(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    assert_eq!(
        upgrade_schema(&database.uri, ARTIFACT_ROOT).await.unwrap(),
        UpgradeOutcome::Created
    );
    let state = check_schema(&database.uri).await.unwrap();
    assert_eq!(state, SchemaState::Current);
    assert_eq!(state.revision(), Some(ferroflow_store::SCHEMA_REVISION));
    assert_eq!(
        database
            .fetch_text("SELECT name FROM experiments WHERE experiment_id = 0")
            .await,
        "Default"
    );
    // A second upgrade writes nothing: not even the Default experiment when it is gone.
    database
        .execute("UPDATE experiments SET name = 'Renamed' WHERE experiment_id = 0")
        .await;
    assert_eq!(
        upgrade_schema(&database.uri, ARTIFACT_ROOT).await.unwrap(),
        UpgradeOutcome::AlreadyCurrent
    );
    assert_eq!(
        database
            .fetch_text("SELECT name FROM experiments WHERE experiment_id = 0")
            .await,
        "Renamed"
    );
}

async fn another_revision_is_refused_untouched(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    database
        .execute(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL); \
             INSERT INTO alembic_version (version_num) VALUES ('1b5f0d9ad7c1')",
        )
        .await;
    for error in [
        check_schema(&database.uri).await.unwrap_err(),
        upgrade_schema(&database.uri, ARTIFACT_ROOT)
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(&error, OpenError::UnknownRevision { found, .. } if found == "1b5f0d9ad7c1"),
            "{error}"
        );
        let message = error.to_string();
        assert!(message.contains("1b5f0d9ad7c1"), "{message}");
        assert!(message.contains("mlflow db upgrade"), "{message}");
    }
    assert_eq!(
        database
            .fetch_text("SELECT version_num FROM alembic_version")
            .await,
        "1b5f0d9ad7c1"
    );
}

async fn tables_without_alembic_version_are_refused(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    database
        .execute("CREATE TABLE notes (body TEXT); INSERT INTO notes (body) VALUES ('kept')")
        .await;
    for error in [
        check_schema(&database.uri).await.unwrap_err(),
        upgrade_schema(&database.uri, ARTIFACT_ROOT)
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(error, OpenError::NotMlflow { .. }), "{error}");
    }
    assert_eq!(database.fetch_text("SELECT body FROM notes").await, "kept");
}
