"""What the MCP tools take and answer (their JSON schemas are these models), and the one rule of
their own: how a reply is addressed.

A reply goes to the original's Reply-To when it has one, else to its From; it names the
original's Message-ID as In-Reply-To and its References chain (the mail-worker writes
``References`` from both, and ``Re:``); ids of the chain that are no Message-ID (it came from
anyone) are left out, and only the newest are passed on, so a reply is never refused for them. An
original without a Message-ID or a sender cannot be answered as a reply (``invalid_input``).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from mailbridge.config_api.domain.email_config import EmailConfigView
from mailbridge.config_api.domain.outgoing import MAX_BODY_CHARS, OutgoingMessageIn
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.headers import REFERENCES_KEPT, is_message_id
from mailbridge.shared.messages import LastError, MailboxStatus, MessageReceived, Provider

SEND_WAIT_SECONDS = 5.0  # how long send_email and reply wait for the outcome before `queued`


class MailboxStatusView(BaseModel):
    """``get_mailbox_status``: the badge of the agent's Email tab, no secret."""

    status: MailboxStatus
    address: str | None = Field(description="the mailbox's email address, once configured")
    provider: Provider | None = None
    last_error: LastError | None = None
    warnings: list[str] = Field(
        default_factory=list, description="restrictions that apply to its sends, in words"
    )

    @classmethod
    def of(cls, view: EmailConfigView) -> MailboxStatusView:
        return cls(
            status=view.status,
            address=view.email,
            provider=view.provider,
            last_error=view.last_error,
            warnings=view.warnings,
        )


class ReplyIn(BaseModel):
    """``reply``: the answer to one message of the mailbox."""

    message_ref: str = Field(description="a `message_ref` from `list_messages`")
    text: str | None = Field(default=None, max_length=MAX_BODY_CHARS)
    html: str | None = Field(default=None, max_length=MAX_BODY_CHARS)


class ToolError(BaseModel):
    """An error result's structured content: SPEC §7's code, its message and fix-it hint."""

    code: ErrorCode
    message: str
    hint: str


def reply_to(original: MessageReceived, reply: ReplyIn) -> OutgoingMessageIn:
    """The message that answers ``original``, as ``POST …/messages`` would take it."""
    recipients = original.reply_to or ([original.from_] if original.from_ else [])
    if not recipients or original.message_id is None:
        raise MailbridgeError.explained(UNANSWERABLE)
    return OutgoingMessageIn(
        to=recipients,
        subject=original.subject or "",
        text=reply.text,
        html=reply.html,
        in_reply_to=original.message_id,
        references=[ref for ref in original.references if is_message_id(ref)][-REFERENCES_KEPT:],
    )


UNANSWERABLE = ErrorInfo.of(ErrorCode.INVALID_INPUT).saying(
    "This message has no sender or no Message-ID to reply to.",
    "Use send_email with the recipient instead.",
)
