-- oauth-broker owns OAuth flows (state, PKCE verifier, browser binding) and sealed token sets.
CREATE TABLE flows (
    flow_id          text PRIMARY KEY,
    agent_id         text NOT NULL,
    provider         text NOT NULL,
    state_hash       text NOT NULL UNIQUE,
    sealed_verifier  text NOT NULL,
    browser_binding  text,
    ui_origin        text NOT NULL,
    status           text NOT NULL DEFAULT 'pending',
    error            jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL
);
CREATE INDEX flows_agent_idx ON flows (agent_id);

-- sealed_tokens is AES-GCM of the token set with agent_id as associated data.
CREATE TABLE grants (
    agent_id       text PRIMARY KEY,
    provider       text NOT NULL,
    email          text,
    scopes         text[] NOT NULL DEFAULT '{}',
    sealed_tokens  text NOT NULL,
    expires_at     timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
