-- Processed-event records are pruned by age once a minute: the index keeps that a range scan.
CREATE INDEX platform_processed_events_age ON platform_processed_events (processed_at);
