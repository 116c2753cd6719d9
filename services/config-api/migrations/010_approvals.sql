-- Approval before sending. An agent may override its client org's approval mode. A send that
-- policy held waits here as 'held', with the command to queue again once approved (its content
-- in the content store) and why it is held; a person's decision, or the expiry's, is recorded
-- with who made it. 'rejected' is final. A send an agent runtime published on NATS gets its row
-- when it is held (no Idempotency-Key, no request hash), so it can be decided like any other.
ALTER TABLE agents ADD COLUMN approval text
    CHECK (approval IN ('off', 'first_contact', 'outside_domain', 'always'));

ALTER TABLE http_sends DROP CONSTRAINT http_sends_status_check;
ALTER TABLE http_sends ADD CONSTRAINT http_sends_status_check
    CHECK (status IN ('queued', 'sent', 'failed', 'blocked', 'unknown', 'held', 'rejected'));
ALTER TABLE http_sends
    ADD COLUMN held_command jsonb,
    ADD COLUMN hold         jsonb,
    ADD COLUMN held_at      timestamptz,
    ADD COLUMN decision     text CHECK (decision IN ('approved', 'rejected', 'expired')),
    ADD COLUMN decided_by   text,
    ADD COLUMN decided_at   timestamptz;
CREATE INDEX http_sends_held_idx ON http_sends (held_at) WHERE status = 'held';
CREATE INDEX http_sends_agent_status_idx ON http_sends (agent_id, status, created_at);
