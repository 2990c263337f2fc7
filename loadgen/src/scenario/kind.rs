//! The scenarios by name, what each writes, and the ceiling each is measured against.

use clap::ValueEnum;

use crate::driver::{Budget, Load};
use crate::plan::LoadArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// `GET /health/live`, the server's cheapest answer: the HTTP ceiling.
    Health,
    /// Product detail.
    Detail,
    /// Popular products.
    Popular,
    /// Product detail, product list and popular products, mixed.
    Browse,
    /// Balance charges.
    Charge,
    /// --users distinct users race for --coupons coupons of one campaign, one request each.
    CouponRush,
    /// --users distinct users race for --stock units of one product, one request each.
    OrderRushHot,
    /// Orders of one unit each spread over 1,000 products.
    OrderRushSpread,
    /// A realistic blend: mostly browsing, some orders, charges, balance reads, coupon issues, and
    /// cancellations of orders placed earlier in the run.
    Mixed,
}

impl Scenario {
    /// Every scenario but the HTTP ceiling, in the order `all` and the bench run them.
    pub const ALL: [Scenario; 8] = [
        Scenario::Detail,
        Scenario::Popular,
        Scenario::Browse,
        Scenario::Charge,
        Scenario::CouponRush,
        Scenario::OrderRushHot,
        Scenario::OrderRushSpread,
        Scenario::Mixed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Health => "health",
            Scenario::Detail => "detail",
            Scenario::Popular => "popular",
            Scenario::Browse => "browse",
            Scenario::Charge => "charge",
            Scenario::CouponRush => "coupon-rush",
            Scenario::OrderRushHot => "order-rush-hot",
            Scenario::OrderRushSpread => "order-rush-spread",
            Scenario::Mixed => "mixed",
        }
    }

    /// Whether its requests store anything (so the WAL per stored write means something).
    pub fn writes(self) -> bool {
        matches!(
            self,
            Scenario::Charge
                | Scenario::CouponRush
                | Scenario::OrderRushHot
                | Scenario::OrderRushSpread
                | Scenario::Mixed
        )
    }

    /// The ceiling the scenario's throughput is a fraction of. Orders that all succeed are
    /// bounded by their transaction; everything else, rushes included (most of their answers are
    /// refusals that need no write), by what HTTP costs.
    pub fn ceiling(self) -> Ceiling {
        match self {
            Scenario::OrderRushSpread => Ceiling::Db,
            _ => Ceiling::Http,
        }
    }

    /// Rushes send one request per user, however long that takes; the rest run for the budget.
    pub fn load(self, args: &LoadArgs) -> Load {
        let load = args.load();
        match self {
            Scenario::CouponRush | Scenario::OrderRushHot => Load {
                budget: Budget::Requests(args.users as u64),
                ..load
            },
            _ => load,
        }
    }
}

/// What bounds a scenario's throughput, measured in the same run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ceiling {
    /// The server's cheapest endpoint over HTTP.
    Http,
    /// The order transaction called directly, without HTTP.
    Db,
    /// One hot row updated once per transaction, without HTTP: what one lock per commit allows.
    HotRow,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_command_line_names() {
        for scenario in Scenario::value_variants() {
            let value = scenario.to_possible_value().expect("no hidden scenarios");
            assert_eq!(scenario.name(), value.get_name());
        }
    }

    #[test]
    fn rushes_send_one_request_per_user() {
        let args = LoadArgs {
            concurrency: 8,
            duration: std::time::Duration::from_secs(3),
            requests: None,
            rate: None,
            users: 300,
            coupons: 50,
            stock: 50,
        };
        assert_eq!(
            Scenario::CouponRush.load(&args).budget,
            Budget::Requests(300)
        );
        assert_eq!(
            Scenario::Mixed.load(&args).budget,
            Budget::For(std::time::Duration::from_secs(3))
        );
    }
}
