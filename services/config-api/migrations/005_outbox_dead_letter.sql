-- Outbox rows the relay could not publish are set aside (dead-lettered) with their reason, so one
-- row that can never go out no longer holds back every row behind it; they stay for operators.
-- attempts counts the relay's failed tries at a row while NATS was reachable.
ALTER TABLE outbox
    ADD COLUMN attempts    integer NOT NULL DEFAULT 0,
    ADD COLUMN dead_at     timestamptz,
    ADD COLUMN dead_reason text;
DROP INDEX outbox_unpublished_idx;
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL AND dead_at IS NULL;
