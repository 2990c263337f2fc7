//! The vocabulary every layer of commerce shares: typed ids, money, the shop's clock and days,
//! pages of a list, the bounds of numbers, and the events orders publish. No I/O and nothing
//! above it: storage and services both build on it.

pub mod bounds;
pub mod clock;
pub mod events;
pub mod ids;
pub mod money;
pub mod page;
