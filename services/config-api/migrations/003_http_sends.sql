-- The send ledger for HTTP sends: one row per command, found again by its Idempotency-Key.
CREATE TABLE http_sends (
    command_id      text PRIMARY KEY,
    agent_id        text NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    idempotency_key text,
    request_hash    text NOT NULL,
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'sent', 'failed', 'blocked', 'unknown')),
    message_id      text,
    error           jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (agent_id, idempotency_key)
);
