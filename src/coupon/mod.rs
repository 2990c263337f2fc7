//! Coupons (쿠폰): campaigns, first-come-first-served issuance, a user's coupons, and the
//! redemption an order performs inside its own transaction.

mod issuing;
mod routes;
mod service;

pub use routes::routes;
pub use service::{
    create, get, issue, list_mine, Coupon, CouponError, DiscountType, NewCoupon, SoldOut, Terms,
    UserCoupon, UserCouponStatus,
};
