"""A tiny HTTP health port for services that have no HTTP server of their own.

``GET /healthz`` answers 200 while the process runs; ``GET /readyz`` answers 200 when every
readiness check passes, else 503 with the failing checks; ``GET /metrics`` is the process's
Prometheus registry (the service's own counters included). Nothing else is served.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


class HealthServer:
    def __init__(
        self,
        host: str,
        port: int,
        readiness: ReadinessCheck,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._host, self._port, self._readiness = host, port, readiness
        self._registry = registry or CollectorRegistry()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)
        log.info("health port listening on %s:%s", self._host, self.port)

    @property
    def port(self) -> int:
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5)
            status, payload, content_type = await self._answer(request_line.decode("latin-1"))
            head = f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
            writer.write(
                f"{head}content-length: {len(payload)}\r\nconnection: close\r\n\r\n".encode()
            )
            writer.write(payload)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, request_line: str) -> tuple[str, bytes, str]:
        """Status line, body and content type for a request line."""
        path = request_line.split(" ")[1] if request_line.count(" ") >= 2 else ""
        if path == "/metrics":
            return "200 OK", generate_latest(self._registry), CONTENT_TYPE_LATEST
        if path == "/healthz":
            return _json("200 OK", {"status": "ok"})
        if path == "/readyz":
            checks = await self._readiness()
            ready = all(checks.values())
            status = "200 OK" if ready else "503 Service Unavailable"
            return _json(status, {"ready": ready, **checks})
        return _json("404 Not Found", {"error": "not found"})


def _json(status: str, body: dict[str, object]) -> tuple[str, bytes, str]:
    return status, json.dumps(body).encode(), "application/json"
