"""Autoconfig documents fetched with httpx from hosts users name, through an address guard.

The guard resolves the host once (with detection's own DNS), refuses it when an address is
internal (``shared.outbound.is_internal``) unless private hosts are allowed, and the request goes
to exactly the address it checked: the URL names the address, while ``Host`` and TLS's SNI name
the host, whose certificate is verified (``shared.outbound.tls_context``). A DNS answer that
changes between the check and the connection cannot move it. No proxy from the environment is
used, redirects are followed only to ``https`` and through the guard again, and the fetch as a
whole, redirects included, is bounded in time and size. Any failure is "no document".
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable

import httpx

from mailbridge.config_api.domain.autoconfig import MAX_DOCUMENT
from mailbridge.config_api.domain.detection import DnsUnavailable, DomainMissing
from mailbridge.shared.outbound import is_internal

log = logging.getLogger(__name__)

Resolver = Callable[[str], Awaitable[list[str]]]
"""A host → its addresses (``DnspythonMailDns.addresses``)."""
MAX_REDIRECTS = 2
_FAILURES = (httpx.HTTPError, httpx.InvalidURL, OSError, ssl.SSLError, ValueError)


class GuardedAutoconfigFetcher:
    def __init__(
        self,
        *,
        resolve: Resolver,
        allow_internal: bool,
        tls: ssl.SSLContext,
        timeout: float,
        port: int = 443,
    ) -> None:
        self._resolve, self._allow_internal = resolve, allow_internal
        self._tls, self._timeout, self._port = tls, timeout, port

    async def fetch(self, url: str) -> bytes | None:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._followed(httpx.URL(url), MAX_REDIRECTS)
        except (TimeoutError, DnsUnavailable, DomainMissing, *_FAILURES) as exc:
            log.debug("autoconfig %s: %s", url, exc.__class__.__name__)
            return None

    async def _followed(self, url: httpx.URL, redirects: int) -> bytes | None:
        if url.scheme != "https" or not (address := await self._checked_address(url.host)):
            return None
        async with httpx.AsyncClient(verify=self._tls, trust_env=False) as client:
            request = client.build_request(
                "GET",
                url.copy_with(host=address, port=url.port or self._port),
                headers={"Host": url.netloc.decode("ascii")},
                extensions={"sni_hostname": url.host},
            )
            answer = await client.send(request, stream=True)
            try:
                if answer.is_redirect and redirects and "location" in answer.headers:
                    return await self._followed(url.join(answer.headers["location"]), redirects - 1)
                return await _document(answer)
            finally:
                await answer.aclose()

    async def _checked_address(self, host: str) -> str | None:
        """The first address of ``host``, when none of them is refused."""
        addresses = [host] if _is_address(host) else await self._resolve(host)
        refused = [a for a in addresses if is_internal(a) and not self._allow_internal]
        if refused:
            log.info("autoconfig: %s resolves to %s, not allowed", host, refused[0])
        return addresses[0] if addresses and not refused else None


async def _document(answer: httpx.Response) -> bytes | None:
    """The body of a 200, unless it grows beyond ``MAX_DOCUMENT``."""
    if answer.status_code != 200:
        return None
    body = bytearray()
    async for chunk in answer.aiter_bytes():
        body += chunk
        if len(body) > MAX_DOCUMENT:
            return None
    return bytes(body)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
