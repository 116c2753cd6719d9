"""A tiny authoritative DNS server on loopback UDP, answering from a dict (dnspython's messages).

``records`` maps a name to its records by type, as zone-file text: ``{"acme.example": {"MX":
["10 mx.acme.example."]}}``. A name with records of another type answers NOERROR with none; a
name with none at all (nor any name under it) answers NXDOMAIN. With ``silent`` it never answers,
as a resolver that is down. ``asked`` lists every question, ``(name, type)``.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

Records = dict[str, dict[str, list[str]]]
TTL = 60


@dataclass
class DnsServer(asyncio.DatagramProtocol):
    records: Records
    silent: bool = False
    asked: list[tuple[str, str]] = field(default_factory=list)
    port: int = 0
    _transport: asyncio.DatagramTransport | None = field(default=None, init=False, repr=False)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a datagram one, not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        self.asked.append((name, dns.rdatatype.to_text(question.rdtype)))
        if not self.silent and self._transport is not None:
            self._transport.sendto(self._answer(query, name, question.rdtype).to_wire(), addr)

    def _answer(
        self, query: dns.message.Message, name: str, kind: dns.rdatatype.RdataType
    ) -> dns.message.Message:
        answer = dns.message.make_response(query)
        answer.flags |= dns.flags.AA
        texts = self.records.get(name, {}).get(dns.rdatatype.to_text(kind), [])
        if texts:
            answer.answer.append(dns.rrset.from_text_list(f"{name}.", TTL, "IN", kind, texts))
        elif not self._exists(name):
            answer.set_rcode(dns.rcode.NXDOMAIN)
        return answer

    def _exists(self, name: str) -> bool:
        return any(known == name or known.endswith(f".{name}") for known in self.records)


@asynccontextmanager
async def dns_server(records: Records, *, silent: bool = False) -> AsyncIterator[DnsServer]:
    """The server on 127.0.0.1 and a free port (``server.port``), for the block's duration."""
    server = DnsServer(records, silent)
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: server, local_addr=("127.0.0.1", 0)
    )
    server.port = int(transport.get_extra_info("sockname")[1])
    try:
        yield server
    finally:
        transport.close()


@contextmanager
def dns_server_thread(records: Records) -> Iterator[DnsServer]:
    """The same server on a thread of its own, for synchronous (session) fixtures."""
    started: queue.Queue[DnsServer] = queue.Queue()
    stop = threading.Event()

    async def serve() -> None:
        async with dns_server(records) as server:
            started.put(server)
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    try:
        yield started.get(timeout=10)
    finally:
        stop.set()
        thread.join(timeout=10)
