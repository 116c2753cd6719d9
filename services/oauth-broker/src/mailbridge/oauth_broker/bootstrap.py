"""The composition root of oauth-broker: the only place that builds its adapters and subscribers."""

from __future__ import annotations

from pathlib import Path

from mailbridge.oauth_broker.adapters.config_api import NatsAppSource
from mailbridge.oauth_broker.adapters.postgres import SCHEMA, PostgresFlows, PostgresGrants
from mailbridge.oauth_broker.adapters.provider import HttpAuthorizationServers
from mailbridge.oauth_broker.container import Container
from mailbridge.oauth_broker.entrypoints import nats
from mailbridge.oauth_broker.entrypoints.idle import IdleRefresher
from mailbridge.oauth_broker.entrypoints.metrics import TokenMetrics
from mailbridge.oauth_broker.handlers.flows import FlowDeps
from mailbridge.oauth_broker.handlers.tokens import TokenDeps
from mailbridge.oauth_broker.settings import OAuthBrokerSettings
from mailbridge.shared.clock import SystemClock
from mailbridge.shared.outbox import OutboxRelay
from mailbridge.shared.service import DatabaseResources, DatabaseService, Service, looping
from mailbridge.shared.streams import OAUTH_EVT


def build(settings: OAuthBrokerSettings, r: DatabaseResources) -> Service[Container]:
    relay = OutboxRelay(r.pool, r.broker, schema=SCHEMA, registry=r.registry)
    servers = HttpAuthorizationServers(
        ca_file=settings.oauth_ca_file, timeout=settings.provider_timeout_seconds
    )
    grants = PostgresGrants(r.pool, r.sealer, on_outbox_write=relay.notify)
    apps = NatsAppSource(r.bus, timeout=settings.config_api_timeout_seconds)
    clock = SystemClock()
    container = Container(
        flows=FlowDeps(
            flows=PostgresFlows(r.pool, r.sealer),
            grants=grants,
            apps=apps,
            servers=servers,
            clock=clock,
            settings=settings,
        ),
        tokens=TokenDeps(
            grants=grants,
            apps=apps,
            servers=servers,
            clock=clock,
            settings=settings,
            outcomes=TokenMetrics(r.registry),
        ),
    )
    nats.register(r.broker, container)
    idle = looping(IdleRefresher(container.tokens))
    return Service(container, streams=(OAUTH_EVT,), parts=(servers, relay, idle))


SERVICE = DatabaseService(
    name="oauth-broker",
    schema=SCHEMA,
    migrations=Path(__file__).resolve().parents[3] / "migrations",
    build=build,
)
