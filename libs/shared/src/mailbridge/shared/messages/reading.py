"""Reading a mailbox on demand (SPEC §9): list a folder newest first, read one message, mark it
seen. Asked of a mail-worker over core NATS (``rpc.mail.messages.*``), by config-api's read routes
or by an agent runtime on NATS directly.

A message is named by its ``message_ref``, opaque to callers: the worker that lists it can read it
back, and a ref that no longer names the same message (the folder renumbered, the message gone) is
answered ``not_found``. A refusal comes back as the reply's ``error``, never as a timeout.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mailbridge.shared import subjects
from mailbridge.shared.errors import ErrorInfo
from mailbridge.shared.messages.base import Reply, Request
from mailbridge.shared.messages.mail import MessageReceived

MAX_LIST_LIMIT = 100
MESSAGE_REF_PATTERN = r"^[A-Za-z0-9._\-]{1,400}$"
FOLDER_MAX_CHARS = 200


class ListMessages(Request):
    """A page of a folder, newest first; the next page from ``cursor`` (the last reply's
    ``next_cursor``)."""

    subject_template = subjects.RPC_MAIL_MESSAGES_LIST

    agent_id: str
    folder: str = Field(default="INBOX", min_length=1, max_length=FOLDER_MAX_CHARS)
    limit: int = Field(default=20, ge=1, le=MAX_LIST_LIMIT)
    cursor: str | None = Field(default=None, max_length=400)


class MessageSummary(BaseModel):
    """A listed message: its envelope, size and whether it was seen; never its body."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    message_ref: str
    uid: int
    message_id: str | None = None
    from_: str | None = Field(default=None, alias="from")
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    subject: str | None = None
    date: AwareDatetime | None = None
    seen: bool = False
    size: int = Field(default=0, ge=0, description="bytes of the whole message (RFC822.SIZE)")


class MessageList(Reply):
    agent_id: str = ""
    folder: str = "INBOX"
    messages: list[MessageSummary] = Field(default_factory=list)
    next_cursor: str | None = Field(default=None, description="null on the last page")
    error: ErrorInfo | None = None


class GetMessage(Request):
    """One message, parsed as in ``message.received``; with ``raw``, its RFC 822 bytes too
    (refused as ``message_too_large`` beyond the worker's cap)."""

    subject_template = subjects.RPC_MAIL_MESSAGES_GET

    agent_id: str
    message_ref: str = Field(pattern=MESSAGE_REF_PATTERN)
    raw: bool = False


class FetchedMessage(Reply):
    agent_id: str = ""
    message_ref: str = ""
    message: MessageReceived | None = None
    seen: bool = False
    raw_base64: str | None = Field(default=None, description="the RFC 822 bytes, when asked")
    error: ErrorInfo | None = None


class MarkSeen(Request):
    """Flag one message ``\\Seen``, as a mail client does once it was read."""

    subject_template = subjects.RPC_MAIL_MESSAGES_SEEN

    agent_id: str
    message_ref: str = Field(pattern=MESSAGE_REF_PATTERN)


class MarkedSeen(Reply):
    agent_id: str = ""
    message_ref: str = ""
    error: ErrorInfo | None = None


class ReadRefused(Reply):
    """The answer to a read request that does not decode: its error only, which reads as any of
    the three replies (their other fields have defaults)."""

    error: ErrorInfo
