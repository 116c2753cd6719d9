"""The composition root of policy: its schema, its streams, its adapters and subscribers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg
from faststream.nats import NatsBroker

from mailbridge.policy.adapters.postgres import PostgresClientOrgs, PostgresOrgApps
from mailbridge.policy.adapters.quota import PostgresSendQuota
from mailbridge.policy.entrypoints import nats
from mailbridge.policy.ports import ClientOrgs, EventPublisher, OrgApps, SendQuota
from mailbridge.shared.bus import NatsBus
from mailbridge.shared.crypto import Sealer
from mailbridge.shared.runtime import DatabaseService
from mailbridge.shared.streams import MAIL_EVT, POLICY_EVT


@dataclass
class Container:
    apps: OrgApps
    client_orgs: ClientOrgs
    quota: SendQuota
    events: EventPublisher
    sealer: Sealer


def build_container(broker: NatsBroker, pool: asyncpg.Pool, sealer: Sealer) -> Container:
    return Container(
        apps=PostgresOrgApps(pool),
        client_orgs=PostgresClientOrgs(pool),
        quota=PostgresSendQuota(pool),
        events=NatsBus(broker),
        sealer=sealer,
    )


def register(broker: NatsBroker, pool: asyncpg.Pool, sealer: Sealer) -> None:
    nats.register(broker, build_container(broker, pool, sealer))


SERVICE = DatabaseService(
    name="policy",
    schema="policy",
    migrations=Path(__file__).resolve().parents[3] / "migrations",
    owned_streams=(POLICY_EVT,),
    used_streams=(MAIL_EVT,),  # failed sends release their reservations
    register=register,
)
