"""Fakes of the mail-worker's ports (proved against their adapters in tests/ports/)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from mailbridge.mail_worker.container import Container
from mailbridge.mail_worker.domain.cursor import ApiCursor, Cursor
from mailbridge.mail_worker.domain.mime import Outgoing
from mailbridge.mail_worker.entrypoints.metrics import WorkerMetrics
from mailbridge.mail_worker.ports import (
    ApiMessage,
    CursorExpiredError,
    DataStarting,
    FetchedBatch,
    FirstUid,
    InboxCounts,
    LedgerEntry,
    OutcomeUnknownError,
    PollLimits,
    ProbedMailbox,
    SyncedBatch,
    TokenGrant,
)
from mailbridge.shared import content
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError, PermanentError
from mailbridge.shared.messages import (
    AuthorizeSend,
    ContentRef,
    Credentials,
    SendAuthorization,
    SendHold,
    ServerEndpoint,
    TokenResource,
)
from tests.fakes.clock import FixedClock
from tests.fakes.config_api import RecordingPublisher


class FakeCredentials:
    def __init__(self, credentials: Credentials | MailbridgeError) -> None:
        self.credentials = credentials
        self.forgotten: list[str] = []

    def forget(self, agent_id: str) -> None:
        self.forgotten.append(agent_id)

    async def get(self, agent_id: str) -> Credentials:
        if isinstance(self.credentials, MailbridgeError):
            raise self.credentials
        return self.credentials


class FakeMailbox:
    def __init__(self, counts: InboxCounts | MailbridgeError) -> None:
        self.counts = counts

    async def inbox_counts(self, credentials: Credentials) -> InboxCounts:
        if isinstance(self.counts, MailbridgeError):
            raise self.counts
        return self.counts


class FakeSubmission:
    def __init__(self, error: MailbridgeError | None = None) -> None:
        self.error = error
        self.checked: list[str] = []

    async def check_auth(self, credentials: Credentials) -> None:
        self.checked.append(credentials.email)
        if self.error is not None:
            raise self.error


class MemoryLedger:
    def __init__(self) -> None:
        self.entries: dict[str, LedgerEntry] = {}

    async def get(self, command_id: str) -> LedgerEntry | None:
        return self.entries.get(command_id)

    async def claim(self, command_id: str, entry: LedgerEntry) -> bool:
        if command_id in self.entries:
            return False
        self.entries[command_id] = entry
        return True

    async def put(self, command_id: str, entry: LedgerEntry) -> None:
        self.entries[command_id] = entry

    async def release(self, command_id: str) -> None:
        self.entries.pop(command_id, None)


class MemoryCursorStore:
    def __init__(self) -> None:
        self.cursors: dict[str, Cursor | ApiCursor] = {}

    async def get(self, agent_id: str) -> Cursor | None:
        found = self.cursors.get(agent_id)
        return found if isinstance(found, Cursor) else None

    async def get_api(self, agent_id: str) -> ApiCursor | None:
        found = self.cursors.get(agent_id)
        return found if isinstance(found, ApiCursor) else None

    async def put(self, agent_id: str, cursor: Cursor | ApiCursor) -> None:
        self.cursors[agent_id] = cursor


class FakeSubmitter:
    """Accepts every recipient, or fails before or after the data starts."""

    def __init__(
        self, *, before_data: Exception | None = None, after_data: Exception | None = None
    ) -> None:
        self.before_data, self.after_data = before_data, after_data
        self.submitted: list[Outgoing] = []

    async def submit(
        self, credentials: Credentials, outgoing: Outgoing, data_starting: DataStarting
    ) -> list[str]:
        if self.before_data is not None:
            raise self.before_data
        await data_starting()
        if self.after_data is not None:
            raise self.after_data
        self.submitted.append(outgoing)
        return outgoing.recipients


class FakeSentFolder:
    """The Sent folder over IMAP: the copies appended, and the Message-IDs a provider filed
    there itself (``filed``), both found by ``find_sent``."""

    def __init__(self, error: MailbridgeError | None = None) -> None:
        self.copies: list[bytes] = []
        self.filed: set[str] = set()
        self.error = error

    async def find_sent(self, credentials: Credentials, message_id: str) -> bool:
        return message_id in self.filed or any(message_id.encode() in c for c in self.copies)

    async def append(self, credentials: Credentials, message: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.copies.append(message)


class FakeContactBook:
    """The agent knows ``known``; ``None``: the book cannot be asked (policy away)."""

    def __init__(self, known: set[str] | None = frozenset()) -> None:  # type: ignore[assignment]
        self.known_addresses = None if known is None else set(known)
        self.asked: list[list[str]] = []

    async def known(self, agent_id: str, addresses: Sequence[str]) -> set[str] | None:
        self.asked.append(list(addresses))
        if self.known_addresses is None:
            return None
        return {a for a in addresses if a in self.known_addresses}


class FakePolicy:
    """Allows every send, or refuses each with ``refusal``, or holds each with ``hold``; keeps
    what it was asked."""

    def __init__(self, refusal: ErrorInfo | None = None, hold: SendHold | None = None) -> None:
        self.refusal, self.hold = refusal, hold
        self.asked: list[AuthorizeSend] = []

    async def authorize(self, request: AuthorizeSend) -> SendAuthorization:
        self.asked.append(request)
        if self.hold is not None:
            return SendAuthorization(allowed=False, hold=self.hold)
        if self.refusal is not None:
            return SendAuthorization(allowed=False, error=self.refusal)
        return SendAuthorization(allowed=True, reservation_id=f"r-{request.command_id}")


class MemoryContentStore:
    """The out-of-band content bucket, in memory; checks digests as the real one does."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def put(self, name: str, data: bytes) -> ContentRef:
        self.objects[name] = data
        return content.reference(name, data)

    async def get(self, ref: ContentRef) -> bytes:
        if ref.bucket != content.BUCKET:
            raise PermanentError(ErrorCode.INVALID_INPUT, f"No content bucket {ref.bucket!r}.")
        if ref.name not in self.objects:
            raise PermanentError(ErrorCode.INVALID_INPUT, f"The content {ref.name!r} is gone.")
        return content.verified(ref, self.objects[ref.name])

    async def delete(self, ref: ContentRef) -> None:
        self.objects.pop(ref.name, None)


