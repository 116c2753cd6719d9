"""Names for messages read on demand: a ``message_ref`` for one message, a cursor for a page.

A ref is ``{uidvalidity}.{uid}.{folder}``, the folder in unpadded URL-safe base64 (any name, in a
URL path segment and a NATS payload alike). Callers treat it as opaque; it carries no secret, and
the worker checks it against the account it reads, so a ref forged for another folder or
numbering names nothing. A cursor is ``{uidvalidity}.{uid}``: the next page is what is older.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from mailbridge.shared.errors import ErrorCode, MailbridgeError

_REF = re.compile(r"^(\d{1,10})\.(\d{1,10})\.([A-Za-z0-9_\-]{0,300})$")
_CURSOR = re.compile(r"^(\d{1,10})\.(\d{1,10})$")
MAX_UID = 2**32 - 1  # UIDs and UIDVALIDITY are 32-bit (RFC 3501 §2.3.1.1)


@dataclass(frozen=True)
class MessageRef:
    folder: str
    uidvalidity: int
    uid: int

    def encoded(self) -> str:
        folder = base64.urlsafe_b64encode(self.folder.encode()).rstrip(b"=").decode()
        return f"{self.uidvalidity}.{self.uid}.{folder}"


@dataclass(frozen=True)
class PageCursor:
    uidvalidity: int
    below_uid: int

    def encoded(self) -> str:
        return f"{self.uidvalidity}.{self.below_uid}"


def message_ref(text: str) -> MessageRef:
    """The ref ``encoded`` made, or ``invalid_input``."""
    match = _REF.match(text)
    folder = _folder(match[3]) if match else None
    if match is None or folder is None:
        raise MailbridgeError(ErrorCode.INVALID_INPUT, "Not a message_ref this API gave out.")
    return MessageRef(folder, *_numbers(match[1], match[2]))


def page_cursor(text: str) -> PageCursor:
    match = _CURSOR.match(text)
    if match is None:
        raise MailbridgeError(ErrorCode.INVALID_INPUT, "Not a cursor this API gave out.")
    return PageCursor(*_numbers(match[1], match[2]))


def _folder(encoded: str) -> str | None:
    try:
        folder = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return folder or None


def _numbers(uidvalidity: str, uid: str) -> tuple[int, int]:
    numbers = int(uidvalidity), int(uid)
    if not all(1 <= number <= MAX_UID for number in numbers):
        raise MailbridgeError(ErrorCode.INVALID_INPUT, "A UID out of range.")
    return numbers
