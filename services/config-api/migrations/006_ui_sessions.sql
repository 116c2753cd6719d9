-- The Email tab's sessions (UI sessions): a browser works with one agent without an API key.
-- The link's one-time token and, once exchanged, the cookie's secret are stored only as SHA-256s;
-- exchanged says the link is spent. Rows a day past their expiry are dropped as new ones come.
CREATE TABLE ui_sessions (
    session_id  text PRIMARY KEY,
    link_hash   text NOT NULL UNIQUE,
    secret_hash text UNIQUE,
    agent_id    text NOT NULL,
    org_id      text NOT NULL,
    exchanged   boolean NOT NULL DEFAULT false,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (exchanged = (secret_hash IS NOT NULL))
);
CREATE INDEX ui_sessions_expires_idx ON ui_sessions (expires_at);
