"""What every NATS service does the same way: telemetry, a broker, health, and a graceful stop.

A service builds its broker with ``build_broker``, registers its subscribers, and runs
``run_service``, which serves until SIGTERM or SIGINT and then drains the broker before exiting.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from faststream.nats import NatsBroker
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from mailbridge.shared.crypto import Sealer, parse_keys
from mailbridge.shared.health import HealthServer, ReadinessCheck
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import CheckHealth, HealthReply
from mailbridge.shared.postgres import database_ready, open_database
from mailbridge.shared.settings import DatabaseSettings, ServiceSettings
from mailbridge.shared.streams import StreamDefinition, ensure_streams
from mailbridge.shared.telemetry import build_tracer_provider, configure_logging, nats_middleware

log = logging.getLogger(__name__)

INSTANCE_ID = new_id("inst")


def setup_telemetry(service: str, settings: ServiceSettings) -> TracerProvider:
    configure_logging(service, settings.log_level)
    return build_tracer_provider(service, console=settings.otel_console)


def build_broker(settings: ServiceSettings, provider: TracerProvider) -> NatsBroker:
    return NatsBroker(
        settings.nats_url,
        middlewares=(nats_middleware(provider),),
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        logger=logging.getLogger("mailbridge.broker"),
        log_level=logging.DEBUG,  # one line per message is too much at INFO
    )


def serve_health_rpc(broker: NatsBroker, service: str, readiness: ReadinessCheck) -> None:
    """Answer ``rpc.health.check.v1.{service}`` from any replica (queue group per service)."""

    @broker.subscriber(CheckHealth.subject_for(service), queue=f"{service}-health")
    async def check_health() -> str:
        checks = await readiness()
        reply = HealthReply(
            service=service, instance=INSTANCE_ID, ready=all(checks.values()), checks=checks
        )
        return reply.model_dump_json()


async def run_service(
    broker: NatsBroker,
    settings: ServiceSettings,
    readiness: ReadinessCheck,
    *,
    before_start: Callable[[], Awaitable[None]] | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
    registry: CollectorRegistry | None = None,
) -> None:
    """Connect, prepare (streams), start subscribers and the health port; on SIGTERM/SIGINT stop
    in order: health, broker (draining in-flight messages), then the service's own resources."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await broker.connect()
    if before_start is not None:
        await before_start()
    await broker.start()
    health = HealthServer(settings.health_host, settings.health_port, readiness, registry)
    if settings.health_port:
        await health.start()
    log.info("service ready")
    await stop.wait()
    log.info("stopping")
    await health.stop()
    await broker.stop()
    if on_stop is not None:
        await on_stop()


async def nats_ready(broker: NatsBroker) -> dict[str, bool]:
    connection = broker.connection if broker.running else None
    return {"nats": bool(connection is not None and connection.is_connected)}


@dataclass(frozen=True)
class ServiceResources:
    """What a database service's composition root builds its adapters and subscribers from."""

    broker: NatsBroker
    pool: asyncpg.Pool
    sealer: Sealer
    registry: CollectorRegistry  # its Prometheus metrics, served at the health port's /metrics


Registrar = Callable[[ServiceResources], None]


@dataclass(frozen=True)
class DatabaseService:
    """A NATS service that owns a PostgreSQL schema and some streams (oauth-broker, policy)."""

    name: str
    schema: str
    migrations: Path
    owned_streams: tuple[StreamDefinition, ...]
    used_streams: tuple[StreamDefinition, ...] = ()  # others' streams it consumes (made if missing)
    register: Registrar = field(default=lambda resources: None)

    async def serve(self, settings: DatabaseSettings) -> None:
        sealer = Sealer(parse_keys(settings.sealing_keys.get_secret_value()))
        provider = setup_telemetry(self.name, settings)
        pool = await open_database(
            settings.database_url.get_secret_value(),
            schema=self.schema,
            migrations=self.migrations,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
        )
        broker = build_broker(settings, provider)

        async def readiness() -> dict[str, bool]:
            return {**await nats_ready(broker), **await database_ready(pool)}

        async def prepare_streams() -> None:
            streams = self.owned_streams + self.used_streams
            await ensure_streams(broker.connection.jetstream(), streams)

        registry = CollectorRegistry()
        self.register(ServiceResources(broker, pool, sealer, registry))
        serve_health_rpc(broker, self.name, readiness)
        await run_service(
            broker, settings, readiness,
            before_start=prepare_streams, on_stop=pool.close, registry=registry,
        )  # fmt: skip
