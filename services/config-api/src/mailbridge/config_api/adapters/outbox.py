"""A compatibility shim, to delete once config-api's bootstrap builds the shared relay.

The relay moved to ``mailbridge.shared.outbox`` (every service that owns tables has one), and
config-api's own step moved next to its send ledger (``adapters.sends.settle_dead_send``). This
class keeps the interface today's ``bootstrap.py`` and ``entrypoints/observability.py`` use: the
old constructor, a synchronous ``start()``, and the relay's metrics on a ``metrics`` registry of
its own. It adds no behaviour of its own.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
from nats.aio.client import Client
from prometheus_client import CollectorRegistry

from mailbridge.config_api.adapters.postgres import SCHEMA
from mailbridge.config_api.adapters.sends import settle_dead_send
from mailbridge.shared import outbox
from mailbridge.shared.background import BackgroundLoop
from mailbridge.shared.bus import NatsBus


class OutboxRelay(BackgroundLoop):
    name = "outbox-relay"

    def __init__(
        self, pool: asyncpg.Pool, bus: NatsBus, nats: Callable[[], Client] | None = None
    ) -> None:
        """``nats`` is ignored: the shared relay reads the client from the bus's broker."""
        self.metrics = CollectorRegistry()  # served with config-api's own at /metrics
        self.relay = outbox.OutboxRelay(
            pool,
            bus._broker,  # temporary: bootstrap will pass its broker itself
            schema=SCHEMA,
            registry=self.metrics,
            on_dead_letter=settle_dead_send,
        )

    def notify(self) -> None:
        self.relay.notify()

    async def run(self) -> None:
        await self.relay.run()
