"""A light, closed-loop HTTP/1.1 load generator: one process, one asyncio loop, raw sockets.

Each of ``connections`` keep-alive connections sends one request, waits for the whole response,
and sends the next, until the deadline (warm-up plus measured window). Requests are pre-encoded
bytes and responses are parsed only as far as the status and ``Content-Length``, so the generator
spends as little of the shared CPU as Python allows. Only responses that complete inside the
measured window are counted; each one's latency is from its request's write to its last byte.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

_HEADER_END = b"\r\n\r\n"
_LENGTH = b"\r\ncontent-length:"


class ResponseError(Exception):
    """The server closed the connection or sent something that is not a sized HTTP/1.1 answer."""


@dataclass
class WindowResult:
    """What one target answered inside the measured window."""

    duration_s: float
    latencies_ns: list[int] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def completed(self) -> int:
        return len(self.latencies_ns)

    @property
    def throughput(self) -> float:
        return self.completed / self.duration_s if self.duration_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        """Nearest-rank percentile of the successful requests' latencies, in milliseconds."""
        if not self.latencies_ns:
            return math.nan
        ordered = sorted(self.latencies_ns)
        rank = max(1, math.ceil(q / 100.0 * len(ordered)))
        return ordered[rank - 1] / 1e6


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[int] | None = None
        self._need = -1  # bytes of the whole current response, once its head is parsed
        self._status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ResponseError(f"connection closed: {exc or 'by the server'}"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._try_complete()

    def send(self, request: bytes) -> asyncio.Future[int]:
        if self.transport is None or self.transport.is_closing():
            raise ResponseError("connection closed")
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiter, self._need = waiter, -1
        self.transport.write(request)
        return waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _try_complete(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._need < 0 and not self._parse_head(waiter):
            return
        if len(self._buffer) < self._need:
            return
        del self._buffer[: self._need]
        self._waiter = None
        waiter.set_result(self._status)

    def _parse_head(self, waiter: asyncio.Future[int]) -> bool:
        end = self._buffer.find(_HEADER_END)
        if end < 0:
            return False
        head = bytes(self._buffer[:end]).lower()
        at = head.find(_LENGTH)
        if not head.startswith(b"http/1.1 ") or at < 0:
            self._fail(ResponseError(f"unsized or non-HTTP/1.1 response: {head[:80]!r}"))
            return False
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + len(_LENGTH) : stop if stop >= 0 else len(head)])
        self._status = int(head[9:12])
        self._need = end + len(_HEADER_END) + length
        return True

    def _fail(self, error: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.close()


def build_requests(
    host: str, port: int, paths: Sequence[str], headers: dict[str, str]
) -> list[bytes]:
    """Pre-encoded ``GET`` requests, one per path (rotated through by the workers)."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return [
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode("ascii")
        for path in paths
    ]


async def _worker(
    connection: _Connection,
    requests: Iterator[bytes],
    window_start: int,
    window_end: int,
    result: WindowResult,
) -> None:
    clock = time.perf_counter_ns
    latencies, statuses = result.latencies_ns, result.statuses
    while (start := clock()) < window_end:
        try:
            status = await connection.send(next(requests))
        except ResponseError:
            result.errors += 1
            return
        done = clock()
        if window_start <= done <= window_end:
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                latencies.append(done - start)
            else:
                result.errors += 1


async def run(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    connections: int,
    warmup_s: float,
    duration_s: float,
    on_window: Callable[[str], None] = lambda _: None,
) -> WindowResult:
    """Drive ``connections`` closed loops for ``warmup_s + duration_s``; measure the last part.

    ``on_window("start")`` and ``on_window("end")`` run on the loop at the window's edges (for
    taking CPU snapshots). Every connection is closed before this returns, whatever happens.
    """
    loop = asyncio.get_running_loop()
    opened: list[_Connection] = []
    try:
        for _ in range(connections):
            _, protocol = await asyncio.wait_for(
                loop.create_connection(_Connection, host, port), timeout=10
            )
            opened.append(protocol)
        rotation = itertools.cycle(requests)
        begin = time.perf_counter_ns()
        window_start = begin + int(warmup_s * 1e9)
        window_end = window_start + int(duration_s * 1e9)
        result = WindowResult(duration_s=duration_s)
        edges = ["start", "end"]

        def edge() -> None:
            if edges:
                on_window(edges.pop(0))

        loop.call_later(warmup_s, edge)
        loop.call_later(warmup_s + duration_s, edge)
        workers = [_worker(c, rotation, window_start, window_end, result) for c in opened]
        # Bounded: a request still unanswered 30 s after the deadline ends the run.
        async with asyncio.timeout(warmup_s + duration_s + 30):
            await asyncio.gather(*workers)
        while edges:  # every worker finished before a timer fired (a failing target)
            edge()
        return result
    finally:
        for connection in opened:
            connection.close()
        await asyncio.sleep(0)  # let the transports close
