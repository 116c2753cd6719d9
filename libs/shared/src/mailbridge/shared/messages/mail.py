"""Commands and events of the mail plane (SPEC §5): test, send, poll and their results."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mailbridge.shared import subjects
from mailbridge.shared.errors import ErrorInfo
from mailbridge.shared.messages.base import Command, Event
from mailbridge.shared.messages.screening import Screening


class TestConnection(Command):
    """Run a connection test for an agent's mailbox; stale after ``expires_at``."""

    __test__ = False  # not a pytest test class
    subject_template = subjects.CMD_CONNECTION_TEST

    expires_at: AwareDatetime | None = None


class Attachment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    filename: str
    content_type: str = "application/octet-stream"
    content_base64: str


class ContentRef(BaseModel):
    """A send's content kept out of band, in the ``MAIL_CONTENT`` object store bucket: a command
    that carries it fits NATS's max payload whatever its attachments weigh."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    bucket: str = "MAIL_CONTENT"
    name: str = Field(description="the object's name in the bucket")
    size: int = Field(ge=0, description="bytes of the object")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the object")


class MessageContent(BaseModel):
    """What a ``ContentRef`` object holds: a send's bodies and attachments, as JSON."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)


class SendMessage(Command):
    """``content_ref``, when set, names an object holding ``text``, ``html`` and ``attachments``
    (a ``MessageContent``); the command's own three fields are then empty."""

    subject_template = subjects.CMD_MESSAGE_SEND

    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    subject: str = ""
    text: str | None = None
    html: str | None = None
    in_reply_to: str | None = None
    references: list[str] = Field(
        default_factory=list,
        description="Message-IDs of the thread, oldest first (the original's References): the"
        " References header is these, then in_reply_to, each once, the newest 20",
    )
    attachments: list[Attachment] = Field(default_factory=list)
    content_ref: ContentRef | None = None


class PollMailbox(Command):
    subject_template = subjects.CMD_MAILBOX_POLL

    report_success: bool = Field(
        default=False,
        description="publish `evt.mail.mailbox.polled` when this poll succeeds: the mailbox's"
        " polls have been failing (it is in poll backoff), and a success ends that",
    )


class MailboxPollFailed(Event):
    """A poll could not read the mailbox. ``auth``: its credentials no longer work (the user must
    fix them; the badge turns error at once); otherwise the failure may pass by itself, and
    config-api backs the mailbox's polls off. ``poll_issued_at`` lets config-api tell a failure
    of a poll issued before the credentials were saved or tested, which says nothing of them."""

    subject_template = subjects.EVT_MAILBOX_POLL_FAILED

    agent_id: str
    command_id: str
    poll_issued_at: AwareDatetime
    error: ErrorInfo
    auth: bool


class MailboxPolled(Event):
    """A poll that the scheduler asked to hear of (``report_success``) read the mailbox: its
    poll backoff ends. Not published for every poll: only one in backoff asks."""

    subject_template = subjects.EVT_MAILBOX_POLLED

    agent_id: str
    command_id: str
    poll_issued_at: AwareDatetime


class CheckResult(BaseModel):
    """One check of a connection test (``imap``, ``smtp``, ``api``, ``send``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    ok: bool
    latency_ms: int
    detail: str | None = None
    error: ErrorInfo | None = None


class ConnectionTested(Event):
    subject_template = subjects.EVT_CONNECTION_TESTED

    agent_id: str
    command_id: str
    ok: bool
    email: str | None = None
    inbox_total: int | None = None
    unread: int | None = None
    checks: dict[str, CheckResult] = Field(default_factory=dict)
    latency_ms: int = 0
    error: ErrorInfo | None = None


class MessageSent(Event):
    subject_template = subjects.EVT_MESSAGE_SENT

    agent_id: str
    command_id: str
    message_id: str
    accepted_recipients: list[str] = Field(default_factory=list)


class SendOutcome(StrEnum):
    FAILED = "failed"
    BLOCKED = "blocked"
    UNKNOWN = "unknown"


class MessageSendFailed(Event):
    subject_template = subjects.EVT_MESSAGE_SEND_FAILED

    agent_id: str
    command_id: str
    outcome: SendOutcome
    error: ErrorInfo


class AttachmentInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    filename: str | None
    content_type: str
    size: int


class MessageReceived(Event):
    subject_template = subjects.EVT_MESSAGE_RECEIVED

    agent_id: str
    mailbox: str = "INBOX"
    uid: int
    uidvalidity: int
    message_id: str | None = None
    from_: str | None = Field(default=None, alias="from")
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    reply_to: list[str] = Field(
        default_factory=list, description="where the sender asks replies to go (Reply-To)"
    )
    subject: str | None = None
    date: AwareDatetime | None = None
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    text: str | None = None
    html: str | None = None
    html_truncated: bool = False
    attachments: list[AttachmentInfo] = Field(default_factory=list)
    provider_message_id: str | None = Field(
        default=None,
        description="the message's id in the Gmail API or Graph, for a mailbox read through"
        " one; its uid is then derived from it and its uidvalidity is 0",
    )
    screening: Screening | None = Field(
        default=None,
        description="sender authentication and look-alike checks, for a runtime to weigh before"
        " it acts; null only in events published before screening existed",
    )

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    def dedupe_id(self) -> str:
        """One message of one mailbox, however many polls or replicas see it."""
        if self.provider_message_id is not None:
            return f"recv-{self.agent_id}-api-{self.provider_message_id}"
        return f"recv-{self.agent_id}-{self.uidvalidity}-{self.uid}"