class FakeTokens:
    """The oauth-broker's token source: one token and its scopes, or a refusal; keeps what it was
    asked and which tokens were reported refused."""

    def __init__(
        self, answer: str | MailbridgeError = "token-1", scopes: tuple[str, ...] = ()
    ) -> None:
        self.answer, self.scopes = answer, scopes
        self.asked: list[str] = []
        self.refused: list[str] = []

    async def access_token(
        self,
        agent_id: str,
        *,
        refused: SecretStr | None = None,
        resource: TokenResource = TokenResource.API,
    ) -> SecretStr:
        return (await self.grant(agent_id, refused=refused)).token

    async def grant(self, agent_id: str, *, refused: SecretStr | None = None) -> TokenGrant:
        self.asked.append(agent_id)
        if refused is not None:
            self.refused.append(refused.get_secret_value())
        if isinstance(self.answer, MailbridgeError):
            raise self.answer
        return TokenGrant(SecretStr(self.answer), self.scopes)


class FakeProviderMailbox:
    """A provider's mailbox API in memory: a probe answer, sent mail, an inbox to sync.

    ``inbox`` holds (id, raw, received at); a position is the count of inbox messages seen.
    ``send_error`` fails sends (``sending`` runs first when it is an OutcomeUnknownError, as a
    lost answer); ``expired`` makes the next sync answer CursorExpiredError."""

    def __init__(
        self,
        probed: ProbedMailbox | MailbridgeError,
        scopes: tuple[str, ...] = (),
    ) -> None:
        self.probed, self.scopes = probed, scopes
        self.sent: list[Outgoing] = []
        self.filed: set[str] = set()  # Message-IDs in the sent mail
        self.inbox: list[ApiMessage] = []
        self.send_error: Exception | None = None
        self.expired = False
        self.probes = 0
        self.scopes_error: MailbridgeError | None = None  # the broker's refusal of a token

    async def granted_scopes(self) -> list[str]:
        if self.scopes_error is not None:
            raise self.scopes_error
        return list(self.scopes)

    async def probe(self) -> ProbedMailbox:
        self.probes += 1
        if isinstance(self.probed, MailbridgeError):
            raise self.probed
        return self.probed

    async def send(self, outgoing: Outgoing, sending: DataStarting) -> None:
        if self.send_error is not None and not isinstance(self.send_error, OutcomeUnknownError):
            raise self.send_error
        await sending()
        self.sent.append(outgoing)
        self.filed.add(outgoing.message_id)
        if self.send_error is not None:
            raise self.send_error

    async def find_sent(self, message_id: str) -> bool:
        return message_id in self.filed

    async def first_sync(self, limits: PollLimits) -> SyncedBatch:
        newest = self.inbox[-limits.backlog :] if limits.backlog else []
        return SyncedBatch(newest, str(len(self.inbox)))

    async def sync(self, position: str, limits: PollLimits) -> SyncedBatch:
        if self.expired:
            self.expired = False
            raise CursorExpiredError(position)
        start = int(position)
        taken = self.inbox[start : start + limits.batch]
        return SyncedBatch(taken, str(start + len(taken)))

    async def resync(self, since: float, limits: PollLimits, known: tuple[str, ...]) -> SyncedBatch:
        found = [m for m in self.inbox if m.received_at >= since and m.provider_id not in known]
        taken = found[: limits.batch]
        return SyncedBatch(
            taken, str(self.inbox.index(taken[-1]) + 1 if taken else len(self.inbox))
        )


