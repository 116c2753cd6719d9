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


SEEN_KEPT = 200
"""Provider ids a mailbox's API cursor remembers: a resync from the newest arrival time sees
those messages again and must not deliver them twice."""


@dataclass(frozen=True)
class ApiCursor:
    """Where an API mailbox's polling resumes: the provider's position (Gmail history id, Graph
    delta link), the arrival time of the newest message delivered, and the ids delivered last."""

    position: str
    newest: float = 0.0
    seen: tuple[str, ...] = ()

    def after(self, position: str, delivered: list[tuple[str, float]]) -> ApiCursor:
        """The cursor once ``delivered`` (id, arrival time) were published."""
        newest = max([self.newest, *(at for _, at in delivered)])
        seen = (*self.seen, *(pid for pid, _ in delivered))[-SEEN_KEPT:]
        return ApiCursor(position, newest, seen)
