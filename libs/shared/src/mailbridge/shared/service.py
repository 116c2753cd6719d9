"""One way to start every service: resources, build, connect, serve, drain.

Each service declares a blueprint in its ``bootstrap.py``::

    SERVICE = DatabaseService(name="policy", schema="policy", migrations=..., build=build)

    def build(settings: PolicySettings, r: DatabaseResources) -> Service[Container]:
        container = Container(apps=PostgresOrgApps(r.pool), ...)   # ports only
        nats.register(r.broker, container)                         # entrypoints see the container
        return Service(container, streams=(POLICY_EVT, MAIL_EVT), parts=(relay,))

and its ``__main__`` is ``run(SERVICE, load_settings(PolicySettings, SERVICE.name))``. ``run``
opens the resources (a broker not yet connected; for a database service also the migrated pool and
the sealer), builds, connects, ensures the streams, starts the parts that need the live connection
(``Part.start(js)``: KV buckets, the outbox relay; every stream and bucket made through that
``js`` gets ``MAILBRIDGE_STREAM_REPLICAS`` copies), starts the subscribers and the health port,
and on SIGTERM or SIGINT stops in reverse: health, the parts' hand-over of work others should
take at once (``HandsOver``), subscribers (draining what is in flight), parts, the pool. ``build``
connects nothing, so the contract generator calls it on unconnected resources.
config-api, which uvicorn serves, uses the same ``start`` and ``Running.stop`` in its lifespan.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar, runtime_checkable

import asyncpg
from faststream.nats import NatsBroker
from nats.js import JetStreamContext
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from mailbridge.shared.background import BackgroundLoop
from mailbridge.shared.bus import NatsBus
from mailbridge.shared.crypto import Sealer, generate_key_spec, parse_keys
from mailbridge.shared.health import HealthServer
from mailbridge.shared.postgres import database_ready, open_database
from mailbridge.shared.runtime import build_broker, nats_ready, serve_health_rpc, setup_telemetry
from mailbridge.shared.settings import DatabaseSettings, ServiceSettings
from mailbridge.shared.streams import ReplicatedJetStream, StreamDefinition, ensure_streams

log = logging.getLogger(__name__)

ContainerT = TypeVar("ContainerT")
ContainerT_co = TypeVar("ContainerT_co", covariant=True)
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
SettingsT_contra = TypeVar("SettingsT_contra", bound=ServiceSettings, contravariant=True)
DbSettingsT = TypeVar("DbSettingsT", bound=DatabaseSettings)
LoadedT = TypeVar("LoadedT", bound=ServiceSettings)
_NOWHERE = "postgresql://unused@127.0.0.1:1/unused"  # unconnected pools never dial it


class Part(Protocol):
    """An adapter or loop that needs the live connection: started once connected, in order,
    and stopped in reverse order when the service stops."""

    async def start(self, js: JetStreamContext) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class HandsOver(Protocol):
    """A part holding work that other replicas should take over the moment this one stops (the
    mail-worker's watched mailboxes): ``hand_over`` gives it back while the connection still
    works, before the subscribers drain and the connection closes."""

    async def hand_over(self) -> None: ...


class Closable(Protocol):
    async def close(self) -> None: ...


@dataclass(frozen=True)
class closing:
    """A part that only closes its adapter when the service stops (idle sessions log out)."""

    adapter: Closable

    async def start(self, js: JetStreamContext) -> None:
        return None

    async def stop(self) -> None:
        await self.adapter.close()


@dataclass(frozen=True)
class looping:
    """A part that runs a background loop (the outbox relay, a scheduler) while the service runs."""

    loop: BackgroundLoop

    async def start(self, js: JetStreamContext) -> None:
        self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()


@dataclass(frozen=True)
class Resources:
    """What a service builds its adapters from; the broker is not connected yet."""

    broker: NatsBroker
    bus: NatsBus
    registry: CollectorRegistry  # the service's Prometheus metrics, at the health port
    provider: TracerProvider

    async def readiness(self) -> dict[str, bool]:
        return await nats_ready(self.broker)

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class DatabaseResources(Resources):
    """For a service that owns a schema: its migrated pool and the sealer of its secrets."""

    pool: asyncpg.Pool
    sealer: Sealer

    async def readiness(self) -> dict[str, bool]:
        return {**await nats_ready(self.broker), **await database_ready(self.pool)}

    async def close(self) -> None:
        await self.pool.close()


@dataclass(frozen=True)
class Service(Generic[ContainerT_co]):
    """What a build answers: its container of ports, the streams it writes or reads (made if
    missing), and the parts to start once connected."""

    container: ContainerT_co
    streams: tuple[StreamDefinition, ...]
    parts: tuple[Part, ...] = ()


class Blueprint(Protocol[SettingsT_contra, ContainerT_co]):
    @property
    def name(self) -> str: ...

    async def assemble(
        self, settings: SettingsT_contra, provider: TracerProvider
    ) -> tuple[Resources, Service[ContainerT_co]]: ...

    def assemble_unconnected(
        self, settings: SettingsT_contra, provider: TracerProvider
    ) -> tuple[Resources, Service[ContainerT_co]]: ...


@dataclass(frozen=True)
class NatsService(Generic[SettingsT, ContainerT]):
    """A service on NATS alone (mail-worker)."""

    name: str
    build: Callable[[SettingsT, Resources], Service[ContainerT]]

    async def assemble(
        self, settings: SettingsT, provider: TracerProvider
    ) -> tuple[Resources, Service[ContainerT]]:
        return self.assemble_unconnected(settings, provider)  # nothing to open before connecting

    def assemble_unconnected(
        self, settings: SettingsT, provider: TracerProvider
    ) -> tuple[Resources, Service[ContainerT]]:
        resources = Resources(*_messaging(settings, provider), provider)
        return resources, self.build(settings, resources)


@dataclass(frozen=True)
class DatabaseService(Generic[DbSettingsT, ContainerT]):
    """A service that owns a PostgreSQL schema (config-api, oauth-broker, policy)."""

    name: str
    schema: str
    migrations: Path
    build: Callable[[DbSettingsT, DatabaseResources], Service[ContainerT]]

    async def assemble(
        self, settings: DbSettingsT, provider: TracerProvider
    ) -> tuple[Resources, Service[ContainerT]]:
        pool = await open_database(
            settings.database_url.get_secret_value(),
            schema=self.schema,
            migrations=self.migrations,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
        )
        sealer = Sealer(parse_keys(settings.sealing_keys.get_secret_value()))
        return self._built(settings, provider, pool, sealer)

    def assemble_unconnected(
        self, settings: DbSettingsT, provider: TracerProvider
    ) -> tuple[Resources, Service[ContainerT]]:
        """A pool object that would connect on its first ``await``, which never comes."""
        pool = asyncpg.create_pool(_NOWHERE, min_size=0)
        return self._built(settings, provider, pool, Sealer(parse_keys(generate_key_spec("x"))))

    def _built(
        self,
        settings: DbSettingsT,
        provider: TracerProvider,
        pool: asyncpg.Pool,
        sealer: Sealer,
    ) -> tuple[Resources, Service[ContainerT]]:
        resources = DatabaseResources(*_messaging(settings, provider), provider, pool, sealer)
        return resources, self.build(settings, resources)


def _messaging(
    settings: ServiceSettings, provider: TracerProvider
) -> tuple[NatsBroker, NatsBus, CollectorRegistry]:
    broker = build_broker(settings, provider)
    return broker, NatsBus(broker), CollectorRegistry()


@dataclass
class Running(Generic[ContainerT]):
    """A started service; ``stop`` drains it."""

    resources: Resources
    service: Service[ContainerT]
    health: HealthServer
    started_parts: list[Part] = field(default_factory=list)

    @property
    def container(self) -> ContainerT:
        return self.service.container

    async def stop(self) -> None:
        await self.health.stop()
        for part in reversed(self.started_parts):
            if isinstance(part, HandsOver):
                await part.hand_over()
        await self.resources.broker.stop()
        for part in reversed(self.started_parts):
            await part.stop()
        await self.resources.close()
        # the last batch of spans, the stop's own among them, before the process exits
        await asyncio.to_thread(self.resources.provider.force_flush)


def unconnected(
    blueprint: Blueprint[SettingsT, ContainerT], settings: SettingsT, provider: TracerProvider
) -> Resources:
    """Every subscriber registered, nothing connected: what the contract generator documents."""
    resources, _ = blueprint.assemble_unconnected(settings, provider)
    serve_health_rpc(resources.broker, blueprint.name, resources.readiness)
    return resources


async def start(
    blueprint: Blueprint[SettingsT, ContainerT], settings: SettingsT, provider: TracerProvider
) -> Running[ContainerT]:
    """Assemble, connect, ensure streams, start the parts, the subscribers and the health port."""
    resources, service = await blueprint.assemble(settings, provider)
    serve_health_rpc(resources.broker, blueprint.name, resources.readiness)
    health = HealthServer(
        settings.health_host, settings.health_port, resources.readiness, resources.registry
    )
    running = Running(resources, service, health)
    await resources.broker.connect()
    js = ReplicatedJetStream(resources.broker.connection, settings.stream_replicas)
    await ensure_streams(js, service.streams)
    for part in service.parts:
        await part.start(js)
        running.started_parts.append(part)
    await resources.broker.start()
    if settings.health_port:
        await health.start()
    log.info("service ready")
    return running


async def run(blueprint: Blueprint[SettingsT, ContainerT], settings: SettingsT) -> None:
    """Serve until SIGTERM or SIGINT, then drain and stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = await start(blueprint, settings, setup_telemetry(blueprint.name, settings))
    await stop.wait()
    log.info("stopping")
    await running.stop()


def load_settings(settings_class: type[LoadedT], service: str) -> LoadedT:
    """The service's settings from the environment; what is missing or wrong ends the process
    with one readable line naming each variable, never a traceback."""
    try:
        return settings_class()
    except ValidationError as exc:
        problems = "; ".join(
            f"MAILBRIDGE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        sys.exit(f"{service} cannot start: {problems}")
