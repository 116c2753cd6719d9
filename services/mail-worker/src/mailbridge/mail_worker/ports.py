"""What the mail-worker's handlers need from the outside world."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from pydantic import SecretStr

from mailbridge.mail_worker.domain.cursor import Cursor
from mailbridge.mail_worker.domain.mime import Outgoing
from mailbridge.shared.errors import PermanentError
from mailbridge.shared.messages import AuthorizeSend, Credentials, Provider, SendAuthorization


@dataclass(frozen=True)
class InboxCounts:
    total: int
    unread: int


class ClaimedElsewhereError(Exception):
    """Another delivery of the same command claimed it first: this one must not send."""


class OutcomeUnknownError(Exception):
    """The message data was sent but no reply came: it may or may not have been accepted."""


class SendRefusedError(PermanentError):
    """Policy refused the send (recipient, domain or quota): the outcome is ``blocked``. Raise it
    as ``SendRefusedError.explained(policy's ErrorInfo)``."""


class SendPolicy(Protocol):
    """policy's verdict on one send; an allowed send has reserved its quota."""

    async def authorize(self, request: AuthorizeSend) -> SendAuthorization: ...


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

    async def claim(self, command_id: str, entry: LedgerEntry) -> bool:
        """Record ``entry`` only if nothing is recorded yet; False: another delivery got there."""
        ...

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


FirstUid = Callable[[int, int], int]
"""Given the mailbox's UIDVALIDITY and UIDNEXT, the first UID to fetch."""


@dataclass(frozen=True)
class FetchedBatch:
    uidvalidity: int
    first_uid: int
    messages: list[tuple[int, bytes]]


@dataclass(frozen=True)
class PollLimits:
    backlog: int  # messages delivered on a first poll (or after a UIDVALIDITY change)
    batch: int  # messages fetched per poll at most; the rest wait for the next one
    max_message_bytes: int  # larger messages are read as headers only


class InboxFetcher(Protocol):
    async def fetch_new(
        self, credentials: Credentials, first_uid: FirstUid, limit: int, max_bytes: int
    ) -> FetchedBatch: ...


class CursorStore(Protocol):
    """Each mailbox's poll cursor, shared by every replica (NATS KV)."""

    async def get(self, agent_id: str) -> Cursor | None: ...

    async def put(self, agent_id: str, cursor: Cursor) -> None: ...


class CredentialsSource(Protocol):
    async def get(self, agent_id: str) -> Credentials: ...


class MailboxReader(Protocol):
    """Logs in over IMAP and reads the inbox counts."""

    async def inbox_counts(self, credentials: Credentials) -> InboxCounts: ...


class TokenSource(Protocol):
    """An agent's access token for its provider's mailbox API, from the oauth-broker (which
    refreshes it); a grant it cannot use raises its error (not authorized, revoked, ...).
    ``refused``: the token the provider just refused (401), so the broker refreshes it once."""

    async def access_token(
        self, agent_id: str, *, refused: SecretStr | None = None
    ) -> SecretStr: ...


@dataclass(frozen=True)
class ProbedMailbox:
    """Who the token signs in as, and that mailbox's inbox counts."""

    email: str
    counts: InboxCounts


class MailboxProbe(Protocol):
    """Reads the signed-in address and the inbox counts through a provider's API."""

    async def probe(self, token: SecretStr) -> ProbedMailbox: ...


@dataclass(frozen=True)
class MailApi:
    """A provider's mailbox API, and where the tokens to call it come from."""

    tokens: TokenSource
    probe: MailboxProbe


class SubmissionChecker(Protocol):
    """Checks that the account may submit mail (EHLO + AUTH), sending nothing."""

    async def check_auth(self, credentials: Credentials) -> None: ...


class CredentialCache(Protocol):
    """Drops what it keeps of an agent, when its config or its org link changed."""

    def forget(self, agent_id: str) -> None: ...


class ApiCall(StrEnum):
    """What a provider API call costs its mailbox's budget: sending, or reading."""

    SEND = "send"
    READ = "read"


class Pacing(Protocol):
    """How hard one mailbox's provider may be called, held across every replica (NATS KV)."""

    def call(
        self, agent_id: str, provider: Provider, kind: ApiCall
    ) -> AbstractAsyncContextManager[None]:
        """Entered once the mailbox may be called: its shared "not before" has passed, one of its
        concurrent slots is free and its rate budget has room for ``kind``; held for the call.
        Raises RetryableError (with the wait) when the wait would outlast a delivery."""
        ...

    async def hold_off(self, agent_id: str, seconds: float) -> None:
        """Every replica waits ``seconds`` before its next call for this mailbox (Retry-After)."""
        ...
