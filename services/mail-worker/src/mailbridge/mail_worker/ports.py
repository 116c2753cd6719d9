"""What the mail-worker's handlers need from the outside world."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mailbridge.shared.messages import Credentials, Message


@dataclass(frozen=True)
class InboxCounts:
    total: int
    unread: int


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
