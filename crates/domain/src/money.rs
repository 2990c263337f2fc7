//! Money. KRW has no minor unit, so an amount is a whole number of won.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Sub;

/// The most the maximum charge or the maximum balance may be set to (10^15 won): a balance
/// past its maximum by refunds, plus a charge, plus an order, stays far inside 64 bits.
pub const MAX_SETTING: Won = Won(1_000_000_000_000_000);

/// An amount of won. Sums are formed only with `checked_*`; subtraction is left for amounts
/// known to be in order (a discount from its total, a payment from a balance that covers it).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = i64)]
pub struct Won(pub i64);

impl Won {
    pub const ZERO: Won = Won(0);

    pub const fn get(self) -> i64 {
        self.0
    }

    pub fn checked_mul(self, quantity: i64) -> Option<Won> {
        self.0.checked_mul(quantity).map(Won)
    }

    pub fn checked_add(self, other: Won) -> Option<Won> {
        self.0.checked_add(other.0).map(Won)
    }
}

impl Sub for Won {
    type Output = Won;
    fn sub(self, rhs: Won) -> Won {
        Won(self.0 - rhs.0)
    }
}

impl fmt::Display for Won {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} won", self.0)
    }
}
