-- Orders can be cancelled (once): the status says so and cancelled_at says when.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN ('PAID', 'CANCELLED'));
ALTER TABLE orders ADD COLUMN cancelled_at TIMESTAMPTZ;
ALTER TABLE orders ADD CONSTRAINT orders_cancelled_when_cancelled
    CHECK ((status = 'CANCELLED') = (cancelled_at IS NOT NULL));

-- A cancellation pays the order back with a REFUND row; never two for one order.
ALTER TABLE balance_history DROP CONSTRAINT balance_history_kind_check;
ALTER TABLE balance_history ADD CONSTRAINT balance_history_kind_check
    CHECK (kind IN ('CHARGE', 'PAYMENT', 'REFUND'));
CREATE UNIQUE INDEX balance_history_one_refund ON balance_history (order_id) WHERE kind = 'REFUND';
