-- The flows and grants of the OAuth work (nothing was stored in 001's shape: the broker had no
-- handlers), and the outbox its events are written to in the transaction of the change.
DROP TABLE flows;
CREATE TABLE flows (
    flow_id         text PRIMARY KEY,
    agent_id        text NOT NULL,
    provider        text NOT NULL,
    state_hash      text NOT NULL UNIQUE,     -- sha256 of the one-time state; the state is not kept
    sealed_secrets  text NOT NULL,            -- PKCE verifier, sealed with the flow id
    nonce           text NOT NULL,
    issuer          text NOT NULL,            -- the provider's issuer, from its discovery document
    app             jsonb NOT NULL,           -- client id, tenant, own or inherited (no secret)
    scopes          text[] NOT NULL,          -- requested
    required_scopes text[] NOT NULL,          -- without them the grant is not kept
    expected_email  text,
    ui_origin       text NOT NULL,
    reauthorize     boolean NOT NULL DEFAULT false,
    binding_hash    text,                     -- sha256 of the browser's cookie, set at start
    status          text NOT NULL DEFAULT 'pending',
    email           text,
    error           jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    finished_at     timestamptz
);
CREATE INDEX flows_agent_idx ON flows (agent_id);

-- sealed_tokens: AES-GCM of {refresh_token, access: {resource: {token, expires_at}}}, agent id as
-- associated data. dead: the refresh error that needs a re-authorization (invalid_grant).
ALTER TABLE grants
    ADD COLUMN client_id    text NOT NULL DEFAULT '',
    ADD COLUMN dead         jsonb,
    ADD COLUMN retry_after  timestamptz,
    ADD COLUMN refreshed_at timestamptz NOT NULL DEFAULT now();

CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    subject       text NOT NULL,
    payload       text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    trace_context jsonb,
    attempts      integer NOT NULL DEFAULT 0,
    dead_at       timestamptz,
    dead_reason   text
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL AND dead_at IS NULL;
