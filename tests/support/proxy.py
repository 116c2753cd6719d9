"""A loopback TCP relay in front of Postfix or Dovecot that can hold, throttle, silence or cut
the connections through it: failures of the network, without any hook in service code."""

from __future__ import annotations

import asyncio
import contextlib

HOST = "127.0.0.1"


class Proxy:
    """A loopback TCP relay to ``target`` (TLS passes through untouched: the certificate is
    issued for 127.0.0.1, so clients verify it as if they spoke to the server).

    ``hold``: accept and say nothing (a client waits for the greeting) until ``release()``,
    which relays the held connections and every later one; ``throttle``: bytes from the client
    reach the server at that many bytes per second at most; ``silent``: relay nothing either
    way and close nothing (a link that died without a word, as a NAT or a firewall drops one).
    ``cut()`` aborts every connection at once, without relaying what is still buffered.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.mode = "forward"
        self.throttle: float | None = None
        self.silent = False
        self.accepted = 0
        self.bytes_up = 0  # client → server, relayed
        self.connected = asyncio.Event()
        self._released = asyncio.Event()
        self._closed = False
        self._server: asyncio.Server | None = None
        self._transports: list[asyncio.WriteTransport] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, HOST, 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self._closed = True
        self._released.set()
        self.cut()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        for task in list(self._tasks):
            task.cancel()

    def release(self) -> None:
        self.mode = "forward"
        self._released.set()

    def cut(self) -> None:
        for transport in self._transports:
            transport.abort()
        self._transports.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._transports.append(writer.transport)
        self.connected.set()
        if self.mode == "hold":
            await self._released.wait()  # an SMTP or IMAP client says nothing before the greeting
            if self._closed or writer.transport.is_closing():
                writer.transport.abort()
                return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._transports.append(up_writer.transport)
        tasks = [
            asyncio.create_task(self._pump(reader, up_writer, upstream=True)),
            asyncio.create_task(self._pump(up_reader, writer, upstream=False)),
        ]
        self._tasks.update(tasks)
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for transport in (writer.transport, up_writer.transport):
            transport.abort()
        for task in tasks:
            task.cancel()
            self._tasks.discard(task)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        with contextlib.suppress(Exception):
            while True:
                size = 4096 if upstream and self.throttle else 65536
                chunk = await reader.read(size)
                if not chunk or writer.transport.is_closing():
                    return
                if upstream and self.throttle:
                    await asyncio.sleep(len(chunk) / self.throttle)
                    if writer.transport.is_closing():
                        return
                if self.silent:
                    continue
                writer.write(chunk)
                await writer.drain()
                if upstream:
                    self.bytes_up += len(chunk)
