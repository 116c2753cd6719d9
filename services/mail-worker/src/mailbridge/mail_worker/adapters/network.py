"""Network safety shared by the IMAP and SMTP adapters: verified TLS and the address guard.

TLS is always verified (``shared.outbound.tls_context``: system CAs, plus an operator-provided CA
file). A host that resolves to a loopback, private, link-local or CGNAT address
(``shared.outbound.is_internal``) is refused unless the operator allows it, so a user cannot point
mailbridge at the inside of its own network.

The guard resolves a host once and connects to one of exactly the addresses it checked: the
protocol clients get a connected socket and never look the name up again, so a DNS answer that
changes between the check and the connection (DNS rebinding) cannot move it. TLS still names
(SNI) and verifies the configured host name, not the address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mailbridge.shared.errors import ErrorCode, RetryableError
from mailbridge.shared.outbound import is_internal

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""A host and port → its addresses (the system's resolver; a fake in tests)."""


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class AddressGuard:
    def __init__(
        self, *, allow_internal: bool, timeout: float, resolver: Resolver = system_resolver
    ) -> None:
        self._allow_internal = allow_internal
        self._timeout = timeout
        self._resolve = resolver

    async def connect(self, host: str, port: int) -> socket.socket:
        """A TCP connection to one of the addresses ``host`` resolved to, all of them checked."""
        addresses = await self.check(host, port)
        try:
            return await _connect_any(addresses, port, self._timeout)
        except (OSError, TimeoutError) as exc:
            raise connection_error(exc, host, port) from exc

    async def check(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` once; refuse it when any address is internal and that is not allowed.
        Answers the addresses: the only ones a connection may then go to."""
        addresses = await self._resolved(host, port)
        for address in addresses:
            if not self._allow_internal and is_internal(address):
                raise RetryableError(ErrorCode.HOST_NOT_ALLOWED, f"{host} resolves to {address}.")
        return addresses

    async def _resolved(self, host: str, port: int) -> list[str]:
        try:
            addresses = await asyncio.wait_for(self._resolve(host, port), self._timeout)
        except (socket.gaierror, UnicodeError) as exc:
            raise RetryableError(ErrorCode.DNS_FAILED, f"{host} could not be resolved.") from exc
        except TimeoutError as exc:
            raise RetryableError(ErrorCode.DNS_FAILED, f"resolving {host} timed out.") from exc
        if not addresses:
            raise RetryableError(ErrorCode.DNS_FAILED, f"{host} has no address.")
        return addresses


async def _connect_any(addresses: list[str], port: int, timeout: float) -> socket.socket:
    """The first of ``addresses`` that accepts, tried in order (as the system would)."""
    loop = asyncio.get_running_loop()
    failure: OSError | TimeoutError = ConnectionRefusedError()
    for address in addresses:
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (address, port)), timeout)
        except (OSError, TimeoutError) as exc:
            sock.close()
            failure = exc
            continue
        return sock
    raise failure


@dataclass(frozen=True)
class Network:
    """What the IMAP and SMTP clients connect with: the guard, verified TLS, one timeout."""

    guard: AddressGuard
    tls: ssl.SSLContext
    timeout: float


def connection_error(exc: BaseException, host: str, port: int) -> RetryableError:
    """Map a socket-level failure to its taxonomy code."""
    where = f"{host}:{port}"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return RetryableError(
            ErrorCode.TLS_FAILED, f"TLS with {where} failed: {exc.__class__.__name__}."
        )
    if isinstance(exc, ConnectionRefusedError):
        return RetryableError(ErrorCode.CONNECTION_REFUSED, f"{where} refused the connection.")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return RetryableError(ErrorCode.TIMEOUT, f"{where} did not answer in time.")
    if isinstance(exc, socket.gaierror):
        return RetryableError(ErrorCode.DNS_FAILED, f"{host} could not be resolved.")
    return RetryableError(ErrorCode.CONNECTION_REFUSED, f"could not connect to {where}.")
