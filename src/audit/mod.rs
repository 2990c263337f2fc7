//! The admin audit log: every admin write is recorded in its own transaction (who, what, on
//! which resource, the values before and after, when) and admins list the entries, newest
//! first. Other capabilities call [`record`]; this module imports none of them.

mod model;
mod routes;
mod service;

pub use model::{value, Action, AuditEntry, Entry};
pub use routes::routes;
pub use service::{list, record, AuditState};
