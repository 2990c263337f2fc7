-- The W3C traceparent of the request that wrote the event (NULL when traces are off), so its
-- delivery and consumption join that request's trace.
ALTER TABLE outbox ADD COLUMN traceparent TEXT;
