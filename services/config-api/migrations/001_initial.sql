-- config-api owns agents, their email configs (secrets sealed), mailbox status and the outbox.
CREATE TABLE agents (
    agent_id      text PRIMARY KEY,
    org_id        text NOT NULL,
    client_org_id text,
    name          text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agents_org_idx ON agents (org_id);

-- One row per configured agent. sealed_secret is AES-GCM with agent_id as associated data.
CREATE TABLE email_configs (
    agent_id      text PRIMARY KEY REFERENCES agents (agent_id) ON DELETE CASCADE,
    provider      text NOT NULL CHECK (provider IN ('imap', 'microsoft', 'google')),
    email         text,
    settings      jsonb NOT NULL DEFAULT '{}'::jsonb,
    sealed_secret text,
    version       integer NOT NULL DEFAULT 1,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The badge and banner of SPEC §3; absent row = not_connected.
CREATE TABLE mailbox_status (
    agent_id   text PRIMARY KEY REFERENCES agents (agent_id) ON DELETE CASCADE,
    status     text NOT NULL,
    last_error jsonb,
    last_test  jsonb,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Events written in the same transaction as the change; the relay publishes and marks them.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    subject      text NOT NULL,
    payload      text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
