-- Approval before sending. Per agent, every address it wrote to (a sent message's accepted
-- recipients) or heard from (a received message's From), for the first_contact rule; and the
-- sends policy held for a person's approval, with the recipients they were held with, so that
-- only an approved send to exactly those recipients passes when it is queued again.
CREATE TABLE contacts (
    agent_id       text NOT NULL,
    address        text NOT NULL,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, address)
);

CREATE TABLE send_holds (
    agent_id     text NOT NULL,
    command_id   text NOT NULL,
    recipients   text[] NOT NULL,
    reason       text NOT NULL CHECK (reason IN ('first_contact', 'outside_domain', 'always')),
    held_at      timestamptz NOT NULL DEFAULT now(),
    approved_at  timestamptz,
    PRIMARY KEY (agent_id, command_id)
);
CREATE INDEX send_holds_held_at_idx ON send_holds (held_at);
