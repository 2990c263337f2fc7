//! The enums stored as text, in rusqlite's terms (for the SQLite backend, which enables the
//! `rusqlite` feature): the name as the API spells it. They live here because a trait of one
//! crate can be implemented only beside the type or the trait.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::balance::EntryKind;
use crate::coupon::DiscountType;
use crate::order::OrderStatus;

macro_rules! stored_as_text {
    ($type:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl ToSql for $type {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(match self {
                    $(<$type>::$variant => $text,)+
                }))
            }
        }

        impl FromSql for $type {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                match value.as_str()? {
                    $($text => Ok(<$type>::$variant),)+
                    _ => Err(FromSqlError::InvalidType),
                }
            }
        }
    };
}

stored_as_text!(EntryKind { Charge => "CHARGE", Payment => "PAYMENT", Refund => "REFUND" });
stored_as_text!(OrderStatus { Paid => "PAID", Cancelled => "CANCELLED" });
stored_as_text!(DiscountType { Fixed => "FIXED", Rate => "RATE" });
