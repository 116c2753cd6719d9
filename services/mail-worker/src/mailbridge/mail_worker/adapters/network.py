"""Network safety shared by the IMAP and SMTP adapters: verified TLS and the address guard.

TLS is always verified (system CAs, plus an operator-provided CA file). A host that resolves to a
loopback, private, link-local or CGNAT address is refused unless the operator allows it, so a user
cannot point mailbridge at the inside of its own network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from pathlib import Path

from mailbridge.shared.errors import ErrorCode, RetryableError

_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def is_internal(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return bool(
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (ip.version == 4 and ip in _CGNAT)
    )


class AddressGuard:
    def __init__(self, *, allow_internal: bool, timeout: float) -> None:
        self._allow_internal = allow_internal
        self._timeout = timeout

    async def check(self, host: str, port: int) -> None:
        """Resolve ``host``; refuse it when any address is internal and that is not allowed."""
        if self._allow_internal:
            return
        for address in await self._resolve(host, port):
            if is_internal(address):
                raise RetryableError(ErrorCode.HOST_NOT_ALLOWED, f"{host} resolves to {address}.")

    async def _resolve(self, host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), self._timeout
            )
        except socket.gaierror as exc:
            raise RetryableError(ErrorCode.DNS_FAILED, f"{host} could not be resolved.") from exc
        except TimeoutError as exc:
            raise RetryableError(ErrorCode.DNS_FAILED, f"resolving {host} timed out.") from exc
        return [str(info[4][0]) for info in infos]


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
