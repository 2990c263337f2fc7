//! Coupons (쿠폰): campaigns, first-come-first-served issuance (decided a batch at a time in
//! `issuing`) and a user's coupons. An order redeems its coupon in `order::placing`.

mod issuing;
mod routes;
mod service;
mod usable;

pub use routes::routes;
pub use service::{
    create, get, issue, list_mine, Coupon, CouponError, DiscountType, NewCoupon, SoldOut, Terms,
    UserCoupon, UserCouponStatus,
};
pub use usable::{redeem, usable};
