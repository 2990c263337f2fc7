-- A product's per-customer purchase limit: the units of it one user holds in PAID orders
-- never exceed max_per_user (NULL: no limit).
ALTER TABLE products
    ADD COLUMN max_per_user BIGINT NULL CHECK (max_per_user BETWEEN 1 AND 1000);

-- What each user holds of each product that has a limit: the sum of its PAID order lines,
-- kept by the order batch (set), cancellation (decremented) and the product's PATCH (built
-- from the orders when a limit is set on a product without one, deleted when it is cleared).
-- Products without a limit have no rows here, so their orders do not touch this table.
CREATE TABLE purchase_holdings (
    product_id BIGINT NOT NULL REFERENCES products (id),
    user_id    BIGINT NOT NULL,
    quantity   BIGINT NOT NULL CHECK (quantity >= 0),
    PRIMARY KEY (product_id, user_id)
);
