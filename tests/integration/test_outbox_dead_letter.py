"""No outbox row can block the ones behind it: a row that can never be published is dead-lettered
with its reason (a send's HTTP ledger row settled ``failed``), and the rows after it go out; and
the lag an operator watches is the age of the oldest row still waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import nats
import pytest
from faststream.nats import NatsBroker
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from prometheus_client import CollectorRegistry

from mailbridge.config_api.adapters.postgres import SCHEMA, PostgresConfigRepository
from mailbridge.config_api.adapters.sends import PostgresSendLedger, settle_dead_send
from mailbridge.config_api.domain.email_config import AgentIn
from mailbridge.devstack.nats import EmbeddedNats
from mailbridge.shared import subjects
from mailbridge.shared.errors import ErrorCode
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import MailboxStatus, Message, SendMessage, StatusChanged
from mailbridge.shared.outbox import MAX_ATTEMPTS, DeadReason, OutboxRelay, Stalled, write_outbox
from mailbridge.shared.streams import ALL_STREAMS, CONFIG_EVT, ensure_stream, ensure_streams
from tests.integration.conftest import outbox_pool

MIGRATIONS = Path(__file__).resolve().parents[2] / "services/config-api/migrations"


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    """A migrated database of its own: the relay sees only this test's rows."""
    async with outbox_pool(fresh_database, SCHEMA, MIGRATIONS) as created:
        yield created


@pytest.fixture
async def broker(nats_url: str, js: JetStreamContext) -> AsyncIterator[NatsBroker]:
    await ensure_streams(js, ALL_STREAMS)
    connected = NatsBroker(nats_url)
    await connected.connect()
    yield connected
    await connected.stop()


def relay_on(pool: asyncpg.Pool, broker: NatsBroker) -> OutboxRelay:
    """Wired as bootstrap wires it: a dead-lettered send settles its HTTP send."""
    return OutboxRelay(
        pool, broker, schema=SCHEMA, registry=CollectorRegistry(), on_dead_letter=settle_dead_send
    )


@pytest.mark.parametrize(
    "bytes_under_the_limit",
    [-1, 100],
    ids=["over max_payload", "under it, over it with the headers"],
)
async def test_a_row_too_large_to_publish_is_dead_lettered_and_the_next_one_goes_out(
    pool: asyncpg.Pool, broker: NatsBroker, js: JetStreamContext, bytes_under_the_limit: int
) -> None:
    too_large = broker.connection.max_payload - bytes_under_the_limit
    huge = SendMessage(agent_id=new_id("agent"), to=["a@example.com"], text="x" * too_large)
    after = _status_changed()
    await _queue(pool, huge, after)
    relay = relay_on(pool, broker)

    assert await relay.publish_pending() == 2  # both settled in one round
    received = await _next_message(js, after.nats_subject())

    assert StatusChanged.model_validate_json(received).event_id == after.event_id
    assert await _dead_reason(pool, huge.nats_subject()) == DeadReason.PAYLOAD_TOO_LARGE
    assert relay.dead_lettered(DeadReason.PAYLOAD_TOO_LARGE) == 1
    assert broker.connection.is_connected  # the server never saw it, so never cut us off


async def test_a_dead_lettered_send_fails_its_http_send_and_leaves_the_mailbox_status(
    pool: asyncpg.Pool, broker: NatsBroker
) -> None:
    agent_id = new_id("agent")
    repo = PostgresConfigRepository(pool)
    await repo.upsert_agent(agent_id, AgentIn(org_id="o1"), [])
    status_before = await _mailbox_status(pool, agent_id)
    huge = SendMessage(agent_id=agent_id, to=["a@example.com"], text="x" * (2 * 1024 * 1024))
    ledger = PostgresSendLedger(pool)
    command_id, _ = await ledger.open(huge, "key-1", "fingerprint")

    await relay_on(pool, broker).publish_pending()

    send = await ledger.find(agent_id, command_id)
    assert send is not None
    assert send.status == "failed"
    assert send.error is not None
    assert send.error.code == ErrorCode.MESSAGE_TOO_LARGE
    assert send.error.hint
    assert await _mailbox_status(pool, agent_id) == status_before


