//! Coupons (쿠폰): campaigns, first-come-first-served issuance (decided a batch at a time in
//! `issuing`) and a user's coupons. An order redeems its coupon in `order::placing`.

mod errors;
mod issuing;
mod model;
mod routes;
mod service;
mod usable;

pub use errors::CouponError;
pub use model::{Coupon, DiscountType, UserCoupon, UserCouponStatus};
pub use routes::routes;
pub use service::{create, get, issue, list_mine, CouponState, NewCoupon, SoldOut};
pub use usable::{redeem, usable, Terms};
