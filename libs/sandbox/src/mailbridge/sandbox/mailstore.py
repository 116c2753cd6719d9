"""One user's mailbox, in memory: messages, threads, Gmail's history and Graph's inbox change log.

Both providers keep the same model; only the ids differ (Gmail: 16 hex digits that increase,
Graph: opaque ``AAMk…`` strings) and each API shows it its own way (labels or folder + isRead).
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from typing import Literal

from mailbridge.sandbox import mime
from mailbridge.sandbox.mime import Envelope

Folder = Literal["inbox", "sent"]
Kind = Literal["google", "microsoft"]
HISTORY_START = 100_000


class _GmailIds:
    """Gmail message ids: milliseconds since the epoch and a sequence, always increasing."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> str:
        self._last = max(self._last + 1, int(time.time() * 1000) << 20)
        return f"{self._last:016x}"


_gmail_ids = _GmailIds()


def graph_id(prefix: str = "AAMk") -> str:
    """An opaque Exchange-style id, safe in a URL path without escaping."""
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(33)).decode()


@dataclass
class StoredMessage:
    id: str
    raw: bytes
    envelope: Envelope
    folder: Folder
    unread: bool
    thread_id: str
    received_at: float
    history_id: int

    @property
    def labels(self) -> list[str]:
        """The Gmail labels this sandbox knows: INBOX, SENT and UNREAD."""
        if self.folder == "sent":
            return ["SENT"]
        return ["UNREAD", "INBOX"] if self.unread else ["INBOX"]


@dataclass(frozen=True)
class HistoryRecord:
    """One ``messageAdded`` change: the message's labels as they were when it was added."""

    id: int
    message: StoredMessage
    labels: tuple[str, ...]


@dataclass
class Mailbox:
    kind: Kind
    messages: dict[str, StoredMessage] = field(default_factory=dict)
    history: list[HistoryRecord] = field(default_factory=list)
    history_id: int = HISTORY_START
    history_floor: int = HISTORY_START
    inbox_log: list[str] = field(default_factory=list)
    sync_generation: int = 1

    @classmethod
    def seeded(cls, kind: Kind, address: str, total: int, unread: int) -> Mailbox:
        """A mailbox with ``total`` simple messages in the inbox, the first ``unread`` unread;
        their history lies below the floor, as mail that was there before anyone synced."""
        mailbox = cls(kind)
        started = time.time() - total
        for n in range(total):
            raw = mime.build("seed@sandbox.test", [address], f"Seeded message {n + 1}", "Hello.")
            raw, _ = mime.with_message_id(raw, "sandbox.test")
            mailbox.add(raw, "inbox", unread=n < unread, received_at=started + n)
        mailbox.history_floor = mailbox.history_id
        return mailbox

    def add(
        self,
        raw: bytes,
        folder: Folder,
        *,
        unread: bool = False,
        thread_id: str | None = None,
        by_headers: bool = True,
        received_at: float | None = None,
    ) -> StoredMessage:
        """Store ``raw``; it joins ``thread_id``, else (``by_headers``) the thread of a message
        it answers, else a thread of its own."""
        envelope = mime.parse(raw)
        message_id = _gmail_ids.next() if self.kind == "google" else graph_id()
        answered = self.thread_answered(envelope) if by_headers else None
        thread = thread_id or answered or self._new_thread(message_id)
        self.history_id += 1 + secrets.randbelow(4)
        stored = StoredMessage(
            message_id,
            raw,
            envelope,
            folder,
            unread,
            thread,
            time.time() if received_at is None else received_at,
            self.history_id,
        )
        self.messages[stored.id] = stored
        self.history.append(HistoryRecord(self.history_id, stored, tuple(stored.labels)))
        if folder == "inbox":
            self.inbox_log.append(stored.id)
        return stored

    def _new_thread(self, first_id: str) -> str:
        """Gmail names a thread after its first message; Exchange's conversation ids are opaque."""
        return first_id if self.kind == "google" else graph_id("AAQk")

    def thread_answered(self, envelope: Envelope) -> str | None:
        """The thread of the nearest message named by In-Reply-To / References, if here."""
        for parent in envelope.parents:
            for found in self.with_message_id(parent):
                return found.thread_id
        return None

    def has_thread(self, thread_id: str) -> bool:
        return any(m.thread_id == thread_id for m in self.messages.values())

    def with_message_id(self, message_id: str) -> list[StoredMessage]:
        wanted = message_id.strip().strip("<>").lower()
        return [
            m for m in self.messages.values() if m.envelope.message_id.strip("<>").lower() == wanted
        ]

    def in_folder(self, folder: Folder) -> list[StoredMessage]:
        return [m for m in self.messages.values() if m.folder == folder]

    def counts(self, folder: Folder = "inbox") -> tuple[int, int]:
        """(total, unread) of ``folder``."""
        found = self.in_folder(folder)
        return len(found), sum(1 for m in found if m.unread)

    def expire_cursors(self) -> None:
        """Every history id and delta token issued so far goes stale, as after a long absence."""
        self.history_floor = self.history_id + 1
        self.history_id = self.history_floor
        self.history.clear()
        self.sync_generation += 1
