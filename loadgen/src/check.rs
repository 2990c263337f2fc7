//! One invariant or target and whether it held (the kit's type, shared with the tests), and
//! how a list of them is printed.

pub use commerce_test_support::Check;

/// Prints the checks; true when all held.
pub fn print(checks: &[Check]) -> bool {
    for Check { ok, what } in checks {
        println!("  {} {what}", if *ok { "ok    " } else { "BROKEN" });
    }
    checks.iter().all(|c| c.ok)
}
