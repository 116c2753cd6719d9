"""What the mail-worker's handlers need from the outside world."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from mailbridge.mail_worker.domain.mime import Outgoing
from mailbridge.shared.messages import Credentials, Message


@dataclass(frozen=True)
class InboxCounts:
    total: int
    unread: int


class OutcomeUnknownError(Exception):
    """The message data was sent but no reply came: it may or may not have been accepted."""


class LedgerState(StrEnum):
    DATA_STARTED = "data_started"
    SENT = "sent"


@dataclass(frozen=True)
class LedgerEntry:
    state: LedgerState
    message_id: str
    accepted: tuple[str, ...] = ()


class SendLedger(Protocol):
    """What became of each command_id, shared by every replica (NATS KV)."""

    async def get(self, command_id: str) -> LedgerEntry | None: ...

    async def put(self, command_id: str, entry: LedgerEntry) -> None: ...


DataStarting = Callable[[], Awaitable[None]]
"""Called by a submitter right before it sends the message data."""


class Submitter(Protocol):
    async def submit(
        self, credentials: Credentials, outgoing: Outgoing, data_starting: DataStarting
    ) -> list[str]: ...


class SentFolder(Protocol):
    """Keeps a copy of what was sent in the account's Sent folder (found by ``\\Sent``)."""

    async def append(self, credentials: Credentials, message: bytes) -> None: ...


class CredentialsSource(Protocol):
    async def get(self, agent_id: str) -> Credentials: ...


class MailboxReader(Protocol):
    """Logs in over IMAP (or an API) and reads the inbox counts."""

    async def inbox_counts(self, credentials: Credentials) -> InboxCounts: ...


class SubmissionChecker(Protocol):
    """Checks that the account may submit mail (EHLO + AUTH), sending nothing."""

    async def check_auth(self, credentials: Credentials) -> None: ...


class EventPublisher(Protocol):
    async def publish(self, message: Message) -> None: ...
