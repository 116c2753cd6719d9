"""DNS for settings detection, with dnspython: MX and SRV records, and the addresses the
autoconfig fetcher's guard checks.

Every query is bounded by one lifetime (retries included), asks for an absolute name (no search
list), and goes to the resolver of ``MAILBRIDGE_DNS_RESOLVER`` ("host:port"), else the system's
(``/etc/resolv.conf``): the tests run their own on loopback.
"""

from __future__ import annotations

import asyncio
import logging

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver
from dns.rdata import Rdata
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.IN.SRV import SRV

from mailbridge.config_api.domain.detection import DnsUnavailable, DomainMissing, ServiceRecord

log = logging.getLogger(__name__)


def resolver(address: tuple[str, int] | None, timeout: float) -> dns.asyncresolver.Resolver:
    """A resolver asking ``address`` (host, port), else the system's, ``timeout`` a query."""
    chosen = dns.asyncresolver.Resolver(configure=False)
    if address is None:
        try:
            chosen = dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            log.warning("no DNS resolver configured: settings detection finds presets only")
    else:
        chosen.nameservers, chosen.port = [address[0]], address[1]
    chosen.timeout = chosen.lifetime = timeout
    return chosen


class DnspythonMailDns:
    def __init__(self, resolver: dns.asyncresolver.Resolver) -> None:
        self._resolver = resolver

    async def mail_exchangers(self, domain: str) -> list[str]:
        records = await self._query(domain, dns.rdatatype.MX, must_exist=True)
        ordered = sorted((r for r in records if isinstance(r, MX)), key=lambda r: r.preference)
        return [record.exchange.to_text(omit_final_dot=True) for record in ordered]

    async def services(self, name: str) -> list[ServiceRecord]:
        records = await self._query(name, dns.rdatatype.SRV)
        return [
            ServiceRecord(r.priority, r.weight, r.port, r.target.to_text())
            for r in records
            if isinstance(r, SRV)
        ]

    async def addresses(self, host: str) -> list[str]:
        """The host's IPv4 addresses, then its IPv6 ones ([] when it has none)."""
        answers = await asyncio.gather(
            self._query(host, dns.rdatatype.A), self._query(host, dns.rdatatype.AAAA)
        )
        return [record.to_text() for records in answers for record in records]

    async def _query(
        self, name: str, kind: dns.rdatatype.RdataType, *, must_exist: bool = False
    ) -> list[Rdata]:
        """The records of ``name`` ([] when it has none, or does not exist unless it must)."""
        try:
            answer = await self._resolver.resolve(
                f"{name}.", kind, search=False, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN as exc:
            if must_exist:
                raise DomainMissing(name) from exc
            return []
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            raise DnsUnavailable(f"{name} {kind.name}: {exc.__class__.__name__}") from exc
        return list(answer.rrset or [])
