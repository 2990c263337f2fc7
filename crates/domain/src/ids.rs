//! Identifier newtypes. Every id is a positive 64-bit integer; the constructors refuse anything
//! else, so a value of one of these types is always a valid id.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = i64)]
        pub struct $name(i64);

        impl $name {
            pub fn new(value: i64) -> Option<Self> {
                (value > 0).then_some(Self(value))
            }
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        /// Only the canonical decimal: no sign, no leading zero, nothing but digits.
        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                let canonical = s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0');
                canonical.then(|| s.parse().ok()).flatten().and_then(Self::new).ok_or(InvalidId)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = i64::deserialize(d)?;
                Self::new(raw).ok_or_else(|| serde::de::Error::custom("an id must be a positive integer"))
            }
        }
    )*};
}

id_type!(
    /// A customer, identified by the `sub` claim of their token.
    UserId,
    ProductId,
    CouponId,
    /// A coupon issued to one user.
    UserCouponId,
    OrderId,
    WebhookId,
    /// One event's delivery to one webhook.
    DeliveryId,
);

/// A string that is not a positive 64-bit integer written as a canonical decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an id must be a positive 64-bit integer without sign or leading zero")]
pub struct InvalidId;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_canonical_positive_decimals() {
        assert_eq!("7".parse::<UserId>().map(UserId::get), Ok(7));
        assert_eq!(
            "9223372036854775807".parse::<UserId>().map(UserId::get),
            Ok(i64::MAX)
        );
        for bad in [
            "0",
            "-1",
            "abc",
            "",
            "1.5",
            "99999999999999999999",
            "+1",
            "01",
            " 1",
            "1 ",
            "1e3",
            "٧",
        ] {
            assert!(bad.parse::<UserId>().is_err(), "{bad} accepted");
        }
        assert!(serde_json::from_str::<ProductId>("0").is_err());
        assert_eq!(serde_json::from_str::<ProductId>("3").unwrap().get(), 3);
    }
}
