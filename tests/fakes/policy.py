"""Fakes of policy's stores (proved against their adapters in tests/ports/)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from mailbridge.policy.domain.restrictions import WindowCounts
from mailbridge.policy.ports import (
    QuotaDecision,
    Reservation,
    StoredClientOrg,
    StoredHold,
    StoredOrgApp,
)
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import (
    Event,
    Provider,
)


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


class MemoryContacts:
    """Every agent's contacts in memory."""

    def __init__(self) -> None:
        self.of: dict[str, set[str]] = {}

    async def known(self, agent_id: str, keys: Sequence[str]) -> set[str]:
        return self.of.get(agent_id, set()) & set(keys)

    async def record(self, agent_id: str, keys: Sequence[str]) -> None:
        self.of.setdefault(agent_id, set()).update(keys)


class MemorySendHolds:
    """The sends held, by (agent, command); a second hold of one keeps the first."""

    def __init__(self) -> None:
        self.held: dict[tuple[str, str], StoredHold] = {}

    async def hold(self, held: StoredHold) -> None:
        self.held.setdefault((held.agent_id, held.command_id), held)

    async def find(self, agent_id: str, command_id: str) -> StoredHold | None:
        return self.held.get((agent_id, command_id))

    async def approve(self, agent_id: str, command_id: str) -> None:
        if (found := self.held.get((agent_id, command_id))) is not None:
            self.held[(agent_id, command_id)] = replace(found, approved=True)
