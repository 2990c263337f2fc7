//! Transient database failures, provoked for real, are recognised as retryable, and a busy
//! database surfaces as 503 with Retry-After.

use crate::harness::{postgres_available, TestDb};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use commerce::http::Problem;
use commerce::store::{Fault, StoreError};
use sqlx::{Connection, Executor};

#[tokio::test]
async fn sqlite_busy_is_transient() {
    let db = TestDb::create(crate::harness::Backend::Sqlite).await;
    let path = db.url.trim_start_matches("sqlite://").to_owned();
    let url = format!("sqlite://{path}?mode=rwc");
    let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    holder.execute("CREATE TABLE t (x INTEGER)").await.unwrap();
    holder.execute("BEGIN IMMEDIATE").await.unwrap();
    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
    other.execute("PRAGMA busy_timeout = 0").await.unwrap();
    let error = StoreError::from(other.execute("BEGIN IMMEDIATE").await.unwrap_err());
    assert_eq!(error.fault(), Fault::Transient, "{error:?}");
    let missing = other.execute("SELECT * FROM no_such_table").await;
    assert_eq!(StoreError::from(missing.unwrap_err()).fault(), Fault::Bug);
}

#[tokio::test]
async fn postgres_serialization_failure_is_transient() {
    if !postgres_available().await {
        return;
    }
    let db = TestDb::create(crate::harness::Backend::Postgres).await;
    let url = db.url.clone();
    let mut setup = sqlx::PgConnection::connect(&url).await.unwrap();
    let table = "counters";
    setup
        .execute(format!("CREATE TABLE {table} (id INT PRIMARY KEY, n INT)").as_str())
        .await
        .unwrap();
    setup
        .execute(format!("INSERT INTO {table} VALUES (1, 0)").as_str())
        .await
        .unwrap();
    let mut first = sqlx::PgConnection::connect(&url).await.unwrap();
    first
        .execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .unwrap();
    first
        .execute(format!("SELECT n FROM {table}").as_str())
        .await
        .unwrap();
    setup
        .execute(format!("UPDATE {table} SET n = n + 1").as_str())
        .await
        .unwrap();
    let error = StoreError::from(
        first
            .execute(format!("UPDATE {table} SET n = n + 1").as_str())
            .await
            .unwrap_err(),
    );
    assert_eq!(error.fault(), Fault::Transient, "{error:?}");
    first.execute("ROLLBACK").await.unwrap();
}

#[test]
fn a_database_without_a_free_connection_is_a_503_unavailable_with_retry_after() {
    let response = Problem::from(StoreError::from(sqlx::Error::PoolTimedOut)).into_response();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

#[test]
fn a_bug_class_database_failure_is_a_500() {
    let response = Problem::from(StoreError::from(sqlx::Error::RowNotFound)).into_response();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
