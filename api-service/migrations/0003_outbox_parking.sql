-- Outbox rows that cannot be published are counted and, after too many attempts, parked:
-- kept for an operator (with the last error), skipped by the relay, their task failed.
ALTER TABLE outbox
    ADD COLUMN parked_at  timestamptz,
    ADD COLUMN last_error text;

DROP INDEX IF EXISTS outbox_pending;
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL AND parked_at IS NULL;
CREATE INDEX outbox_parked ON outbox (parked_at) WHERE parked_at IS NOT NULL;
