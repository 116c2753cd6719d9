"""policy's events leave with its changes: each is written to ``policy.outbox`` in the transaction
of its change, and the relay publishes it once, its ``Nats-Msg-Id`` naming the row."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from faststream.nats import NatsBroker
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError
from prometheus_client import CollectorRegistry

from mailbridge.policy import handlers
from mailbridge.policy.adapters.postgres import SCHEMA, PostgresClientOrgs, PostgresOrgApps
from mailbridge.shared.crypto import Sealer, generate_key_spec, parse_keys
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import (
    OrgChanged,
    PolicyDocumentReply,
    PutClientOrg,
    PutOrgConfig,
)
from mailbridge.shared.outbox import OutboxRelay
from mailbridge.shared.streams import POLICY_EVT, ensure_streams
from tests.integration.conftest import outbox_pool

MIGRATIONS = Path(__file__).resolve().parents[2] / "services/policy/migrations"
SEALER = Sealer(parse_keys(generate_key_spec("k1")))
GOOGLE = {"client_id": "g", "client_secret": "gs"}
REFUSE_OUTBOX_WRITES = """
CREATE FUNCTION policy.refuse_outbox_writes() RETURNS trigger LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'the outbox refuses this write'; END $$;
CREATE TRIGGER refuse_writes BEFORE INSERT ON policy.outbox
    FOR EACH ROW EXECUTE FUNCTION policy.refuse_outbox_writes();
"""


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    """A migrated database of its own: the relay sees only this test's rows."""
    async with outbox_pool(fresh_database, SCHEMA, MIGRATIONS) as created:
        yield created


@pytest.fixture
async def broker(nats_url: str, js: JetStreamContext) -> AsyncIterator[NatsBroker]:
    await ensure_streams(js, (POLICY_EVT,))
    connected = NatsBroker(nats_url)
    await connected.connect()
    yield connected
    await connected.stop()


async def test_an_org_change_is_stored_with_its_event_and_the_relay_publishes_it_once(
    pool: asyncpg.Pool, broker: NatsBroker, js: JetStreamContext
) -> None:
    relay = OutboxRelay(pool, broker, schema=SCHEMA, registry=CollectorRegistry())
    org_id = new_id("org")
    assert (await put_org(pool, org_id, on_outbox_write=relay.notify)).error is None
    [row] = await pool.fetch("SELECT id, subject, published_at FROM policy.outbox")
    assert (row["subject"], row["published_at"]) == (OrgChanged(org_id=org_id).nats_subject(), None)

    await relay.start(js)
    try:
        published = await _published(js, row["subject"])
    finally:
        await relay.stop()
    await pool.execute("UPDATE policy.outbox SET published_at = NULL")  # a crash before the mark…
    assert await relay.publish_pending() == 1  # …publishes again, and JetStream keeps one copy

    assert OrgChanged.model_validate_json(published.data or b"").org_id == org_id
    assert (published.headers or {})["Nats-Msg-Id"] == f"outbox-policy-{row['id']}"
    assert await _copies(js, row["subject"]) == 1


async def put_org(
    pool: asyncpg.Pool, org_id: str, on_outbox_write: Callable[[], None] = lambda: None
) -> PolicyDocumentReply:
    request = PutOrgConfig(org_id=org_id, body={"google": GOOGLE})
    apps = PostgresOrgApps(pool, on_outbox_write=on_outbox_write)
    return await handlers.put_org_config(request, apps=apps, sealer=SEALER)


async def put_client_org(pool: asyncpg.Pool, org_id: str) -> PolicyDocumentReply:
    request = PutClientOrg(org_id=org_id, client_org_id="emea", body={"name": "EMEA"})
    return await handlers.put_client_org(request, client_orgs=PostgresClientOrgs(pool))


async def has_org_apps(pool: asyncpg.Pool, org_id: str) -> bool:
    return bool(await PostgresOrgApps(pool).of_org(org_id))


async def has_client_org(pool: asyncpg.Pool, org_id: str) -> bool:
    return await PostgresClientOrgs(pool).get(org_id, "emea") is not None


@pytest.mark.parametrize(
    ("change", "stored"),
    [(put_org, has_org_apps), (put_client_org, has_client_org)],
    ids=["org apps", "client org"],
)
async def test_a_change_whose_event_cannot_be_written_is_not_stored_either(
    pool: asyncpg.Pool,
    change: Callable[[asyncpg.Pool, str], Awaitable[PolicyDocumentReply]],
    stored: Callable[[asyncpg.Pool, str], Awaitable[bool]],
) -> None:
    await pool.execute(REFUSE_OUTBOX_WRITES)
    org_id = new_id("org")
    with pytest.raises(asyncpg.RaiseError, match="refuses"):
        await change(pool, org_id)
    assert not await stored(pool, org_id)


async def _published(js: JetStreamContext, subject: str, timeout: float = 10.0) -> RawStreamMsg:
    """The last message of ``subject`` in POLICY_EVT, once there is one."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                return await js.get_last_msg(POLICY_EVT.name, subject)
            except NotFoundError:
                await asyncio.sleep(0.05)


async def _copies(js: JetStreamContext, subject: str) -> int:
    info = await js.stream_info(POLICY_EVT.name, subjects_filter=subject)
    return (info.state.subjects or {}).get(subject, 0)
