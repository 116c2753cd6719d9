"""RFC 822 bytes as a mail server sees them: a few headers read, Bcc dropped, a Message-ID added.

The stored bytes are the sender's own, changed only where a real server changes them, so a
test can compare what it sent with what ``raw`` / ``$value`` gives back, byte for byte.
"""

from __future__ import annotations

import email.errors
import email.header
import email.policy
import email.utils
import re
import secrets
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import BytesParser

_HEAD_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class Envelope:
    """What a mailbox keeps from a message's headers."""

    message_id: str
    in_reply_to: str
    references: list[str]
    subject: str
    sender: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    snippet: str

    @property
    def recipients(self) -> list[str]:
        return [*self.to, *self.cc, *self.bcc]

    @property
    def parents(self) -> list[str]:
        """The Message-IDs this message answers, nearest first."""
        return [i for i in [self.in_reply_to, *reversed(self.references)] if i]


def parse(raw: bytes) -> Envelope:
    message = BytesParser(policy=email.policy.compat32).parsebytes(raw)
    return Envelope(
        message_id=next(iter(_ids(message.get("Message-ID"))), ""),
        in_reply_to=next(iter(_ids(message.get("In-Reply-To"))), ""),
        references=_ids(message.get("References")),
        subject=_text(message.get("Subject")),
        sender=_text(message.get("From")),
        to=_addresses(message, "To"),
        cc=_addresses(message, "Cc"),
        bcc=_addresses(message, "Bcc"),
        snippet=_snippet(message),
    )


def without_header(raw: bytes, name: str) -> bytes:
    """``raw`` minus every ``name:`` field of the header, folded lines included."""
    head, body = split_header(raw)
    kept: list[bytes] = []
    dropping = False
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = line.split(b":", 1)[0].strip().lower() == name.lower().encode()
        if not dropping:
            kept.append(line)
    return b"".join(kept) + body


def with_message_id(raw: bytes, domain: str) -> tuple[bytes, str]:
    """``raw`` with a Message-ID field first if it had none (as Gmail and Exchange assign)."""
    found = parse(raw).message_id
    if found:
        return raw, found
    message_id = f"<{secrets.token_hex(12)}@{domain}>"
    newline = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
    return b"Message-ID: " + message_id.encode() + newline + raw, message_id


def build(
    sender: str,
    to: list[str],
    subject: str,
    text: str,
    *,
    cc: list[str] | None = None,
    bcc: list[str] | None = None,
    html: bool = False,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A MIME message from a Graph ``message`` or an admin delivery's fields."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender
    for field, addresses in (("To", to), ("Cc", cc or []), ("Bcc", bcc or [])):
        if addresses:
            message[field] = ", ".join(addresses)
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate(usegmt=True)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text, subtype="html" if html else "plain")
    return message.as_bytes()


def split_header(raw: bytes) -> tuple[bytes, bytes]:
    """The header (its last line ending included) and the rest, blank line first."""
    match = _HEAD_END.search(raw)
    if match is None:
        return raw, b""
    cut = match.start() + (2 if match.group().startswith(b"\r\n") else 1)
    return raw[:cut], raw[cut:]


def strip_blank_line(body: bytes) -> bytes:
    """The body after ``split_header`` without the blank line that opens it."""
    return body.removeprefix(b"\r\n") if body.startswith(b"\r\n") else body.removeprefix(b"\n")


def _ids(value: str | None) -> list[str]:
    return re.findall(r"<[^<>\s]+>", str(value or ""))


def _text(value: str | None) -> str:
    """A header's text, encoded words decoded where they can be (else left as they are)."""
    if value is None:
        return ""
    try:
        text = str(email.header.make_header(email.header.decode_header(str(value))))
    except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        text = str(value)
    return " ".join(text.split())


def _addresses(message: Message, field: str) -> list[str]:
    values = [str(v) for v in message.get_all(field) or []]
    return [address for _, address in email.utils.getaddresses(values) if address]


def _snippet(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return " ".join(_decoded(payload, part.get_content_charset()).split())[:200]
    return ""


def _decoded(payload: bytes, charset: str | None) -> str:
    try:
        return payload.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return payload.decode("utf-8", errors="replace")
