"""What policy's handlers need from the outside world.

A store that changes an org's apps or client orgs is given the events of the change and writes
them in the change's transaction (the outbox): they are published if and only if it commits, and no
handler publishes anything itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mailbridge.policy.domain.restrictions import WindowCounts
from mailbridge.shared.errors import ErrorInfo
from mailbridge.shared.messages import ApprovalMode, Event, Provider, Restrictions


@dataclass(frozen=True)
class StoredOrgApp:
    """A row of org_oauth_apps; the secret stays sealed (row id: ``org_app_row_id``)."""

    org_id: str
    provider: Provider
    client_id: str
    tenant_id: str | None
    sealed_secret: str
    updated_at: datetime | None = None


def org_app_row_id(org_id: str, provider: Provider) -> str:
    """The associated data of an org app's sealed secret: it opens for this org and app only."""
    return f"org_app:{org_id}:{provider.value}"


@dataclass(frozen=True)
class StoredClientOrg:
    org_id: str
    client_org_id: str
    name: str
    email_domain: str | None
    restrictions: Restrictions
    updated_at: datetime | None = None


class OrgApps(Protocol):
    async def of_org(self, org_id: str) -> list[StoredOrgApp]: ...

    async def replace(
        self, org_id: str, apps: list[StoredOrgApp], *, events: Sequence[Event]
    ) -> list[StoredOrgApp]:
        """Store exactly ``apps`` for the org (providers left out are removed) and write
        ``events``, atomically."""
        ...

    async def delete(self, org_id: str, *, events: Sequence[Event]) -> bool:
        """Remove the org's apps; when it had any, write ``events`` with the removal. Answers
        whether it had any."""
        ...


class ClientOrgs(Protocol):
    async def get(self, org_id: str, client_org_id: str) -> StoredClientOrg | None: ...

    async def put(self, client_org: StoredClientOrg, *, events: Sequence[Event]) -> StoredClientOrg:
        """Store the client org (replacing one with its ids) and write ``events``, atomically."""
        ...

    async def delete(self, org_id: str, client_org_id: str, *, events: Sequence[Event]) -> bool:
        """Remove the client org; when there was one, write ``events`` with the removal. Answers
        whether there was one."""
        ...


QuotaDecision = Callable[[WindowCounts], ErrorInfo | None]
"""Given what an agent has used, None to allow one more send or the refusal."""


@dataclass(frozen=True)
class Reservation:
    reservation_id: str | None
    refusal: ErrorInfo | None = None


class SendQuota(Protocol):
    """Counts sends per agent across every worker and policy replica, with no lost update."""

    async def reserve(self, agent_id: str, command_id: str, decide: QuotaDecision) -> Reservation:
        """Count, decide and record as one step; the same command_id reserves once."""
        ...

    async def release(self, agent_id: str, command_id: str) -> bool: ...


class Contacts(Protocol):
    """Per agent, every address it wrote to or heard from (``contact_key`` form)."""

    async def known(self, agent_id: str, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` the agent has been in contact with."""
        ...

    async def record(self, agent_id: str, keys: Sequence[str]) -> None:
        """Add them; an address already known stays as it was."""
        ...


@dataclass(frozen=True)
class StoredHold:
    """A send policy held for approval: its recipients (``contact_key`` form, sorted), and
    whether a person approved it."""

    agent_id: str
    command_id: str
    recipients: tuple[str, ...]
    reason: ApprovalMode
    approved: bool = False


class SendHolds(Protocol):
    """The sends policy held, so that only an approved one, to the very recipients it was held
    with, passes the approval rule when it comes again."""

    async def hold(self, held: StoredHold) -> None:
        """Record it; a send already held (a redelivery) stays as it was."""
        ...

    async def find(self, agent_id: str, command_id: str) -> StoredHold | None: ...

    async def approve(self, agent_id: str, command_id: str) -> None: ...
