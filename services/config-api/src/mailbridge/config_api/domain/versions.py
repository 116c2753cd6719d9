"""Optimistic concurrency for email configs: ``ETag`` on read, ``If-Match`` on write.

A config's entity tag is its version (``"0"`` when there is none). ``If-Match: *`` asks only that a
config exists.
"""

from __future__ import annotations

import re

from mailbridge.shared.errors import ErrorCode, MailbridgeError

ANY_VERSION = -1
_TAG = re.compile(r'^\s*(?:W/)?"(\d{1,9})"\s*$')


def etag(version: int | None) -> str:
    return f'"{version or 0}"'


def parse_if_match(header: str | None) -> int | None:
    """The version the client expects, ``ANY_VERSION`` for ``*``, or None without the header."""
    if header is None:
        return None
    if header.strip() == "*":
        return ANY_VERSION
    match = _TAG.match(header)
    if match is None:
        raise MailbridgeError(ErrorCode.INVALID_INPUT, "If-Match must be an ETag of this config.")
    return int(match.group(1))


def check(expected: int | None, current: int) -> None:
    """Refuse a write whose client read another version than the stored one (412)."""
    if expected is None:
        return
    if (expected == ANY_VERSION and current == 0) or expected not in (ANY_VERSION, current):
        raise MailbridgeError(ErrorCode.PRECONDITION_FAILED)
