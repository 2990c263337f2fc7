//! The HTTP toolkit: extractors, authentication, problem documents, answers, the edge and the
//! metrics recorder. It knows no capability and no state: extractors take what they need from
//! any state through `FromRef` (`JwtKeys`, `WriteLimiter`).

pub mod answer;
pub mod auth;
pub mod extract;
pub mod metrics;
pub mod problem;
pub mod responses;
pub mod server;
mod strict_json;
mod write_limit;

pub use auth::{Admin, AuthUser, JwtKeys};
pub use extract::{Created, IdempotencyHeader, Json, PathId, Query};
pub use metrics::{builder as metrics_builder, recorder as metrics_recorder};
pub use problem::{ErrorCode, Problem, ProblemBody};
pub use write_limit::{WriteLimiter, WriteQuota, WriteUser};
