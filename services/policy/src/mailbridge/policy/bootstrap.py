"""The composition root of policy: the only place that builds its adapters and subscribers."""

from __future__ import annotations

from pathlib import Path

from mailbridge.policy.adapters.approval import PostgresContacts, PostgresSendHolds
from mailbridge.policy.adapters.postgres import SCHEMA, PostgresClientOrgs, PostgresOrgApps
from mailbridge.policy.adapters.quota import PostgresSendQuota
from mailbridge.policy.container import Container
from mailbridge.policy.entrypoints import nats
from mailbridge.policy.entrypoints.metrics import PolicyMetrics
from mailbridge.policy.settings import PolicySettings
from mailbridge.shared.outbox import OutboxRelay
from mailbridge.shared.service import DatabaseResources, DatabaseService, Service
from mailbridge.shared.streams import MAIL_EVT, POLICY_EVT


def build(settings: PolicySettings, r: DatabaseResources) -> Service[Container]:
    relay = OutboxRelay(r.pool, r.broker, schema=SCHEMA, registry=r.registry)
    container = Container(
        apps=PostgresOrgApps(r.pool, on_outbox_write=relay.notify),
        client_orgs=PostgresClientOrgs(r.pool, on_outbox_write=relay.notify),
        quota=PostgresSendQuota(r.pool),
        holds=PostgresSendHolds(r.pool),
        contacts=PostgresContacts(r.pool),
        sealer=r.sealer,
        metrics=PolicyMetrics(r.registry),
    )
    nats.register(r.broker, container)
    # its own events; MAIL_EVT: failed and rejected sends release their reservations, sent and
    # received ones are the agents' contacts
    return Service(container, streams=(POLICY_EVT, MAIL_EVT), parts=(relay,))


SERVICE = DatabaseService(
    name="policy",
    schema=SCHEMA,
    migrations=Path(__file__).resolve().parents[3] / "migrations",
    build=build,
)
