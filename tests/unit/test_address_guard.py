"""The address guard looks a host up once and connects only to the addresses it checked.

Loopback listeners stand in for servers (127.0.0.1 the real one, 127.0.0.2 where a rebinding DNS
answer would send the connection); a fake resolver stands in for DNS.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from mailbridge.mail_worker.adapters.network import AddressGuard
from mailbridge.shared.errors import ErrorCode, RetryableError


@dataclass
class FlippingResolver:
    """Answers ``answers[0]`` to the first lookup, ``answers[1]`` to the second, and so on."""

    answers: list[list[str]]
    lookups: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return self.answers[min(len(self.lookups), len(self.answers)) - 1]


@dataclass
class Listener:
    address: str
    accepted: int = 0

    async def on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.close()


@pytest.fixture
async def servers() -> AsyncIterator[tuple[int, Listener, Listener]]:
    """A server on 127.0.0.1 and a rogue one on 127.0.0.2, on the same port."""
    real, rogue = Listener("127.0.0.1"), Listener("127.0.0.2")
    first = await asyncio.start_server(real.on_client, real.address, 0)
    port = int(first.sockets[0].getsockname()[1])
    second = await asyncio.start_server(rogue.on_client, rogue.address, port)
    yield port, real, rogue
    for server in (first, second):
        server.close()
        await server.wait_closed()


def guard(resolver: FlippingResolver, allow_internal: bool = True) -> AddressGuard:
    return AddressGuard(allow_internal=allow_internal, timeout=5, resolver=resolver)


async def test_a_second_dns_answer_does_not_move_the_connection(
    servers: tuple[int, Listener, Listener],
) -> None:
    port, real, rogue = servers
    resolver = FlippingResolver([["127.0.0.1"], ["127.0.0.2"]])

    sock = await guard(resolver).connect("mail.example.com", port)

    with sock:
        assert sock.getpeername() == ("127.0.0.1", port)
    assert resolver.lookups == ["mail.example.com"]  # looked up once, for check and connection
    await asyncio.sleep(0.05)
    assert (real.accepted, rogue.accepted) == (1, 0)


async def test_an_internal_address_is_refused_before_any_connection(
    servers: tuple[int, Listener, Listener],
) -> None:
    port, real, rogue = servers
    resolver = FlippingResolver([["127.0.0.1"]])

    with pytest.raises(RetryableError) as refused:
        await guard(resolver, allow_internal=False).connect("mail.example.com", port)

    assert refused.value.code is ErrorCode.HOST_NOT_ALLOWED
    assert (real.accepted, rogue.accepted) == (0, 0)


async def test_one_internal_address_among_public_ones_refuses_the_host() -> None:
    resolver = FlippingResolver([["192.0.2.10", "10.0.0.5"]])
    with pytest.raises(RetryableError) as refused:
        await guard(resolver, allow_internal=False).check("mail.example.com", 993)
    assert refused.value.code is ErrorCode.HOST_NOT_ALLOWED


async def test_the_next_checked_address_is_tried_when_one_refuses(
    servers: tuple[int, Listener, Listener],
) -> None:
    port, _, _ = servers
    resolver = FlippingResolver([["127.0.0.3", "127.0.0.1"]])  # nothing listens on 127.0.0.3

    with await guard(resolver).connect("mail.example.com", port) as sock:
        assert sock.getpeername() == ("127.0.0.1", port)


async def test_no_address_accepting_is_connection_refused() -> None:
    port = _unused_port()
    with pytest.raises(RetryableError) as failed:
        await guard(FlippingResolver([["127.0.0.1"]])).connect("mail.example.com", port)
    assert failed.value.code is ErrorCode.CONNECTION_REFUSED


async def test_a_name_that_does_not_resolve_is_dns_failed() -> None:
    async def unknown(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(RetryableError) as failed:
        await AddressGuard(allow_internal=True, timeout=5, resolver=unknown).connect(
            "nowhere.example.com", 993
        )
    assert failed.value.code is ErrorCode.DNS_FAILED


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
