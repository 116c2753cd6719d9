"""What a client may ask to send over HTTP, validated before anything reaches a worker.

Every address goes through a real parser (display names, quoted local parts) and email-validator;
no header field may carry CR, LF or NUL (header injection); sizes are capped.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import hashlib
import json
from enum import StrEnum

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mailbridge.shared.errors import ErrorInfo

MAX_RECIPIENTS = 100
MAX_SUBJECT = 998
MAX_BODY_CHARS = 1_000_000
MAX_ATTACHMENTS = 10
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
MAX_TOTAL_ATTACHMENT_BYTES = 10 * 1024 * 1024
_FORBIDDEN = ("\r", "\n", "\0")


def refuse_control_characters(value: str, field: str) -> str:
    if any(c in value for c in _FORBIDDEN):
        raise ValueError(f"{field} must not contain CR, LF or NUL")
    return value


def parse_address(value: str) -> str:
    """``"Name" <a@b.example>`` or ``a@b.example`` → the same, checked; anything else refused."""
    refuse_control_characters(value, "an address")
    header = email.policy.default.header_factory("To", value)
    if len(header.addresses) != 1 or header.defects:
        raise ValueError(f"not one email address: {value!r}")
    address = header.addresses[0]
    try:
        validate_email(address.addr_spec, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {value!r} ({exc})") from exc
    return str(address)


class AttachmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(default="application/octet-stream", pattern=r"^[\w.+-]+/[\w.+-]+$")
    content_base64: str

    @field_validator("filename")
    @classmethod
    def _plain_filename(cls, value: str) -> str:
        return refuse_control_characters(value, "filename")

    @field_validator("content_base64")
    @classmethod
    def _decodable_and_capped(cls, value: str) -> str:
        try:
            size = len(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ValueError("content_base64 is not base64") from exc
        if size > MAX_ATTACHMENT_BYTES:
            raise ValueError(f"an attachment may be at most {MAX_ATTACHMENT_BYTES} bytes")
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
                {"to": ["ada@example.com"], "in_reply_to": "<abc@example.com>", "text": "Thanks!"},
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
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)

    @field_validator("to", "cc", "bcc")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        return [parse_address(value) for value in values]

    @field_validator("subject", "in_reply_to")
    @classmethod
    def _single_line(cls, value: str | None) -> str | None:
        return refuse_control_characters(value, "a header field") if value else value

    @model_validator(mode="after")
    def _complete(self) -> OutgoingMessageIn:
        if not (self.to or self.cc or self.bcc):
            raise ValueError("at least one recipient is required")
        if len(self.to) + len(self.cc) + len(self.bcc) > MAX_RECIPIENTS:
            raise ValueError(f"at most {MAX_RECIPIENTS} recipients in all")
        if self.text is None and self.html is None:
            raise ValueError("text or html is required")
        total = sum(len(a.content_base64) * 3 // 4 for a in self.attachments)
        if total > MAX_TOTAL_ATTACHMENT_BYTES:
            raise ValueError(f"attachments may be at most {MAX_TOTAL_ATTACHMENT_BYTES} bytes")
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


class SendView(BaseModel):
    """``GET …/messages/{command_id}``: where a send stands."""

    command_id: str
    status: SendStatus
    message_id: str | None = None
    error: ErrorInfo | None = None
