"""The last check before a byte is sent: the serialized message, read back, says what was meant.

The input checks refuse every value known to break a header line, but the standard library's
serializer has had bugs of its own (CPython gh-121650: a decoded encoded word's line break written
as is). So the bytes that will go to the server are parsed again, independently, and must have
exactly the intended top-level headers — each once, with the intended values, one From, the
intended To and Cc recipients and no others (no Bcc) — and parts whose headers are only MIME's.
The Gmail API and Microsoft Graph take recipients from these very headers, so this is what keeps
an injected recipient from walking past policy there. Anything else fails the send permanently.
"""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage, Message

from mailbridge.shared.addresses import AddressError, parse_recipients
from mailbridge.shared.errors import ErrorCode, PermanentError

_PARSER = email.parser.BytesParser(policy=email.policy.default)
_MIME_HEADERS = frozenset({"content-type", "content-transfer-encoding", "mime-version"})
_PART_HEADERS = _MIME_HEADERS | {"content-disposition"}


@dataclass(frozen=True)
class Intended:
    """What the top-level header block must say, and the attachments' file names in order."""

    headers: dict[str, str]  # lowercase name → value, compared up to folding whitespace
    sender: list[str]  # Recipient keys: the one From address
    to: list[str]
    cc: list[str]
    filenames: list[str]


def verify(raw: bytes, meant: Intended) -> None:
    """PermanentError(invalid_input) unless ``raw`` parses back to exactly ``meant``."""
    message = _PARSER.parsebytes(raw)
    problem = _header_block_problem(message, meant) or _parts_problem(message, meant)
    if problem is not None:
        raise PermanentError(
            ErrorCode.INVALID_INPUT,
            f"The message was refused before sending: its serialized form {problem}.",
        )


def _header_block_problem(message: Message, meant: Intended) -> str | None:
    names = [name.lower() for name in message]
    allowed = {"date", "from", "to", "cc", *meant.headers, *_MIME_HEADERS}
    if extra := sorted(set(names) - allowed):
        return f"has unexpected header fields {extra}"
    if len(names) != len(set(names)):
        return "repeats a header field"
    for name, value in meant.headers.items():
        if _folded(message.get(name)) != _folded(value):
            return f"changes the {name} header"
    return _address_problem(message, meant)


def _address_problem(message: Message, meant: Intended) -> str | None:
    expected = {"from": meant.sender, "to": meant.to, "cc": meant.cc}
    for name, keys in expected.items():
        try:
            found = [r.key for r in parse_recipients(message.get_all(name, []))]
        except AddressError:
            return f"has an unreadable {name} header"
        if found != keys:
            return f"names other {name} addresses than intended"
    return None


def _parts_problem(message: Message, meant: Intended) -> str | None:
    filenames = []
    for part in message.walk():
        if part is not message and {k.lower() for k in part} - _PART_HEADERS:
            return "has a part with unexpected header fields"
        if isinstance(part, EmailMessage) and part.is_attachment():
            filenames.append(part.get_filename())
    if filenames != meant.filenames:
        return "changes the attachments' file names"
    return None


def _folded(value: object) -> str | None:
    return " ".join(str(value).split()) if value is not None else None
