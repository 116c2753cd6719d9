"""The composition root of policy: the only place that builds its adapters and subscribers."""

from __future__ import annotations

from pathlib import Path

from mailbridge.policy.adapters.postgres import PostgresClientOrgs, PostgresOrgApps
from mailbridge.policy.adapters.quota import PostgresSendQuota
from mailbridge.policy.container import Container
from mailbridge.policy.entrypoints import nats
from mailbridge.policy.entrypoints.metrics import PolicyMetrics
from mailbridge.policy.settings import PolicySettings
from mailbridge.shared.service import DatabaseResources, DatabaseService, Service
from mailbridge.shared.streams import MAIL_EVT, POLICY_EVT


def build(settings: PolicySettings, r: DatabaseResources) -> Service[Container]:
    container = Container(
        apps=PostgresOrgApps(r.pool),
        client_orgs=PostgresClientOrgs(r.pool),
        quota=PostgresSendQuota(r.pool),
        events=r.bus,
        sealer=r.sealer,
        metrics=PolicyMetrics(r.registry),
    )
    nats.register(r.broker, container)
    # its own events; MAIL_EVT for failed sends, which release their reservations
    return Service(container, streams=(POLICY_EVT, MAIL_EVT))


SERVICE = DatabaseService(
    name="policy",
    schema="policy",
    migrations=Path(__file__).resolve().parents[3] / "migrations",
    build=build,
)
