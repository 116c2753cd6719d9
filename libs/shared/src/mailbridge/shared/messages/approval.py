"""Approval before sending: which sends wait for a person, and the facts of their decision.

policy answers a send's authorization with a hold when the agent's ``approval`` mode asks for one
(``SendAuthorization.hold``); the mail-worker then publishes ``MessageHeld`` instead of sending.
config-api keeps the held send, and a person approves or rejects it (or nobody does, and it
expires): ``MessageApproved`` / ``MessageRejected``, published with the decision. An approved
send is queued again with its own ``command_id``; policy lets it through and reserves its quota
at approval time (``ApproveSend``), never while it is held.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from mailbridge.shared import subjects
from mailbridge.shared.errors import ErrorInfo
from mailbridge.shared.messages.base import Event, Request
from mailbridge.shared.messages.mail import SendMessage


class ApprovalMode(StrEnum):
    """Which sends wait for a person's approval."""

    OFF = "off"
    FIRST_CONTACT = "first_contact"  # a recipient the agent never wrote to or heard from
    OUTSIDE_DOMAIN = "outside_domain"  # a recipient outside the client org's email domain
    ALWAYS = "always"


class SendHold(BaseModel):
    """Why a send waits: the mode that held it and the recipients it held it for."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    reason: ApprovalMode
    recipients: list[str] = Field(
        default_factory=list, description="the envelope addresses that need the approval"
    )


class MessageHeld(Event):
    """A send that waits for approval; nothing was sent and no quota was used. ``command`` is the
    send as it will be queued again once approved, its content (bodies, attachments) out of band
    in the content store (``content_ref``), so this event carries no message body."""

    subject_template = subjects.EVT_MESSAGE_HELD

    agent_id: str
    command_id: str
    hold: SendHold
    command: SendMessage


class MessageApproved(Event):
    """A person approved a held send; it is queued again, and its quota is reserved."""

    subject_template = subjects.EVT_MESSAGE_APPROVED

    agent_id: str
    command_id: str
    actor: str = Field(description="who approved: `api-key:{id}`, as the audit trail names it")


class MessageRejected(Event):
    """A held send ends ``rejected`` and is never sent: a person rejected it (``actor``), or
    nobody decided in time (``actor`` null, ``error.code`` ``approval_expired``)."""

    subject_template = subjects.EVT_MESSAGE_REJECTED

    agent_id: str
    command_id: str
    actor: str | None = None
    error: ErrorInfo | None = None


class ApproveSend(Request):
    """config-api asks policy to let a held send through: policy reserves its quota now, and
    answers a ``SendAuthorization`` (a refusal, such as ``send_limit_reached``, keeps it held)."""

    subject_template = subjects.RPC_POLICY_SEND_APPROVE

    agent_id: str
    command_id: str
    org_id: str | None = None
    client_org_id: str | None = None
