"""Fakes of the services' ports, for handler tests in milliseconds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from mailbridge.config_api.domain import versions
from mailbridge.config_api.domain.email_config import AgentIn, StatusRecord, StoredConfig
from mailbridge.config_api.ports import StatusDecision
from mailbridge.mail_worker.domain.cursor import Cursor
from mailbridge.mail_worker.domain.mime import Outgoing
from mailbridge.mail_worker.ports import DataStarting, InboxCounts, LedgerEntry
from mailbridge.policy.domain.restrictions import WindowCounts
from mailbridge.policy.ports import QuotaDecision, Reservation, StoredClientOrg, StoredOrgApp
from mailbridge.shared import content
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError, PermanentError
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import (
    AuthorizeSend,
    ConnectionTested,
    ContentRef,
    Credentials,
    EmailConfigSaved,
    Event,
    Message,
    Provider,
    SendAuthorization,
)


class FixedClock:
    def __init__(self, now: datetime | None = None) -> None:
        self.current = now or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current


class FakeConfigRepository:
    def __init__(self) -> None:
        self.agents: dict[str, AgentIn] = {}
        self.configs: dict[str, StoredConfig] = {}
        self.statuses: dict[str, StatusRecord] = {}
        self.outbox: list[Event] = []

    async def upsert_agent(self, agent_id: str, agent: AgentIn, events: list[Event]) -> None:
        self.agents[agent_id] = agent
        self.outbox.extend(events)

    async def agent_org(self, agent_id: str) -> str | None:
        agent = self.agents.get(agent_id)
        return agent.org_id if agent else None

    async def load_owned(
        self, agent_id: str
    ) -> tuple[AgentIn | None, StoredConfig | None, StatusRecord]:
        config, status = await self.load(agent_id)
        return self.agents.get(agent_id), config, status

    async def load(self, agent_id: str) -> tuple[StoredConfig | None, StatusRecord]:
        return self.configs.get(agent_id), self.statuses.get(agent_id, StatusRecord())

    def _version(self, agent_id: str) -> int:
        return self.configs[agent_id].version if agent_id in self.configs else 0

    async def save(
        self,
        config: StoredConfig,
        status: StatusRecord,
        events: list[Event],
        expected_version: int | None = None,
    ) -> StoredConfig:
        versions.check(expected_version, self._version(config.agent_id))
        config = config.model_copy(update={"version": self._version(config.agent_id) + 1})
        self.configs[config.agent_id] = config
        self.statuses[config.agent_id] = status
        self.outbox += [_with_version(event, config.version) for event in events]
        return config

    async def delete(
        self,
        agent_id: str,
        status: StatusRecord,
        events: list[Event],
        expected_version: int | None = None,
    ) -> bool:
        versions.check(expected_version, self._version(agent_id))
        self.statuses.pop(agent_id, None)
        self.outbox += events
        return self.configs.pop(agent_id, None) is not None

    async def update_status(self, agent_id: str, decide: StatusDecision) -> None:
        outcome = decide(*await self.load(agent_id))
        if outcome is not None:
            self.statuses[agent_id], events = outcome
            self.outbox += events


def _with_version(event: Event, version: int) -> Event:
    """As the adapter does: a saved config's event tells the version stored, not the guess."""
    if isinstance(event, EmailConfigSaved):
        return event.model_copy(update={"version": version})
    return event


class RecordingRevoker:
    def __init__(self) -> None:
        self.revoked: list[str] = []

    async def revoke(self, agent_id: str) -> None:
        self.revoked.append(agent_id)


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[Message] = []

    async def publish(self, message: Message) -> None:
        self.published.append(message)


class AnsweringResults:
    """Answers each expected command with a result built from it, or never (``answer=None``)."""

    def __init__(self, answer: dict[str, object] | None) -> None:
        self.answer = answer
        self.expected: list[str] = []

    def expect(self, command_id: str) -> None:
        self.expected.append(command_id)

    async def wait(self, command_id: str, timeout: float) -> ConnectionTested | None:
        if self.answer is None:
            return None
        return ConnectionTested(command_id=command_id, **self.answer)  # type: ignore[arg-type]


