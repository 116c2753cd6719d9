"""With nats-server stopped, a save still succeeds; its event is published once NATS is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import nats
import pytest
from faststream.nats import NatsBroker
from nats.js.errors import NotFoundError
from prometheus_client import CollectorRegistry

from mailbridge.config_api.adapters.postgres import SCHEMA, PostgresConfigRepository
from mailbridge.config_api.domain.email_config import AgentIn, StatusRecord, StoredConfig
from mailbridge.devstack.nats import EmbeddedNats
from mailbridge.shared import postgres
from mailbridge.shared.messages import EmailConfigSaved, MailboxStatus, Provider
from mailbridge.shared.outbox import OutboxRelay
from mailbridge.shared.streams import ALL_STREAMS, CONFIG_EVT, ensure_streams

MIGRATIONS = Path(__file__).resolve().parents[2] / "services/config-api/migrations"


@pytest.fixture
async def own_nats(tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "nats")  # its own server: this test stops and restarts it
    server.start()
    client = await nats.connect(server.url)
    await ensure_streams(client.jetstream(), ALL_STREAMS)
    await client.close()
    yield server
    server.stop()


# nats-py buffers publishes made while it reconnects: with the buffer, the stalled publish and the
# relay's retry both arrive and Nats-Msg-Id keeps one; without it, only the retry can deliver.
@pytest.mark.parametrize("reconnect_buffer", [2 * 1024 * 1024, 0], ids=["buffered", "unbuffered"])
async def test_a_save_during_a_nats_outage_is_published_once_when_nats_returns(
    own_nats: EmbeddedNats, fresh_database: str, reconnect_buffer: int
) -> None:
    pool = await asyncpg.create_pool(fresh_database, min_size=1, max_size=4)
    assert pool is not None
    async with pool.acquire() as connection:
        await postgres.migrate(connection, SCHEMA, MIGRATIONS)
    broker = NatsBroker(
        own_nats.url,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
        pending_size=reconnect_buffer,
    )
    await broker.connect()
    relay = OutboxRelay(pool, broker, schema=SCHEMA, registry=CollectorRegistry())
    repo = PostgresConfigRepository(pool, on_outbox_write=relay.notify)
    await relay.start(broker.connection.jetstream())
    try:
        own_nats.stop()
        event = await _save_a_config(repo)  # succeeds: only PostgreSQL is needed
        await _until(lambda: relay.failed_attempts > 0)  # the relay tried and found NATS down
        own_nats.start()  # same port, same JetStream store
        copies = await _copies_of(own_nats.url, event.nats_subject())
    finally:
        await relay.stop()
        await broker.stop()
        await pool.close()
    assert [EmailConfigSaved.model_validate_json(c).event_id for c in copies] == [event.event_id]


async def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def _save_a_config(repo: PostgresConfigRepository) -> EmailConfigSaved:
    await repo.upsert_agent("agent-outage", AgentIn(org_id="o1"), [])
    config = StoredConfig(
        agent_id="agent-outage", provider=Provider.IMAP, email="a@example.com",
        settings={}, sealed_secret=None, version=1,
    )  # fmt: skip
    event = EmailConfigSaved(agent_id="agent-outage", provider=Provider.IMAP, version=1)
    await repo.save(config, StatusRecord(status=MailboxStatus.CONFIGURED), [event])
    return event


async def _copies_of(url: str, subject: str, timeout: float = 30.0) -> list[bytes]:
    """Every copy of ``subject`` in CONFIG_EVT, once the relay has published one."""
    client = await nats.connect(url)
    js = client.jetstream()
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    await js.get_last_msg(CONFIG_EVT.name, subject)
                    break
                except NotFoundError:
                    await asyncio.sleep(0.1)
        info = await js.stream_info(CONFIG_EVT.name)
        stored = [
            await js.get_msg(CONFIG_EVT.name, seq) for seq in range(1, info.state.last_seq + 1)
        ]
        return [m.data or b"" for m in stored if m.subject == subject]
    finally:
        await client.close()