@pytest.fixture
async def nats_without_mail_events(tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
    """A server of its own with CONFIG_EVT but no MAIL_EVT: publishes to evt.mail.* find no
    stream, as while a stream is being restored, and never succeed."""
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    client = await nats.connect(server.url)
    await ensure_stream(client.jetstream(), CONFIG_EVT)
    await client.close()
    yield server
    server.stop()


async def test_a_row_failing_while_nats_is_up_is_kept_then_given_up_after_max_attempts(
    pool: asyncpg.Pool, nats_without_mail_events: EmbeddedNats
) -> None:
    stuck = subjects.render(subjects.EVT_CONNECTION_TESTED, "a1")
    await _queue_raw(pool, stuck, '{"agent_id": "a1"}')
    after = _status_changed()
    await _queue(pool, after)
    broker = NatsBroker(nats_without_mail_events.url)
    await broker.connect()
    relay = relay_on(pool, broker)
    try:
        for _ in range(MAX_ATTEMPTS - 1):
            with pytest.raises(Stalled):  # kept, and the row after it waits its turn
                await relay.publish_pending()
        assert await _unpublished_count(pool) == 2
        assert await relay.publish_pending() == 2  # the tenth failure gives it up; `after` goes
        client = await nats.connect(nats_without_mail_events.url)
        received = await _next_message(client.jetstream(), after.nats_subject())
        await client.close()
    finally:
        await broker.stop()
    assert StatusChanged.model_validate_json(received).event_id == after.event_id
    assert await _dead_reason(pool, stuck) == DeadReason.GAVE_UP


async def test_failures_while_nats_is_down_are_not_counted_against_the_row(
    pool: asyncpg.Pool, nats_without_mail_events: EmbeddedNats
) -> None:
    await _queue(pool, _status_changed())
    broker = NatsBroker(nats_without_mail_events.url, max_reconnect_attempts=-1)
    await broker.connect()
    relay = relay_on(pool, broker)
    nats_without_mail_events.stop()
    try:
        for _ in range(MAX_ATTEMPTS + 1):
            with pytest.raises(Stalled):
                await relay.publish_pending()
    finally:
        nats_without_mail_events.start()
        async with asyncio.timeout(30):  # reconnected, so the broker can drain and stop
            while not broker.connection.is_connected:
                await asyncio.sleep(0.05)
        await broker.stop()
    assert await pool.fetchval("SELECT attempts FROM config_api.outbox") == 0
    assert await _unpublished_count(pool) == 1


async def test_the_lag_is_the_oldest_waiting_rows_age_and_none_once_it_is_out(
    pool: asyncpg.Pool, broker: NatsBroker
) -> None:
    registry = CollectorRegistry()
    relay = OutboxRelay(pool, broker, schema=SCHEMA, registry=registry)

    async def lag() -> float | None:
        await relay.measure_lag()
        return registry.get_sample_value("mailbridge_outbox_lag_seconds")

    assert await lag() == 0
    await _queue(pool, _status_changed(), _status_changed())
    await pool.execute("UPDATE config_api.outbox SET created_at = now() - interval '90 seconds'"
                       " WHERE id = (SELECT min(id) FROM config_api.outbox)")  # fmt: skip
    assert 90 <= (await lag() or 0) < 120  # the oldest counts, not the newest

    assert await relay.publish_pending() == 2
    assert await lag() == 0


def _status_changed() -> StatusChanged:
    return StatusChanged(
        agent_id=new_id("agent"), status=MailboxStatus.CONNECTED, previous=MailboxStatus.CONFIGURED
    )


async def _queue(pool: asyncpg.Pool, *messages: Message) -> None:
    async with pool.acquire() as connection:
        await write_outbox(connection, SCHEMA, list(messages))


async def _queue_raw(pool: asyncpg.Pool, subject: str, payload: str) -> None:
    await pool.execute(
        "INSERT INTO config_api.outbox (subject, payload) VALUES ($1, $2)", subject, payload
    )


async def _next_message(js: JetStreamContext, subject: str, timeout: float = 10.0) -> bytes:
    """The first message of ``subject`` in CONFIG_EVT, waited for at most ``timeout``."""
    consumer = await js.pull_subscribe(
        subject, stream=CONFIG_EVT.name, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    try:
        [message] = await consumer.fetch(1, timeout=timeout)
        return message.data
    finally:
        await consumer.unsubscribe()


async def _dead_reason(pool: asyncpg.Pool, subject: str) -> str:
    """The bounded reason label of the subject's dead-lettered row (its detail follows a colon)."""
    reason = await pool.fetchval(
        "SELECT dead_reason FROM config_api.outbox WHERE subject = $1 AND dead_at IS NOT NULL"
        " AND published_at IS NULL",
        subject,
    )
    assert reason is not None, f"{subject} was not dead-lettered"
    return str(reason).split(":", 1)[0]


async def _unpublished_count(pool: asyncpg.Pool) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM config_api.outbox WHERE published_at IS NULL AND dead_at IS NULL"
        )
    )


async def _mailbox_status(pool: asyncpg.Pool, agent_id: str) -> str | None:
    status = await pool.fetchval(
        "SELECT status FROM config_api.mailbox_status WHERE agent_id = $1", agent_id
    )
    return None if status is None else str(status)
