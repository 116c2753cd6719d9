"""The composition root of oauth-broker: the only place that builds its adapters and subscribers."""

from __future__ import annotations

from pathlib import Path

from mailbridge.oauth_broker.container import Container
from mailbridge.oauth_broker.settings import OAuthBrokerSettings
from mailbridge.shared.service import DatabaseResources, DatabaseService, Service
from mailbridge.shared.streams import OAUTH_EVT


def build(settings: OAuthBrokerSettings, r: DatabaseResources) -> Service[Container]:
    return Service(Container(events=r.bus, sealer=r.sealer), streams=(OAUTH_EVT,))


SERVICE = DatabaseService(
    name="oauth-broker",
    schema="oauth_broker",
    migrations=Path(__file__).resolve().parents[3] / "migrations",
    build=build,
)
