"""The composition root of policy: its schema, its streams, its adapters and subscribers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mailbridge.policy.adapters.postgres import PostgresClientOrgs, PostgresOrgApps
from mailbridge.policy.adapters.quota import PostgresSendQuota
from mailbridge.policy.entrypoints import nats
from mailbridge.policy.entrypoints.metrics import PolicyMetrics
from mailbridge.policy.ports import ClientOrgs, EventPublisher, OrgApps, SendQuota
from mailbridge.shared.bus import NatsBus
from mailbridge.shared.crypto import Sealer
from mailbridge.shared.runtime import DatabaseService, ServiceResources
from mailbridge.shared.streams import MAIL_EVT, POLICY_EVT


@dataclass
class Container:
    apps: OrgApps
    client_orgs: ClientOrgs
    quota: SendQuota
    events: EventPublisher
    sealer: Sealer
    metrics: PolicyMetrics


def build_container(resources: ServiceResources) -> Container:
    pool = resources.pool
    return Container(
        apps=PostgresOrgApps(pool),
        client_orgs=PostgresClientOrgs(pool),
        quota=PostgresSendQuota(pool),
        events=NatsBus(resources.broker),
        sealer=resources.sealer,
        metrics=PolicyMetrics(resources.registry),
    )


def register(resources: ServiceResources) -> None:
    nats.register(resources.broker, build_container(resources))


SERVICE = DatabaseService(
    name="policy",
    schema="policy",
    migrations=Path(__file__).resolve().parents[3] / "migrations",
    owned_streams=(POLICY_EVT,),
    used_streams=(MAIL_EVT,),  # failed sends release their reservations
    register=register,
)
