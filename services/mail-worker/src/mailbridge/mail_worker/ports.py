"""What the mail-worker's handlers need from the outside world."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from pydantic import SecretStr

from mailbridge.mail_worker.domain.cursor import ApiCursor, Cursor
from mailbridge.mail_worker.domain.message_ref import MessageRef, PageCursor
from mailbridge.mail_worker.domain.mime import Outgoing
from mailbridge.mail_worker.domain.watch_share import WatchShare
from mailbridge.shared.errors import PermanentError
from mailbridge.shared.messages import (
    AuthorizeSend,
    Credentials,
    Provider,
    SendAuthorization,
    TokenResource,
)


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


class ContactBook(Protocol):
    """Whom an agent wrote to or heard from before (policy keeps the history)."""

    async def known(self, agent_id: str, addresses: Sequence[str]) -> set[str] | None:
        """Those of ``addresses`` the agent knows; None when that cannot be told now."""
        ...


class SendLedger(Protocol):
    """What became of each command_id, shared by every replica (NATS KV)."""

    async def get(self, command_id: str) -> LedgerEntry | None: ...

    async def claim(self, command_id: str, entry: LedgerEntry) -> bool:
        """Record ``entry`` only if nothing is recorded yet; False: another delivery got there."""
        ...

    async def put(self, command_id: str, entry: LedgerEntry) -> None: ...

    async def release(self, command_id: str) -> None:
        """Forget a claim whose send was refused outright: nothing was sent, a retry may send."""
        ...


DataStarting = Callable[[], Awaitable[None]]
"""Called by a submitter right before it sends the message data."""


class Submitter(Protocol):
    async def submit(
        self, credentials: Credentials, outgoing: Outgoing, data_starting: DataStarting
    ) -> list[str]: ...


class SentFolder(Protocol):
    """Keeps a copy of what was sent in the account's Sent folder (found by ``\\Sent``)."""

    async def append(self, credentials: Credentials, message: bytes) -> None: ...


class SentSearch(Protocol):
    """Looks for a Message-ID in the account's Sent folder (over IMAP)."""

    async def find_sent(self, credentials: Credentials, message_id: str) -> bool: ...


@dataclass(frozen=True)
class SendRoute:
    """How one account's mail goes out."""

    submitter: Submitter
    sent_folder: SentFolder | None = None  # None: the provider files what it sends itself
    find_sent: Callable[[str], Awaitable[bool]] | None = None  # a Message-ID among sent mail?


FirstUid = Callable[[int, int], int]
"""Given the mailbox's UIDVALIDITY and UIDNEXT, the first UID to fetch."""


@dataclass(frozen=True)
class FetchedBatch:
    uidvalidity: int
    first_uid: int
    messages: list[tuple[int, bytes]]
    more_waiting: bool = False  # more mail is there than was fetched (a batch limit, a new arrival)


@dataclass(frozen=True)
class PollLimits:
    backlog: int  # messages delivered on a first poll (or after a UIDVALIDITY change)
    batch: int  # messages fetched per poll at most; the rest wait for the next one
    max_message_bytes: int  # larger messages are read as headers only
    # Whose Authentication-Results a read believes when it screens a message (the setting
    # trusted_authserv_id); here because every read of a mailbox is handed these limits.
    trusted_authserv_id: str = ""


class InboxFetcher(Protocol):
    async def fetch_new(
        self, credentials: Credentials, first_uid: FirstUid, limit: int, max_bytes: int
    ) -> FetchedBatch: ...


@dataclass
class FetchedItem:
    """What one message's FETCH answer said; ``literal`` is the header or body asked for."""

    uid: int = 0
    seen: bool = False
    size: int = 0  # of the whole message (RFC822.SIZE)
    literal: bytes = b""


@dataclass(frozen=True)
class FolderPage:
    uidvalidity: int
    messages: list[FetchedItem]  # newest first, each with its listed headers
    more: bool  # older messages than these are there


class MailBrowser(Protocol):
    """Any folder of an IMAP mailbox, read on demand (``rpc.mail.messages.*``)."""

    async def list_page(
        self, credentials: Credentials, folder: str, cursor: PageCursor | None, limit: int
    ) -> FolderPage:
        """The ``limit`` newest messages older than ``cursor``; ``invalid_input`` when the folder
        was renumbered since the cursor, ``not_found`` for a folder the mailbox lacks."""

    async def read(
        self, credentials: Credentials, ref: MessageRef, max_bytes: int
    ) -> FetchedItem | None:
        """The message (its header only beyond ``max_bytes``); None when ``ref`` names nothing
        there now."""

    async def mark_seen(self, credentials: Credentials, ref: MessageRef) -> bool:
        """Flag it ``\\Seen``; False when ``ref`` names nothing there now."""


class PushSession(InboxFetcher, Protocol):
    """A session that stays on INBOX and hears of new mail (IMAP IDLE)."""

    async def wait_for_mail(self, quiet_seconds: float) -> None:
        """Return when the server announces new mail, or after ``quiet_seconds`` without any;
        raise RetryableError when the session is lost or stops answering."""

    async def close(self) -> None: ...


class PushInbox(Protocol):
    async def watch(self, credentials: Credentials) -> PushSession | None:
        """A logged-in session for waiting on INBOX, or None when the server cannot push."""


