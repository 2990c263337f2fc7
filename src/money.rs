//! Money. KRW has no minor unit, so an amount is a whole number of won.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, Sub};

/// An amount of won. Arithmetic on it is checked where it can overflow (see `checked_*`).
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

    pub fn get(self) -> i64 {
        self.0
    }

    pub fn checked_mul(self, quantity: i64) -> Option<Won> {
        self.0.checked_mul(quantity).map(Won)
    }

    pub fn checked_add(self, other: Won) -> Option<Won> {
        self.0.checked_add(other.0).map(Won)
    }
}

impl Add for Won {
    type Output = Won;
    fn add(self, rhs: Won) -> Won {
        Won(self.0 + rhs.0)
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
