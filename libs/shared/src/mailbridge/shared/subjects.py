"""Every NATS subject of the contract (SPEC §5), and the two ways to use one.

Subjects follow ``{plane}.{domain}.{entity}.{verb}.v{N}.{id}``; the id is always the last token,
so ``render`` fills it in for publishing and ``wildcard`` replaces it with ``*`` for subscribing.
No subject string is written anywhere else in the code base.
"""

from __future__ import annotations

import re

ID_PLACEHOLDER = "{id}"
_VALID_ID = re.compile(r"^[A-Za-z0-9_\-:@+=]{1,200}$")

# Commands (stream MAIL_CMD)
CMD_CONNECTION_TEST = "cmd.mail.connection.test.v1.{id}"
CMD_MESSAGE_SEND = "cmd.mail.message.send.v1.{id}"
CMD_MAILBOX_POLL = "cmd.mail.mailbox.poll.v1.{id}"

# Events (streams MAIL_EVT, CONFIG_EVT, OAUTH_EVT, POLICY_EVT)
EVT_CONNECTION_TESTED = "evt.mail.connection.tested.v1.{id}"
EVT_MESSAGE_SENT = "evt.mail.message.sent.v1.{id}"
EVT_MESSAGE_SEND_FAILED = "evt.mail.message.send_failed.v1.{id}"
EVT_MESSAGE_RECEIVED = "evt.mail.message.received.v1.{id}"
EVT_MAILBOX_POLL_FAILED = "evt.mail.mailbox.poll_failed.v1.{id}"
EVT_MAILBOX_POLLED = "evt.mail.mailbox.polled.v1.{id}"
EVT_MESSAGE_HELD = "evt.mail.message.held.v1.{id}"  # waiting for a person's approval
EVT_MESSAGE_APPROVED = "evt.mail.message.approved.v1.{id}"
EVT_MESSAGE_REJECTED = "evt.mail.message.rejected.v1.{id}"
EVT_EMAIL_CONFIG_SAVED = "evt.config.email_config.saved.v1.{id}"
EVT_EMAIL_CONFIG_DELETED = "evt.config.email_config.deleted.v1.{id}"
EVT_STATUS_CHANGED = "evt.config.status.changed.v1.{id}"
EVT_AGENT_UPDATED = "evt.config.agent.updated.v1.{id}"
EVT_GRANT_AUTHORIZED = "evt.oauth.grant.authorized.v1.{id}"
EVT_GRANT_REFRESH_FAILED = "evt.oauth.grant.refresh_failed.v1.{id}"
EVT_GRANT_REVOKED = "evt.oauth.grant.revoked.v1.{id}"
EVT_ORG_CHANGED = "evt.policy.org.changed.v1.{id}"
EVT_CLIENT_ORG_CHANGED = "evt.policy.client_org.changed.v1.{id}"

# Requests (core NATS, queue groups)
RPC_CREDENTIALS_GET = "rpc.config.credentials.get.v1.{id}"
RPC_OAUTH_APP_GET = "rpc.config.oauth_app.get.v1.{id}"  # oauth-broker → config-api
RPC_OAUTH_FLOW_BEGIN = "rpc.oauth.flow.begin.v1.{id}"
RPC_OAUTH_FLOW_START = "rpc.oauth.flow.start.v1.{id}"
RPC_OAUTH_FLOW_COMPLETE = "rpc.oauth.flow.complete.v1.{id}"
RPC_OAUTH_FLOW_GET = "rpc.oauth.flow.get.v1.{id}"
RPC_OAUTH_ACCESS_TOKEN_GET = "rpc.oauth.access_token.get.v1.{id}"
RPC_OAUTH_GRANT_REVOKE = "rpc.oauth.grant.revoke.v1.{id}"
RPC_POLICY_EFFECTIVE_GET = "rpc.policy.effective.get.v1.{id}"
RPC_POLICY_SEND_AUTHORIZE = "rpc.policy.send.authorize.v1.{id}"
RPC_POLICY_SEND_APPROVE = "rpc.policy.send.approve.v1.{id}"  # config-api → policy: reserves it
RPC_POLICY_CONTACTS_KNOWN = "rpc.policy.contacts.known.v1.{id}"  # mail-worker: first contact?
RPC_POLICY_ORG_GET = "rpc.policy.org.get.v1.{id}"
RPC_POLICY_ORG_PUT = "rpc.policy.org.put.v1.{id}"
RPC_POLICY_ORG_DELETE = "rpc.policy.org.delete.v1.{id}"
RPC_POLICY_CLIENT_ORG_GET = "rpc.policy.client_org.get.v1.{id}"
RPC_POLICY_CLIENT_ORG_PUT = "rpc.policy.client_org.put.v1.{id}"
RPC_POLICY_CLIENT_ORG_DELETE = "rpc.policy.client_org.delete.v1.{id}"
RPC_MAIL_MESSAGES_LIST = "rpc.mail.messages.list.v1.{id}"  # reading on demand, by a mail-worker
RPC_MAIL_MESSAGES_GET = "rpc.mail.messages.get.v1.{id}"
RPC_MAIL_MESSAGES_SEEN = "rpc.mail.messages.seen.v1.{id}"
RPC_HEALTH = "rpc.health.check.v1.{id}"


class InvalidSubjectIdError(ValueError):
    """An id that would break the subject grammar (a dot, a wildcard, whitespace)."""


def render(template: str, subject_id: str) -> str:
    """The concrete subject for one id: ``render(CMD_CONNECTION_TEST, "a1")``."""
    if not _VALID_ID.match(subject_id):
        raise InvalidSubjectIdError(f"not a valid subject id: {subject_id!r}")
    return template.replace(ID_PLACEHOLDER, subject_id)


def wildcard(template: str) -> str:
    """The subject matching every id: ``cmd.mail.connection.test.v1.*``."""
    return template.replace(ID_PLACEHOLDER, "*")


def id_of(subject: str) -> str:
    """The id token of a concrete subject (always the last token)."""
    return subject.rsplit(".", 1)[-1]


def template_of(subject: str) -> str:
    """The template a concrete subject was rendered from: its id token back to ``{id}``."""
    return f"{subject.rsplit('.', 1)[0]}.{ID_PLACEHOLDER}"


def is_valid_id(subject_id: str) -> bool:
    return bool(_VALID_ID.match(subject_id))