class WatchLeases(Protocol):
    """Which mail-worker watches which mailbox, shared by every replica (NATS KV)."""

    worker_id: str

    def share(self) -> WatchShare:
        """What the replicas hold, as this worker last heard it."""

    async def heartbeat(self) -> None:
        """Say this worker is alive; one not heard of for a lease time is gone."""

    async def offer(self, agent_id: str) -> None:
        """A mailbox to watch (connected, on IMAP): free for a worker with room to claim."""

    async def claim(self, agent_id: str) -> bool:
        """Take a free mailbox, or one whose worker is gone; False when another was first."""

    async def release(self, agent_id: str) -> None:
        """Give a mailbox back, free again (to even out the share when workers join)."""

    async def unpushable(self, agent_id: str) -> None:
        """Its server cannot push: kept so that no one claims it; polls read it."""

    async def forget(self, agent_id: str) -> None:
        """Not to be watched (disconnected, failing): polls take it from here."""


class Watches(Protocol):
    """The mailboxes this worker's replicas watch with IDLE, as commands and config events see
    them (``entrypoints/watchers.py``)."""

    def is_watched(self, agent_id: str) -> bool:
        """A live worker watches it: its reads are that worker's, not a poll's."""

    async def offer(self, agent_id: str) -> None:
        """A mailbox connected on IMAP: to be watched by a worker with room."""

    async def restart(self, agent_id: str) -> None:
        """Its config or its org link changed: watched again with what is saved now."""

    async def stop_watching(self, agent_id: str) -> None:
        """No longer connected: not watched, polls (if any) read it."""


class NoWatches:
    """IDLE switched off: every mailbox is read by polls."""

    def is_watched(self, agent_id: str) -> bool:
        return False

    async def offer(self, agent_id: str) -> None:
        return None

    async def restart(self, agent_id: str) -> None:
        return None

    async def stop_watching(self, agent_id: str) -> None:
        return None


class CursorStore(Protocol):
    """Each mailbox's poll cursor, shared by every replica (NATS KV)."""

    async def get(self, agent_id: str) -> Cursor | None: ...

    async def put(self, agent_id: str, cursor: Cursor | ApiCursor) -> None: ...

    async def get_api(self, agent_id: str) -> ApiCursor | None: ...


class CredentialsSource(Protocol):
    async def get(self, agent_id: str) -> Credentials: ...


class MailboxReader(Protocol):
    """Logs in over IMAP and reads the inbox counts."""

    async def inbox_counts(self, credentials: Credentials) -> InboxCounts: ...


@dataclass(frozen=True)
class TokenGrant:
    """An access token, and the scopes the person granted with it."""

    token: SecretStr
    scopes: tuple[str, ...] = ()


class TokenSource(Protocol):
    """An agent's access token for its provider's mailbox API, from the oauth-broker (which
    refreshes it); a grant it cannot use raises its error (not authorized, revoked, ...).
    ``refused``: the token the provider just refused (401), so the broker refreshes it once;
    ``resource``: the API's token, or the mail token of IMAP/SMTP XOAUTH2."""

    async def access_token(
        self,
        agent_id: str,
        *,
        refused: SecretStr | None = None,
        resource: TokenResource = TokenResource.API,
    ) -> SecretStr: ...

    async def grant(self, agent_id: str, *, refused: SecretStr | None = None) -> TokenGrant:
        """The API's token with its scopes."""
        ...


@dataclass(frozen=True)
class ProbedMailbox:
    """Who the token signs in as, and that mailbox's inbox counts."""

    email: str
    counts: InboxCounts


@dataclass(frozen=True)
class ApiMessage:
    """One message read through a provider's API: its id there, its MIME, when it arrived."""

    provider_id: str
    raw: bytes
    received_at: float  # epoch seconds


@dataclass(frozen=True)
class SyncedBatch:
    """New messages, oldest first, and the provider's position to resume after them."""

    messages: list[ApiMessage]
    position: str


class CursorExpiredError(Exception):
    """The provider no longer knows the stored position (Gmail 404, Graph 410): resync."""


class ProviderMailbox(Protocol):
    """One agent's mailbox through its provider's API (Gmail, Graph)."""

    async def granted_scopes(self) -> list[str]:
        """The scopes of the agent's token; the broker's refusal (not authorized, revoked)."""
        ...

    async def probe(self) -> ProbedMailbox: ...

    async def send(self, outgoing: Outgoing, sending: DataStarting) -> None:
        """Sent, and filed in Sent by the provider; ``sending`` runs before the request goes."""
        ...

    async def find_sent(self, message_id: str) -> bool:
        """Whether a message with this Message-ID is in the mailbox's sent mail."""
        ...

    async def first_sync(self, limits: PollLimits) -> SyncedBatch:
        """At most ``limits.backlog`` newest inbox messages, and the position of now."""
        ...

    async def sync(self, position: str, limits: PollLimits) -> SyncedBatch:
        """Inbox messages added since ``position``; CursorExpiredError when it is too old."""
        ...

    async def resync(self, since: float, limits: PollLimits, known: tuple[str, ...]) -> SyncedBatch:
        """Inbox messages received at or after ``since`` (epoch seconds) but those ``known``
        (delivered already), at most ``limits.batch``, and a new position."""
        ...


class MailApi(Protocol):
    """A provider's mailbox API, opened for one agent at a time."""

    def mailbox(self, agent_id: str) -> ProviderMailbox: ...


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
