"""PostgreSQL restarted under a running outbox relay: every row committed before the stop is
published after the start, each exactly once, by the same relay on the same pool.

The rows a second connection holds ``FOR UPDATE`` when the server stops are the ones the relay
cannot have published before the outage (its claim skips locked rows), so the test knows which
rows crossed it; the fast shutdown then ends that connection and the relay's own mid-round.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import nats
import pytest
from faststream.nats import NatsBroker
from nats.js.api import ConsumerConfig, DeliverPolicy
from prometheus_client import CollectorRegistry

from mailbridge.config_api.adapters.postgres import SCHEMA
from mailbridge.devstack.postgres import EmbeddedPostgres
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import EmailConfigSaved, Provider
from mailbridge.shared.outbox import BATCH, OutboxRelay, write_outbox
from mailbridge.shared.streams import CONFIG_EVT, ensure_streams
from tests.integration.conftest import outbox_pool

MIGRATIONS = Path(__file__).resolve().parents[2] / "services/config-api/migrations"
ROWS = 3 * BATCH  # more than one round: the relay cannot have settled them all before the stop
UNPUBLISHED = f"SELECT id FROM {SCHEMA}.outbox WHERE published_at IS NULL"


@pytest.fixture
def own_postgres(tmp_path: Path) -> AsyncIterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path / "postgres")  # its own server: this test restarts it
    server.start()
    yield server
    server.stop()


@pytest.mark.timeout(180)
async def test_rows_written_before_a_database_restart_are_published_after_it_once(
    own_postgres: EmbeddedPostgres, nats_url: str
) -> None:
    agent_id = new_id("agent-dbrestart")
    events = [
        EmailConfigSaved(agent_id=agent_id, provider=Provider.IMAP, version=n) for n in range(ROWS)
    ]
    broker = NatsBroker(nats_url)
    await broker.connect()
    await ensure_streams(broker.connection.jetstream(), [CONFIG_EVT])
    async with outbox_pool(own_postgres.dsn, SCHEMA, MIGRATIONS) as pool:
        relay = OutboxRelay(pool, broker, schema=SCHEMA, registry=CollectorRegistry())
        await relay.start(broker.connection.jetstream())
        try:
            crossed = await _write_and_stop_holding_some(own_postgres, pool, events)
            await _until(lambda: relay.failed_attempts > 0)  # the relay met the outage
            await asyncio.to_thread(own_postgres.start)  # same data directory, same port
            await _until_published(pool)
        finally:
            await relay.stop()
            await broker.stop()
    published = await _stored_event_ids(nats_url, events[0].nats_subject())
    assert crossed > 0, "no row waited across the outage: the test proved nothing"
    assert sorted(published) == sorted(e.event_id for e in events)  # all, and each once
    print(f"rows {ROWS}, crossed the outage {crossed}, failed rounds {relay.failed_attempts}")


async def _write_and_stop_holding_some(
    server: EmbeddedPostgres, pool: asyncpg.Pool, events: list[EmailConfigSaved]
) -> int:
    """Commit the rows (no notify: the relay finds them at its next poll), lock those still
    unpublished from another connection, and stop the server while holding them: how many."""
    async with pool.acquire() as connection:
        async with connection.transaction():
            await write_outbox(connection, SCHEMA, events)
        holder = await asyncpg.connect(server.dsn)
        await holder.execute("BEGIN")
        held = await holder.fetch(UNPUBLISHED + " FOR UPDATE")
    await asyncio.to_thread(server.stop)  # fast shutdown: the holder's and the relay's end too
    holder.terminate()
    return len(held)


async def _until_published(pool: asyncpg.Pool, timeout: float = 60.0) -> None:
    """Until no row waits; the pool's connections died with the server and come back by
    themselves, so a lookup that meets one still closing is only tried again."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                if not await pool.fetch(UNPUBLISHED):
                    return
            except (asyncpg.PostgresConnectionError, ConnectionError):
                pass
            await asyncio.sleep(0.1)


async def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def _stored_event_ids(url: str, subject: str) -> list[str]:
    """The event ids JetStream stores on ``subject``. A duplicate publish is dropped there by its
    Nats-Msg-Id (a core subscription would still see it), and every row is marked published only
    after its PubAck, so once none waits this count is final."""
    client = await nats.connect(url)
    js = client.jetstream()
    try:
        info = await js.stream_info(CONFIG_EVT.name, subjects_filter=subject)
        stored = (info.state.subjects or {}).get(subject, 0)
        config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        reader = await js.subscribe(subject, config=config, ordered_consumer=True)
        messages = [await reader.next_msg(timeout=10) for _ in range(stored)]
        return [EmailConfigSaved.model_validate_json(m.data).event_id for m in messages]
    finally:
        await client.close()
