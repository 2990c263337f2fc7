//! Balance (잔액): prepaid money per user, its charges and its payment history.

mod routes;
mod service;
mod store;

pub use routes::routes;
pub use service::{
    balance_of, charge, history, pay, BalanceError, BalanceView, ChargeReceipt, HistoryEntry,
    Limits,
};
