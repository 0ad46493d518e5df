//! Validation of client input against MLflow limits.