class FakeMailApi:
    def __init__(self, mailbox: FakeProviderMailbox) -> None:
        self.box = mailbox
        self.opened: list[str] = []

    def mailbox(self, agent_id: str) -> FakeProviderMailbox:
        self.opened.append(agent_id)
        return self.box


class FakePushInbox:
    """A server's INBOX that pushes: messages by UID, sessions that hear of each new one at once,
    and what each login does (``logins``: an error to raise, or None to log in; then the rest
    log in). ``push=False``: a server without IDLE."""

    def __init__(
        self, push: bool = True, logins: list[MailbridgeError | None] | None = None
    ) -> None:
        self.push, self.logins = push, list(logins or [])
        self.messages: dict[int, bytes] = {}
        self.attempts = 0
        self.sessions: list[FakePushSession] = []

    def deliver(self, raw: bytes) -> None:
        self.messages[max(self.messages, default=0) + 1] = raw
        for session in self.sessions:
            session.news.set()

    def cut(self, error: MailbridgeError) -> None:
        """The server drops every session: the next wait (or the current one) raises ``error``."""
        for session in self.sessions:
            session.cut = error
            session.news.set()

    async def watch(self, credentials: Credentials) -> FakePushSession | None:
        self.attempts += 1
        failure = self.logins.pop(0) if self.logins else None
        if failure is not None:
            raise failure
        if not self.push:
            return None
        session = FakePushSession(self)
        self.sessions.append(session)
        return session


class FakePushSession:
    def __init__(self, inbox: FakePushInbox) -> None:
        self._inbox = inbox
        self.news = asyncio.Event()
        self.cut: MailbridgeError | None = None
        self.closed = False

    async def fetch_new(
        self, credentials: Credentials, first_uid: FirstUid, limit: int, max_bytes: int
    ) -> FetchedBatch:
        uids = sorted(self._inbox.messages)
        first = first_uid(UIDVALIDITY, max(uids, default=0) + 1)
        wanted = [u for u in uids if u >= first][:limit]
        return FetchedBatch(UIDVALIDITY, first, [(u, self._inbox.messages[u]) for u in wanted])

    async def wait_for_mail(self, quiet_seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.news.wait(), quiet_seconds)
        self.news.clear()
        if self.cut is not None:
            raise self.cut

    async def close(self) -> None:
        self.closed = True
        if self in self._inbox.sessions:
            self._inbox.sessions.remove(self)


UIDVALIDITY = 7


IMAP_ACCOUNT = Credentials(
    provider="imap", email="agent@example.com", password=SecretStr("pw"),
    imap=ServerEndpoint(host="imap.example.com", port=993, security="ssl"),
)  # fmt: skip


def container_of_fakes(**changes: Any) -> Container:
    """A mail-worker container of fakes for one IMAP account; ``changes`` replace its ports."""
    credentials, mailbox = FakeCredentials(IMAP_ACCOUNT), FakeMailbox(InboxCounts(1, 0))
    made = Container(
        publisher=RecordingPublisher(),
        credentials=credentials,
        fresh_credentials=credentials,
        credential_cache=credentials,
        mailbox=mailbox,
        inbox=mailbox,  # type: ignore[arg-type]  # replaced where it is used
        browser=mailbox,  # type: ignore[arg-type]  # replaced where it is used
        sent_folder=FakeSentFolder(),
        sent_search=FakeSentFolder(),
        submission=FakeSubmission(),
        submitter=FakeSubmitter(),
        ledger=MemoryLedger(),
        cursors=MemoryCursorStore(),
        content=MemoryContentStore(),
        policy=FakePolicy(),
        contacts=FakeContactBook(),
        limits=PollLimits(10, 10, 1_000_000),
        metrics=WorkerMetrics(CollectorRegistry()),
        clock=FixedClock(),
    )
    return dataclasses.replace(made, **changes)
