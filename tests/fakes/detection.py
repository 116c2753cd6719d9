"""Fakes of settings detection's ports: DNS answers and autoconfig documents from dicts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from mailbridge.config_api.domain.detection import DnsUnavailable, DomainMissing, ServiceRecord


@dataclass
class FakeMailDns:
    """MX hosts and SRV records by name; a domain in ``missing`` does not exist, and while
    ``unavailable`` no query is answered. ``queries`` lists every name asked."""

    mx: dict[str, list[str]] = field(default_factory=dict)
    srv: dict[str, list[ServiceRecord]] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    unavailable: bool = False
    queries: list[str] = field(default_factory=list)

    async def mail_exchangers(self, domain: str) -> list[str]:
        self._asked(domain)
        if domain in self.missing:
            raise DomainMissing(domain)
        return self.mx.get(domain, [])

    async def services(self, name: str) -> list[ServiceRecord]:
        self._asked(name)
        return self.srv.get(name, [])

    def _asked(self, name: str) -> None:
        self.queries.append(name)
        if self.unavailable:
            raise DnsUnavailable(name)


@dataclass
class FakeAutoconfig:
    """Documents by URL; with ``stalls`` set, a fetch never ends (the caller's bound must)."""

    documents: dict[str, bytes] = field(default_factory=dict)
    stalls: bool = False
    fetched: list[str] = field(default_factory=list)

    async def fetch(self, url: str) -> bytes | None:
        self.fetched.append(url)
        if self.stalls:
            await asyncio.Event().wait()
        return self.documents.get(url)
