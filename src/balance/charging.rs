//! Charges made together: the charges waiting at one moment hold their users' balances once,
//! are decided in arrival order, and are written with one statement for the history rows and
//! the balances of all of them (see `store::Shared`). A refused charge writes nothing.
//!
//! The rules are the ones of a single charge, in its order of checks: the amount must be within
//! the per-charge maximum, and the balance must stay within the maximum balance.

use async_trait::async_trait;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

use super::service::{BalanceError, ChargeReceipt, Limits};
use crate::clock::Clock;
use crate::http::answer::render;
use crate::idempotency::{Answer, Attempt, IdempotencyKey, Outcome};
use crate::ids::UserId;
use crate::money::Won;
use crate::store::balance::ChargeRow;
use crate::store::{Conn, Db, Row, Shared, StoreError, WriteKind};

/// Charges `amount` to the user's balance and writes the CHARGE history row: decided and
/// stored together with the charges waiting at the same moment, in one transaction (see
/// [`Charging`]). Honours an idempotency key.
pub async fn charge(
    db: &Db,
    clock: &dyn Clock,
    limits: Limits,
    user: UserId,
    amount: i64,
    key: Option<IdempotencyKey>,
) -> Outcome<ChargeReceipt, BalanceError> {
    let attempt = key.map(|key| Attempt::new(user, key, "POST /me/balance/charges", &amount));
    db.write_shared(Charging {
        user,
        amount,
        limits,
        attempt,
        now: clock.now(),
    })
    .await
}

/// One charge to make, as its request asked.
pub(super) struct Charging {
    pub user: UserId,
    pub amount: i64,
    pub limits: Limits,
    pub attempt: Option<Attempt>,
    pub now: DateTime<Utc>,
}

#[async_trait]
impl Shared for Charging {
    type Value = ChargeReceipt;
    type Error = BalanceError;
    const KIND: WriteKind = WriteKind::Charges;

    fn rows(&self, rows: &mut Vec<Row>) {
        rows.push(Row::Balance(self.user.get()));
    }

    fn attempt(&self) -> Option<&Attempt> {
        self.attempt.as_ref()
    }

    fn now(&self) -> DateTime<Utc> {
        self.now
    }

    fn remember(result: &Result<ChargeReceipt, BalanceError>) -> Option<Answer> {
        render(StatusCode::OK, result)
    }

    /// Holds the balances, decides in order, writes all at once.
    async fn run_all(
        conn: &mut dyn Conn,
        charges: &[&Charging],
    ) -> Result<Vec<Result<ChargeReceipt, BalanceError>>, StoreError> {
        let valid = |c: &&&Charging| c.amount_checked().is_ok();
        let mut users: Vec<UserId> = charges.iter().filter(valid).map(|c| c.user).collect();
        users.sort_unstable();
        users.dedup();
        let mut balances: HashMap<UserId, Won> = if users.is_empty() {
            HashMap::new()
        } else {
            conn.hold_balances(&users).await?.into_iter().collect()
        };
        let decided: Vec<Result<ChargeRow, BalanceError>> = charges
            .iter()
            .map(|charge| charge.decide(&mut balances))
            .collect();
        let rows: Vec<ChargeRow> = decided.iter().flatten().copied().collect();
        let mut ids = if rows.is_empty() {
            Vec::new()
        } else {
            conn.record_charges(&rows).await?
        }
        .into_iter();
        decided
            .into_iter()
            .map(|d| match d {
                Ok(row) => {
                    let history_id = ids.next().ok_or_else(|| {
                        StoreError::corrupt("a charge of the batch was not stored")
                    })?;
                    Ok(Ok(ChargeReceipt {
                        user_id: row.user.get(),
                        balance: row.balance_after.get(),
                        charged: row.amount.get(),
                        history_id,
                    }))
                }
                Err(refused) => Ok(Err(refused)),
            })
            .collect()
    }
}

impl Charging {
    fn amount_checked(&self) -> Result<Won, BalanceError> {
        let max = self.limits.max_charge.get();
        if (1..=max).contains(&self.amount) {
            Ok(Won(self.amount))
        } else {
            Err(BalanceError::InvalidAmount {
                amount: self.amount,
                max,
            })
        }
    }

    /// Decides this charge against the balances as the charges before it left them, and
    /// applies it.
    fn decide(&self, balances: &mut HashMap<UserId, Won>) -> Result<ChargeRow, BalanceError> {
        let amount = self.amount_checked()?;
        let max = self.limits.max_balance;
        let balance = balances.get(&self.user).copied().unwrap_or(Won::ZERO);
        // Subtracting from the maximum (not adding to a balance that refunds may have taken
        // anywhere) cannot overflow.
        if amount > max || balance > max - amount {
            return Err(BalanceError::LimitExceeded {
                balance: balance.get(),
                charge: amount.get(),
                max: max.get(),
            });
        }
        let balance_after = Won(balance.get() + amount.get());
        balances.insert(self.user, balance_after);
        Ok(ChargeRow {
            user: self.user,
            amount,
            balance_after,
            at: self.now,
        })
    }
}
