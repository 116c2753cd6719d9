-- The audit trail (domain/audit.py): one row per thing that happened to an agent's mailbox, and
-- why. Append-only: no code path updates a row, and the trigger below refuses it; rows are
-- deleted only by the retention purge, which says so for its transaction. org_id is the agent's
-- org when the entry was recorded: an org's key sees what happened while the agent was its own.
-- source_id (the kind and the event's dedupe id, or the send's command id) is unique, so an
-- event delivered twice, or a change retried, is one entry.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    source_id   text NOT NULL UNIQUE,
    agent_id    text NOT NULL,
    org_id      text NOT NULL,
    kind        text NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    summary     text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb
);
-- a page of one agent's entries, newest first, resumed at (occurred_at, id)
CREATE INDEX audit_log_agent_idx ON audit_log (agent_id, occurred_at DESC, id DESC);
CREATE INDEX audit_log_occurred_idx ON audit_log (occurred_at);  -- the purge

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('mailbridge.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
