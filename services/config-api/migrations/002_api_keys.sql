-- API keys: an operator key (org_id NULL) reaches every org; an org key reaches one org.
-- Only a SHA-256 of the key's random secret is stored; the key itself is shown once, at creation.
CREATE TABLE api_keys (
    key_id      text PRIMARY KEY,
    org_id      text,
    name        text NOT NULL DEFAULT '',
    secret_hash text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_org_idx ON api_keys (org_id);
