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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debit_needs_the_whole_amount() {
        assert_eq!(debit(Some(Won(5000)), Won(5000)), Ok(Won::ZERO));
        assert_eq!(debit(Some(Won(5000)), Won(1200)), Ok(Won(3800)));
        assert_eq!(
            debit(Some(Won(4999)), Won(5000)),
            Err(Insufficient { balance: Won(4999) })
        );
        assert_eq!(
            debit(None, Won(1)),
            Err(Insufficient { balance: Won::ZERO })
        );
    }
}
