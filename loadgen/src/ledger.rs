//! What the successful responses said happened: the ledger each worker keeps and the
//! invariants read the server's state against.

use serde_json::Value;
use std::collections::HashMap;

/// The effects the successful responses announced.
#[derive(Debug, Default)]
pub struct Ledger {
    sold: HashMap<i64, i64>,
    charged: HashMap<i64, i64>,
    paid: HashMap<i64, i64>,
    refunded: HashMap<i64, i64>,
    issued: i64,
}

impl Ledger {
    pub fn charged(&mut self, user: i64, amount: i64) {
        *self.charged.entry(user).or_default() += amount;
    }

    /// A 201 order: its lines left the stock, its `paid_amount` left the balance.
    pub fn ordered(&mut self, user: i64, lines: &[(i64, i64)], order: &Value) {
        for (product, quantity) in lines {
            *self.sold.entry(*product).or_default() += quantity;
        }
        *self.paid.entry(user).or_default() += order["paid_amount"].as_i64().unwrap_or(0);
    }

    /// A 200 cancellation: the order's lines went back to the stock, its `paid_amount` back to
    /// the balance.
    pub fn cancelled(&mut self, user: i64, lines: &[(i64, i64)], order: &Value) {
        for (product, quantity) in lines {
            *self.sold.entry(*product).or_default() -= quantity;
        }
        *self.refunded.entry(user).or_default() += order["paid_amount"].as_i64().unwrap_or(0);
    }

    pub fn issued(&mut self) {
        self.issued += 1;
    }

    pub fn merge(&mut self, other: &Ledger) {
        for (mine, theirs) in [
            (&mut self.sold, &other.sold),
            (&mut self.charged, &other.charged),
            (&mut self.paid, &other.paid),
            (&mut self.refunded, &other.refunded),
        ] {
            for (key, n) in theirs {
                *mine.entry(*key).or_default() += n;
            }
        }
        self.issued += other.issued;
    }

    pub fn sold_of(&self, product: i64) -> i64 {
        self.sold.get(&product).copied().unwrap_or(0)
    }

    pub fn balance_of(&self, user: i64) -> i64 {
        let of = |map: &HashMap<i64, i64>| map.get(&user).copied().unwrap_or(0);
        of(&self.charged) - of(&self.paid) + of(&self.refunded)
    }

    pub fn issued_count(&self) -> i64 {
        self.issued
    }

    pub fn touched(&self, user: i64) -> bool {
        self.charged.contains_key(&user) || self.paid.contains_key(&user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ledgers_of_workers_add_up() {
        let mut a = Ledger::default();
        let mut b = Ledger::default();
        a.charged(7, 10_000);
        a.ordered(7, &[(1, 2), (2, 1)], &json!({"paid_amount": 300}));
        b.ordered(7, &[(1, 1)], &json!({"paid_amount": 100}));
        b.issued();
        a.merge(&b);
        assert_eq!(a.sold_of(1), 3);
        assert_eq!(a.sold_of(2), 1);
        assert_eq!(a.balance_of(7), 9_600);
        assert_eq!(a.issued_count(), 1);
        assert!(a.touched(7) && !a.touched(8));
    }
}
