"""The audit trail on the real schema: entries stored with their change or not at all, appended
only (the table refuses an update, and a delete outside the purge), and purged past retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from mailbridge.config_api.adapters.audit import AuditPurge, PostgresAuditLog
from mailbridge.config_api.adapters.postgres import MIGRATIONS, SCHEMA, PostgresConfigRepository
from mailbridge.config_api.domain.audit import AuditKind, AuditQuery
from mailbridge.config_api.domain.email_config import AgentIn, StatusRecord
from mailbridge.shared import postgres
from mailbridge.shared.errors import MailbridgeError
from mailbridge.shared.ids import new_id
from tests.fakes.clock import FixedClock
from tests.ports.audit_log import at
from tests.ports.config_repository import config_of

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
async def migrated(pool: asyncpg.Pool) -> asyncpg.Pool:
    async with pool.acquire() as connection:
        await postgres.migrate(connection, SCHEMA, MIGRATIONS)
    return pool


async def an_agent(pool: asyncpg.Pool) -> str:
    agent_id = new_id("agent")
    await PostgresConfigRepository(pool).upsert_agent(agent_id, AgentIn(org_id="org-a"), [])
    return agent_id


async def kinds(pool: asyncpg.Pool, agent_id: str) -> list[str]:
    page = await PostgresAuditLog(pool).page(AuditQuery(agent_id))
    return [entry.kind.value for entry in page.entries]


async def test_a_save_refused_for_its_version_stores_no_entry(migrated: asyncpg.Pool) -> None:
    repo, agent_id = PostgresConfigRepository(migrated), await an_agent(migrated)
    saved = at(agent_id, 1, AuditKind.CONFIG_SAVED)
    await repo.save(config_of(agent_id), StatusRecord(), [], None, [saved])
    with pytest.raises(MailbridgeError):
        await repo.save(config_of(agent_id), StatusRecord(), [], 7, [at(agent_id, 2)])
    assert await kinds(migrated, agent_id) == ["config.saved"]


async def test_the_table_refuses_updates_and_deletes_outside_the_purge(
    migrated: asyncpg.Pool,
) -> None:
    agent_id = await an_agent(migrated)
    await PostgresAuditLog(migrated).record(at(agent_id, 1))
    for statement in (
        "UPDATE config_api.audit_log SET summary = 'rewritten' WHERE agent_id = $1",
        "DELETE FROM config_api.audit_log WHERE agent_id = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await migrated.execute(statement, agent_id)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await migrated.execute("TRUNCATE config_api.audit_log")
    assert await kinds(migrated, agent_id) == ["send.sent"]


async def test_the_purge_deletes_what_is_past_retention_and_nothing_newer(
    migrated: asyncpg.Pool,
) -> None:
    trail, agent_id = PostgresAuditLog(migrated), await an_agent(migrated)
    old = [at(agent_id, s).model_copy(update={"occurred_at": NOW - timedelta(days=91, seconds=s)})
           for s in range(3)]  # fmt: skip
    kept = at(agent_id, 1).model_copy(update={"occurred_at": NOW - timedelta(days=89)})
    for entry in [*old, kept]:
        await trail.record(entry)
    purge = AuditPurge(trail, FixedClock(NOW), timedelta(days=90))
    assert await purge.purge_expired() >= 3  # other tests' old entries may go too
    page = await trail.page(AuditQuery(agent_id))
    assert [e.occurred_at for e in page.entries] == [kept.occurred_at]
    assert await purge.purge_expired() == 0
