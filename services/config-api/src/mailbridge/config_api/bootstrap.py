"""The composition root: the only place that builds config-api's adapters.

``build_container`` connects everything from settings; tests may pass their own pieces instead.
``assemble`` is the wiring without the connecting (the contract generator uses it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from faststream.nats import NatsBroker
from opentelemetry.sdk.trace import TracerProvider

from mailbridge.config_api.adapters.api_keys import CachedKeyLookup, PostgresApiKeyStore
from mailbridge.config_api.adapters.outbox import OutboxRelay
from mailbridge.config_api.adapters.policy import NatsPolicyService
from mailbridge.config_api.adapters.poll_scheduler import PollScheduler
from mailbridge.config_api.adapters.postgres import SCHEMA, PostgresConfigRepository
from mailbridge.config_api.adapters.results import PendingTestResults
from mailbridge.config_api.adapters.revoker import NatsGrantRevoker
from mailbridge.config_api.adapters.sends import PostgresSendLedger
from mailbridge.config_api.entrypoints import nats as nats_entrypoints
from mailbridge.config_api.settings import ConfigApiSettings
from mailbridge.shared import postgres
from mailbridge.shared.bus import NatsBus
from mailbridge.shared.clock import Clock, SystemClock
from mailbridge.shared.content import NatsObjectContentStore
from mailbridge.shared.crypto import Sealer, parse_keys
from mailbridge.shared.runtime import build_broker, nats_ready, serve_health_rpc
from mailbridge.shared.streams import (
    CONFIG_EVT,
    MAIL_CMD,
    MAIL_EVT,
    OAUTH_EVT,
    POLICY_EVT,
    ensure_streams,
)

SERVICE = "config-api"
MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
OWNED_STREAMS = (CONFIG_EVT,)
USED_STREAMS = (MAIL_CMD, MAIL_EVT, OAUTH_EVT, POLICY_EVT)  # read or written here, owned elsewhere


@dataclass
class Container:
    settings: ConfigApiSettings
    pool: asyncpg.Pool
    broker: NatsBroker
    sealer: Sealer
    repo: PostgresConfigRepository
    bus: NatsBus
    relay: OutboxRelay
    keys: CachedKeyLookup
    revoker: NatsGrantRevoker
    ledger: PostgresSendLedger
    scheduler: PollScheduler
    policy: NatsPolicyService
    content: NatsObjectContentStore = field(default_factory=NatsObjectContentStore)
    results: PendingTestResults = field(default_factory=PendingTestResults)
    clock: Clock = field(default_factory=SystemClock)

    async def readiness(self) -> dict[str, bool]:
        return {**await nats_ready(self.broker), **await postgres.database_ready(self.pool)}

    async def start(self) -> None:
        await self.broker.connect()
        js = self.broker.connection.jetstream()
        await ensure_streams(js, OWNED_STREAMS + USED_STREAMS)
        await self.content.start(js)
        await self.broker.start()
        self.relay.start()
        self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.relay.stop()
        await self.broker.stop()
        await self.pool.close()


async def build_container(settings: ConfigApiSettings, provider: TracerProvider) -> Container:
    """Connect to PostgreSQL (migrating config-api's schema) and prepare the broker."""
    sealer = Sealer(parse_keys(settings.sealing_keys.get_secret_value()))
    pool = await postgres.open_database(
        settings.database_url.get_secret_value(),
        schema=SCHEMA,
        migrations=MIGRATIONS,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
    )
    return assemble(settings, provider, pool, sealer)


def assemble(
    settings: ConfigApiSettings, provider: TracerProvider, pool: asyncpg.Pool, sealer: Sealer
) -> Container:
    """Build the adapters on ``pool`` and register every subscriber on a broker that is not
    connected yet: no I/O, so the AsyncAPI document can be generated from it."""
    broker = build_broker(settings, provider)
    bus = NatsBus(broker)
    relay = OutboxRelay(pool, bus, nats=lambda: broker.connection)
    repo = PostgresConfigRepository(pool, on_outbox_write=relay.notify)
    keys = CachedKeyLookup(PostgresApiKeyStore(pool), settings.api_key_cache_seconds)
    revoker = NatsGrantRevoker(bus)
    ledger = PostgresSendLedger(pool, on_outbox_write=relay.notify)
    scheduler = PollScheduler(
        pool,
        bus,
        SystemClock(),
        interval=settings.poll_interval_seconds,
        tick=settings.poll_tick_seconds,
    )
    policy = NatsPolicyService(
        bus, settings.policy_timeout_seconds, settings.policy_effective_timeout_seconds
    )
    container = Container(
        settings, pool, broker, sealer, repo, bus, relay, keys, revoker, ledger, scheduler, policy
    )
    nats_entrypoints.register(broker, container)
    serve_health_rpc(broker, SERVICE, container.readiness)
    return container
