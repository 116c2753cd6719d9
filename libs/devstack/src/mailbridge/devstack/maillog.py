"""What the devstack's Postfix did with a message, read from its log.

Postfix logs the Message-ID of every message it accepts (``cleanup``: ``QUEUEID: message-id=<…>``)
and one line per recipient it then delivered or discarded (``QUEUEID: to=<…>, … status=…``). Every
recipient a client got past ``RCPT TO`` shows up there, whether its domain is local or not (the
devstack discards mail for other domains, and logs it): the MTA's own account of who was written to.
"""

from __future__ import annotations

import re
from pathlib import Path

_ACCEPTED = re.compile(r"\]: ([0-9A-F]+): message-id=(<[^>]*>)")
_DELIVERY = re.compile(r"\]: ([0-9A-F]+): to=<([^>]*)>, .*status=(\w+)")


def queue_ids(log_file: Path, message_id: str) -> set[str]:
    """The queue ids under which Postfix accepted messages with this Message-ID."""
    text = log_file.read_text(errors="replace")
    return {queue_id for queue_id, mid in _ACCEPTED.findall(text) if mid == message_id}


def recipients(log_file: Path, message_id: str) -> list[str]:
    """Every recipient Postfix took for messages with this Message-ID, as it logged them."""
    ids = queue_ids(log_file, message_id)
    text = log_file.read_text(errors="replace")
    return [to for queue_id, to, _ in _DELIVERY.findall(text) if queue_id in ids]


def mentions(log_file: Path, address: str) -> bool:
    """Whether any delivery line names ``address`` (case-insensitively)."""
    text = log_file.read_text(errors="replace").lower()
    return f"to=<{address.lower()}>" in text
