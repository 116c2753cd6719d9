-- policy owns org-level OAuth apps (secrets sealed), client orgs and their send counters.
CREATE TABLE org_oauth_apps (
    org_id         text NOT NULL,
    provider       text NOT NULL CHECK (provider IN ('microsoft', 'google')),
    client_id      text NOT NULL,
    sealed_secret  text NOT NULL,
    tenant_id      text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, provider)
);

CREATE TABLE client_orgs (
    client_org_id  text PRIMARY KEY,
    org_id         text NOT NULL,
    name           text NOT NULL,
    email_domain   text,
    restrictions   jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX client_orgs_org_idx ON client_orgs (org_id);

-- One row per (agent, window start); incremented atomically at authorization time.
CREATE TABLE send_counters (
    scope_id      text NOT NULL,
    window_kind   text NOT NULL CHECK (window_kind IN ('hour', 'day')),
    window_start  timestamptz NOT NULL,
    used          integer NOT NULL DEFAULT 0,
    PRIMARY KEY (scope_id, window_kind, window_start)
);
