-- Receiving's health beside the badge (domain/poll_backoff.py): when it last started afresh (a
-- connection test) and the backoff of failing polls, which the poll scheduler of every replica
-- reads, so they all hold a failing mailbox back alike. Written with the status, under its lock.
ALTER TABLE mailbox_status ADD COLUMN poll_state jsonb NOT NULL DEFAULT '{}'::jsonb;
