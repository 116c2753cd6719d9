"""What a client may ask to send over HTTP, validated before anything reaches a worker.

Addresses and header values are checked by the very functions the mail-worker uses (the shared
address parser, the header check that decodes encoded words), so HTTP and NATS accept the same
input; an address the worker would refuse is a 422 here, naming the field. Sizes are capped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from enum import StrEnum

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mailbridge.shared.addresses import MAX_RECIPIENTS, AddressError, parse_recipients
from mailbridge.shared.errors import ErrorCode, ErrorInfo
from mailbridge.shared.headers import (
    MAX_REFERENCES,
    HeaderValueError,
    check_content_type,
    check_header_text,
    check_message_id,
)
from mailbridge.shared.messages import ApprovalMode

MAX_SUBJECT = 998
MAX_BODY_CHARS = 1_000_000
MAX_ATTACHMENTS = 10
# What the whole path carries: the content travels out of band (the MAIL_CONTENT object store), so
# NATS's max payload is no bound; the mail servers are. 10 MiB of attachments is about 14 MB once
# MIME-encoded: under the 25 MB that Gmail, Yahoo and Zoho take, Microsoft 365's 35 MB default and
# the Gmail API's 35 MB upload. (Graph's sendMail takes 4 MB in one request: a Graph transport
# must send larger messages through an upload session.)
MAX_TOTAL_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENT_BYTES = MAX_TOTAL_ATTACHMENT_BYTES
# Request bodies: a send's holds the attachments in base64 (4/3), both bodies and JSON escaping;
# every other body is a small document. Larger is a 413 before it is read whole.
MAX_SEND_REQUEST_BYTES = 32 * 1024 * 1024
MAX_REQUEST_BYTES = 1024 * 1024


def checked_address(value: str) -> str:
    """One entry of ``to``/``cc``/``bcc``, accepted exactly when the mail-worker will accept it:
    the same shared parser (which may find a list in one value) and the same header check."""
    try:
        if not parse_recipients([value]):
            raise ValueError("an address is required")
    except AddressError as exc:
        raise ValueError(str(exc)) from exc
    return value


def too_large(detail: str) -> PydanticCustomError:
    """A validation error the API answers with 413 ``message_too_large``, not 422."""
    return PydanticCustomError(ErrorCode.MESSAGE_TOO_LARGE.value, detail)


def checked_header(value: str, field: str) -> str:
    try:
        return check_header_text(value, field)
    except HeaderValueError as exc:
        raise ValueError(str(exc)) from exc


def checked_message_id(value: str, field: str) -> str:
    try:
        return check_message_id(value, field)
    except HeaderValueError as exc:
        raise ValueError(str(exc)) from exc


class AttachmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(default="application/octet-stream", max_length=255)
    content_base64: str

    @field_validator("filename")
    @classmethod
    def _plain_filename(cls, value: str) -> str:
        return checked_header(value, "filename")

    @field_validator("content_type")
    @classmethod
    def _media_type(cls, value: str) -> str:
        try:
            return check_content_type(value)
        except HeaderValueError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("content_base64")
    @classmethod
    def _decodable_and_capped(cls, value: str) -> str:
        try:
            size = len(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ValueError("content_base64 is not base64") from exc
        if size > MAX_ATTACHMENT_BYTES:
            raise too_large(f"an attachment may be at most {MAX_ATTACHMENT_BYTES} bytes")
        return value


class OutgoingMessageIn(BaseModel):
    """``POST …/messages``: a new message, or a reply with ``in_reply_to``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "to": ["Ada Lovelace <ada@example.com>"],
                    "subject": "Your order",
                    "text": "It has shipped.",
                },
                {
                    "to": ["ada@example.com"],
                    "in_reply_to": "<abc@example.com>",
                    "references": ["<root@example.com>"],
                    "text": "Thanks!",
                },
            ]
        },
    )

    to: list[str] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    cc: list[str] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    bcc: list[str] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    subject: str = Field(default="", max_length=MAX_SUBJECT)
    text: str | None = Field(default=None, max_length=MAX_BODY_CHARS)
    html: str | None = Field(default=None, max_length=MAX_BODY_CHARS)
    in_reply_to: str | None = Field(default=None, max_length=998)
    references: list[str] = Field(
        default_factory=list,
        max_length=MAX_REFERENCES,
        description="the thread's Message-IDs, oldest first: the original's References",
    )
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)

    @field_validator("to", "cc", "bcc")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        return [checked_address(value) for value in values]

    @field_validator("subject")
    @classmethod
    def _single_line(cls, value: str) -> str:
        return checked_header(value, "subject")

    @field_validator("in_reply_to")
    @classmethod
    def _message_id(cls, value: str | None) -> str | None:
        return checked_message_id(value, "in_reply_to") if value is not None else None

    @field_validator("references")
    @classmethod
    def _message_ids(cls, values: list[str]) -> list[str]:
        return [checked_message_id(value, "references") for value in values]

    @model_validator(mode="after")
    def _complete(self) -> OutgoingMessageIn:
        if not (self.to or self.cc or self.bcc):
            raise ValueError("at least one recipient is required")
        if len(parse_recipients([*self.to, *self.cc, *self.bcc])) > MAX_RECIPIENTS:
            raise ValueError(f"at most {MAX_RECIPIENTS} recipients in all")  # as the worker counts
        if self.text is None and self.html is None:
            raise ValueError("text or html is required")
        total = sum(len(a.content_base64) * 3 // 4 for a in self.attachments)
        if total > MAX_TOTAL_ATTACHMENT_BYTES:
            raise too_large(f"attachments may be at most {MAX_TOTAL_ATTACHMENT_BYTES} bytes")
        return self

    def fingerprint(self) -> str:
        """Same request, same fingerprint: how an Idempotency-Key reuse is told from a retry."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


class SendStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"
    UNKNOWN = "unknown"
    HELD = "held"  # waiting for a person's approval: nothing sent, no quota used
    REJECTED = "rejected"  # a person rejected it, or nobody decided in time: never sent


class Decision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"  # nobody decided before the approval expired


class HeldView(BaseModel):
    """Why a send waits and what it would send, for the person who decides (no body)."""

    reason: ApprovalMode
    recipients: list[str] = Field(description="the recipients that need the approval")
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    subject: str = ""
    held_at: AwareDatetime
    expires_at: AwareDatetime = Field(description="undecided by then, it ends `rejected`")


class DecisionView(BaseModel):
    decision: Decision
    by: str | None = Field(
        default=None, description="`api-key:{id}`, as the audit trail names it; null: expiry"
    )
    at: AwareDatetime


class SendView(BaseModel):
    """``GET …/messages/{command_id}``: where a send stands."""

    command_id: str
    status: SendStatus
    message_id: str | None = None
    error: ErrorInfo | None = None
    held: HeldView | None = Field(default=None, description="set once the send was held")
    decision: DecisionView | None = Field(default=None, description="set once it was decided")


class SendList(BaseModel):
    """``GET …/messages?status=``: an agent's sends, oldest first."""

    messages: list[SendView]
