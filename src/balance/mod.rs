//! Balance (잔액): prepaid money per user, its charges and its payment history.

mod charging;
mod debit;
mod errors;
mod routes;
mod service;

pub use charging::charge;
pub use debit::{debit, Insufficient};
pub use routes::{document_max_charge, routes};
pub use service::{
    balance_of, history, BalanceError, BalanceState, BalanceView, ChargeReceipt, HistoryEntry,
    Limits,
};
