//! Storage faults as HTTP answers: a database without a free connection is 503 with
//! Retry-After, a bug-class failure 500. (Each backend crate provokes its own faults for real
//! and checks how they are classified: `crates/store-*/tests`.)

use axum::http::StatusCode;
use axum::response::IntoResponse;
use commerce::http::Problem;
use commerce::store::{Fault, StoreError};

#[test]
fn a_database_without_a_free_connection_is_a_503_unavailable_with_retry_after() {
    let response =
        Problem::from(StoreError::new(Fault::Unavailable, "pool timed out")).into_response();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

#[test]
fn a_bug_class_database_failure_is_a_500() {
    let response = Problem::from(StoreError::new(Fault::Bug, "no row")).into_response();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
