-- A client org id is unique within its org (the API path is /orgs/{org_id}/client-orgs/{id}), so
-- two orgs may each have an "acme" without seeing one another.
ALTER TABLE client_orgs DROP CONSTRAINT client_orgs_pkey;
ALTER TABLE client_orgs ADD PRIMARY KEY (org_id, client_org_id);
DROP INDEX client_orgs_org_idx;

-- Limits are sliding windows (the last hour, the last 24 hours) counted over reservations, not
-- fixed counters: one row per authorized send, released when the send then fails permanently.
-- A command_id reserves at most once, so a redelivered command never counts twice.
DROP TABLE send_counters;
CREATE TABLE send_reservations (
    reservation_id  text PRIMARY KEY,
    agent_id        text NOT NULL,
    command_id      text NOT NULL,
    reserved_at     timestamptz NOT NULL DEFAULT now(),
    released_at     timestamptz,
    UNIQUE (agent_id, command_id)
);
CREATE INDEX send_reservations_window_idx
    ON send_reservations (agent_id, reserved_at) WHERE released_at IS NULL;
