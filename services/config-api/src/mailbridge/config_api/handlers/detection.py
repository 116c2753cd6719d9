"""Settings detection for an address being typed: the sources in the order they are believed.

A known domain answers at once. Otherwise the domain's MX records go first: a known provider's
host answers, and a domain that does not exist, or a resolver that does not answer, ends the
lookup there (nothing else would answer either). Then its autoconfig documents and its SRV
records are asked side by side, and autoconfig is believed over SRV. The whole lookup is bounded
by ``within`` seconds; what it found (nothing included) is cached for the domain, what it could
not find in time is not.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlencode

from mailbridge.config_api.domain import detection
from mailbridge.config_api.domain.autoconfig import parse_autoconfig
from mailbridge.config_api.domain.detection import (
    SRV_SERVICES,
    DetectedSettings,
    DnsUnavailable,
    DomainMissing,
    Finding,
    ServiceRecord,
)
from mailbridge.config_api.ports import (
    AutoconfigFetcher,
    DetectionCache,
    DetectionSources,
    MailDns,
)
from mailbridge.shared.addresses import AddressError, normalized_domain
from mailbridge.shared.errors import ErrorCode, MailbridgeError
from mailbridge.shared.presets import preset_for_domain

log = logging.getLogger(__name__)
SRV_LABELS = [label for services in SRV_SERVICES.values() for label, _ in services]


async def detect_settings(
    email: str, *, sources: DetectionSources, cache: DetectionCache, within: float
) -> DetectedSettings:
    """The settings for ``email``: from the first source that has them, or ``none``."""
    domain = _domain_of(email)
    if (preset := preset_for_domain(domain)) is not None:
        return detection.from_preset(preset).for_address(email)
    finding = cache.get(domain) or await _looked_up(domain, email, sources, cache, within)
    return finding.for_address(email)


def _domain_of(email: str) -> str:
    try:
        return normalized_domain(email.rpartition("@")[2])
    except AddressError as exc:
        raise MailbridgeError(ErrorCode.INVALID_INPUT, str(exc)) from exc


async def _looked_up(
    domain: str, email: str, sources: DetectionSources, cache: DetectionCache, within: float
) -> Finding:
    try:
        async with asyncio.timeout(within):
            finding = await _from_network(domain, email, sources)
    except (TimeoutError, DnsUnavailable):
        log.info("settings detection for %s: no answer in time", domain)
        return detection.unanswered(domain)
    except DomainMissing:
        finding = detection.no_such_domain(domain)
    cache.put(domain, finding)
    return finding


async def _from_network(domain: str, email: str, sources: DetectionSources) -> Finding:
    hosted = detection.from_mx(domain, await sources.dns.mail_exchangers(domain))
    if hosted is not None:
        return hosted
    published, named = await asyncio.gather(
        _from_autoconfig(domain, email, sources.autoconfig), _from_srv(domain, sources.dns)
    )
    return published or named or detection.nothing_found(domain)


def autoconfig_urls(domain: str, email: str) -> list[str]:
    """Where a domain publishes its autoconfig document, in the order they are believed."""
    return [
        f"https://autoconfig.{domain}/mail/config-v1.1.xml?{urlencode({'emailaddress': email})}",
        f"https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml",
    ]


async def _from_autoconfig(domain: str, email: str, fetcher: AutoconfigFetcher) -> Finding | None:
    documents = await asyncio.gather(*map(fetcher.fetch, autoconfig_urls(domain, email)))
    found = (parse_autoconfig(document, domain) for document in documents if document)
    return next((finding for finding in found if finding is not None), None)


async def _from_srv(domain: str, dns: MailDns) -> Finding | None:
    answers = await asyncio.gather(*(_records(dns, f"{label}.{domain}") for label in SRV_LABELS))
    return detection.from_srv(dict(zip(SRV_LABELS, answers, strict=True)))


async def _records(dns: MailDns, name: str) -> list[ServiceRecord]:
    """A name whose query failed has no records here: the others may still answer."""
    try:
        return await dns.services(name)
    except DnsUnavailable:
        return []
