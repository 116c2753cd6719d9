"""config-api's outbox: a saved change's events reach JetStream, once, with Nats-Msg-Id set."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from faststream.nats import NatsBroker
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from prometheus_client import CollectorRegistry

from mailbridge.config_api.adapters.postgres import SCHEMA, PostgresConfigRepository
from mailbridge.config_api.domain.email_config import AgentIn, StatusRecord
from mailbridge.shared import postgres
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import MailboxStatus, StatusChanged
from mailbridge.shared.outbox import OutboxRelay
from mailbridge.shared.streams import ALL_STREAMS, CONFIG_EVT, ensure_streams

MIGRATIONS = Path(__file__).resolve().parents[2] / "services/config-api/migrations"


async def test_a_status_change_is_published_once_from_the_outbox(
    pool: asyncpg.Pool, js: JetStreamContext, nats_url: str
) -> None:
    async with pool.acquire() as connection:
        await postgres.migrate(connection, SCHEMA, MIGRATIONS)
    await ensure_streams(js, ALL_STREAMS)
    agent_id = new_id("agent")
    repo = PostgresConfigRepository(pool)
    await repo.upsert_agent(agent_id, AgentIn(org_id="o1"), [])
    change = StatusChanged(
        agent_id=agent_id, status=MailboxStatus.CONNECTED, previous=MailboxStatus.CONFIGURED
    )
    await repo.update_status(
        agent_id, lambda *_: (StatusRecord(status=MailboxStatus.CONNECTED), [change])
    )
    broker = NatsBroker(nats_url)
    await broker.connect()
    relay = OutboxRelay(pool, broker, schema=SCHEMA, registry=CollectorRegistry())

    await relay.publish_pending()
    await _mark_unpublished(pool, change.nats_subject())  # a crash between publish and mark…
    await relay.publish_pending()  # …publishes again, and JetStream keeps one copy
    await broker.stop()

    received = await _all_messages(js, change.nats_subject())
    assert len(received) == 1
    assert StatusChanged.model_validate_json(received[0].data).event_id == change.event_id
    assert received[0].headers is not None
    assert received[0].headers["Nats-Msg-Id"].startswith("outbox-config_api-")


async def _mark_unpublished(pool: asyncpg.Pool, subject: str) -> None:
    await pool.execute(
        "UPDATE config_api.outbox SET published_at = NULL WHERE subject = $1", subject
    )


async def _all_messages(js: JetStreamContext, subject: str) -> list:  # type: ignore[type-arg]
    consumer = await js.pull_subscribe(
        subject, stream=CONFIG_EVT.name, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    messages = await consumer.fetch(10, timeout=2)
    try:
        await consumer.fetch(1, timeout=0.5)
        raise AssertionError("more messages than expected")
    except TimeoutError:
        pass
    return messages