class FakeCredentials:
    def __init__(self, credentials: Credentials | MailbridgeError) -> None:
        self.credentials = credentials

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


class MemoryCursorStore:
    def __init__(self) -> None:
        self.cursors: dict[str, Cursor] = {}

    async def get(self, agent_id: str) -> Cursor | None:
        return self.cursors.get(agent_id)

    async def put(self, agent_id: str, cursor: Cursor) -> None:
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
    def __init__(self, error: MailbridgeError | None = None) -> None:
        self.copies: list[bytes] = []
        self.error = error

    async def append(self, credentials: Credentials, message: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.copies.append(message)


class FakePolicy:
    """Allows every send, or refuses each with ``refusal``; keeps what it was asked."""

    def __init__(self, refusal: ErrorInfo | None = None) -> None:
        self.refusal = refusal
        self.asked: list[AuthorizeSend] = []

    async def authorize(self, request: AuthorizeSend) -> SendAuthorization:
        self.asked.append(request)
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


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MemoryOrgApps:
    """policy's org OAuth apps in memory: in provider order, each stamped when it was stored;
    the events of each change in ``outbox``."""

    def __init__(self, now: Callable[[], datetime] = _utc_now) -> None:
        self.now = now
        self.apps: dict[str, dict[Provider, StoredOrgApp]] = {}
        self.outbox: list[Event] = []

    async def of_org(self, org_id: str) -> list[StoredOrgApp]:
        stored = self.apps.get(org_id, {})
        return [stored[provider] for provider in sorted(stored, key=lambda p: p.value)]

    async def replace(
        self, org_id: str, apps: list[StoredOrgApp], *, events: Sequence[Event]
    ) -> list[StoredOrgApp]:
        now = self.now()
        self.apps[org_id] = {app.provider: replace(app, updated_at=now) for app in apps}
        self.outbox += events
        return await self.of_org(org_id)

    async def delete(self, org_id: str, *, events: Sequence[Event]) -> bool:
        removed = bool(self.apps.pop(org_id, None))
        self.outbox += events if removed else []
        return removed


class MemoryClientOrgs:
    """policy's client orgs in memory, each id unique within its org, stamped when stored;
    the events of each change in ``outbox``."""

    def __init__(self, now: Callable[[], datetime] = _utc_now) -> None:
        self.now = now
        self.client_orgs: dict[tuple[str, str], StoredClientOrg] = {}
        self.outbox: list[Event] = []

    async def get(self, org_id: str, client_org_id: str) -> StoredClientOrg | None:
        return self.client_orgs.get((org_id, client_org_id))

    async def put(self, client_org: StoredClientOrg, *, events: Sequence[Event]) -> StoredClientOrg:
        stored = replace(client_org, updated_at=self.now())
        self.client_orgs[(client_org.org_id, client_org.client_org_id)] = stored
        self.outbox += events
        return stored

    async def delete(self, org_id: str, client_org_id: str, *, events: Sequence[Event]) -> bool:
        removed = self.client_orgs.pop((org_id, client_org_id), None) is not None
        self.outbox += events if removed else []
        return removed


class MemorySendQuota:
    """Reservations held per (agent, command), counted over the last hour and 24 hours."""

    def __init__(self, now: Callable[[], datetime] = _utc_now) -> None:
        self.now = now
        self.held: dict[tuple[str, str], tuple[str, datetime]] = {}

    async def reserve(self, agent_id: str, command_id: str, decide: QuotaDecision) -> Reservation:
        if (agent_id, command_id) in self.held:  # a redelivered command keeps its reservation
            return Reservation(self.held[agent_id, command_id][0])
        now = self.now()
        times = [at for (agent, _), (_, at) in self.held.items() if agent == agent_id]
        used = WindowCounts(
            hour=sum(at > now - timedelta(hours=1) for at in times),
            day=sum(at > now - timedelta(hours=24) for at in times),
        )
        refusal = decide(used)
        if refusal is not None:
            return Reservation(None, refusal)
        reservation_id = new_id("rsv")
        self.held[agent_id, command_id] = (reservation_id, now)
        return Reservation(reservation_id)

    async def release(self, agent_id: str, command_id: str) -> bool:
        return self.held.pop((agent_id, command_id), None) is not None
