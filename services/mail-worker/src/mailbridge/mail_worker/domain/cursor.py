"""Where polling an inbox resumes: a cursor of UIDVALIDITY and the last UID seen.

A first poll, or a UIDVALIDITY change (the server renumbered the mailbox), starts at most
``backlog`` messages back from the newest, so a new connection never floods the agent.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cursor:
    uidvalidity: int
    last_uid: int


def first_uid_to_fetch(cursor: Cursor | None, uidvalidity: int, uidnext: int, backlog: int) -> int:
    if cursor is None or cursor.uidvalidity != uidvalidity:
        return max(1, uidnext - backlog)
    return cursor.last_uid + 1


def advanced(cursor: Cursor | None, uidvalidity: int, uids: list[int], first: int) -> Cursor:
    """The cursor after a poll that fetched ``uids`` (starting at ``first``)."""
    return Cursor(uidvalidity, max([first - 1, *uids]))
