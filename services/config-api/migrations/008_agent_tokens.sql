-- Agent tokens: what an AI agent itself holds to use its one mailbox (its reads, its sends, /mcp).
-- Only a SHA-256 of the token's random secret is stored; the token is shown once, at creation.
-- A revoked token keeps its row (revoked_at) and is refused on the very next request: tokens are
-- read on every request, never cached.
CREATE TABLE agent_tokens (
    token_id    text PRIMARY KEY,
    agent_id    text NOT NULL,
    org_id      text NOT NULL,
    name        text,
    secret_hash text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX agent_tokens_agent_idx ON agent_tokens (agent_id) WHERE revoked_at IS NULL;
