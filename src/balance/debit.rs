//! Paying from the balance: the balance's rule, decided against balances the caller has locked.

use crate::money::Won;

/// Not enough money: the balance there is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insufficient {
    pub balance: Won,
}

/// The balance after paying `amount` from `balance` (`None`: the user has no balance row).
pub fn debit(balance: Option<Won>, amount: Won) -> Result<Won, Insufficient> {
    match balance.filter(|b| *b >= amount) {
        Some(balance) => Ok(balance - amount),
        None => Err(Insufficient {
            balance: balance.unwrap_or(Won::ZERO),
        }),
    }
}
