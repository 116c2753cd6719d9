-- policy writes its events (OrgChanged, ClientOrgChanged) here in the transaction of the change,
-- and the shared outbox relay publishes them: a stored change never loses its event. The same
-- shape as config-api's outbox: the trace of the request that wrote each row, and the relay's
-- dead-lettering (attempts while NATS was reachable, when and why a row was set aside).
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
