//! Answers of the endpoints that honour `Idempotency-Key`: the bytes stored with the key are
//! the bytes sent, and a replay sends them again.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::problem::Problem;
use crate::idempotency::{Answer, Outcome};

/// The answer to keep for `result`; `None` for server errors, which are not remembered.
pub fn render<T, E>(status: StatusCode, result: &Result<T, E>) -> Option<Answer>
where
    T: Serialize,
    for<'a> &'a E: Into<Problem>,
{
    match result {
        Ok(value) => Some(Answer {
            status: status.as_u16(),
            body: serde_json::to_string(value).ok()?,
        }),
        Err(error) => {
            let problem: Problem = error.into();
            (!problem.status.is_server_error()).then(|| Answer {
                status: problem.status.as_u16(),
                body: problem.body_json(),
            })
        }
    }
}

/// The response for an outcome: fresh results as usual, replays as stored.
pub fn respond<T, E>(status: StatusCode, outcome: Outcome<T, E>) -> Response
where
    T: Serialize,
    for<'a> &'a E: Into<Problem>,
{
    match outcome {
        Outcome::Fresh(Ok(value)) => (status, axum::Json(value)).into_response(),
        Outcome::Fresh(Err(error)) => {
            let problem: Problem = (&error).into();
            problem.into_response()
        }
        Outcome::Replayed(answer) => replay(answer),
    }
}

fn replay(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let content_type = if status.is_client_error() {
        "application/problem+json"
    } else {
        "application/json"
    };
    let mut response = (status, answer.body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
