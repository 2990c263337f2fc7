-- A product's sale window: orders are taken from sale_starts_at (NULL: open from the start)
-- until sale_ends_at (exclusive; NULL: never closes), decided by the order batch's clock.
-- Instants are microseconds since the epoch.
ALTER TABLE products ADD COLUMN sale_starts_at INTEGER;
ALTER TABLE products ADD COLUMN sale_ends_at INTEGER;
