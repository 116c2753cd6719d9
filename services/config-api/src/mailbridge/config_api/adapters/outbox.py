"""The outbox relay: publishes events that config-api stored with its changes, then marks them.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` so replicas share the work; each is published with
``Nats-Msg-Id: outbox-{id}``, so a row published twice (a crash between publish and mark) is stored
once by JetStream. When NATS is down the rows wait and the relay retries with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import asyncpg

from mailbridge.shared.background import BackgroundLoop
from mailbridge.shared.bus import NatsBus
from mailbridge.shared.telemetry import continued_trace

log = logging.getLogger(__name__)

BATCH = 100
IDLE_POLL_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 10.0


class OutboxRelay(BackgroundLoop):
    name = "outbox-relay"

    def __init__(self, pool: asyncpg.Pool, bus: NatsBus) -> None:
        self._pool, self._bus = pool, bus
        self._wake = asyncio.Event()
        self.failed_attempts = 0  # visible to health checks and tests

    def notify(self) -> None:
        """Called after a commit that wrote outbox rows: publish now, not at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        backoff = IDLE_POLL_SECONDS
        while True:
            try:
                published = await self.publish_pending()
                backoff = IDLE_POLL_SECONDS
            except Exception:  # NATS or the database is down: keep the rows, retry later
                self.failed_attempts += 1
                log.warning("outbox relay could not publish; retrying in %.0fs", backoff)
                published, backoff = 0, min(backoff * 2, MAX_BACKOFF_SECONDS)
            if published < BATCH:
                await self._sleep(backoff)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def publish_pending(self) -> int:
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                "SELECT id, subject, payload, trace_context FROM config_api.outbox"
                " WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                BATCH,
            )
            for row in rows:
                await self._publish(row)
            await connection.execute(
                "UPDATE config_api.outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                [row["id"] for row in rows],
            )
        return len(rows)

    async def _publish(self, row: asyncpg.Record) -> None:
        """As part of the trace of the request that wrote the row (its publish span a child)."""
        carrier = json.loads(row["trace_context"]) if row["trace_context"] else None
        with continued_trace(carrier):
            await self._bus.publish_raw(row["subject"], row["payload"], f"outbox-{row['id']}")
