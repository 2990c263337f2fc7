//! Orders and payment (주문 결제): the one place that spans capabilities. One transaction takes
//! the stock, redeems the coupon, prices the order, debits the balance, stores the order and
//! records the event for the data platform; any failure leaves no trace. Cancelling undoes all
//! of it in one transaction too.

mod cancel;
mod errors;
mod events;
mod model;
mod placing;
mod pricing;
mod request;
mod routes;
mod service;

pub use cancel::{cancel, Canceller};
pub use errors::OrderError;
pub use model::{Order, OrderLine};
pub use pricing::{price, Pricing};
pub use request::{OrderRequest, MAX_LINES, MAX_QUANTITY};
pub use routes::routes;
pub use service::{get, list_mine, place, sales_between, OrderState};
