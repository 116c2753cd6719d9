"""Migrations and stream definitions against the real PostgreSQL and nats-server."""

from __future__ import annotations

import contextlib
from pathlib import Path

import asyncpg
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy

from mailbridge.shared import postgres
from mailbridge.shared.ids import new_id
from mailbridge.shared.streams import ALL_STREAMS, MAIL_CMD, ensure_streams

ROOT = Path(__file__).resolve().parents[2]
SERVICE_MIGRATIONS = {
    "config-api": ROOT / "services/config-api/migrations",
    "oauth-broker": ROOT / "services/oauth-broker/migrations",
    "policy": ROOT / "services/policy/migrations",
}


async def test_migrations_apply_in_order_once_and_are_recorded(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    schema = new_id("mig")
    (tmp_path / "001_first.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    (tmp_path / "002_second.sql").write_text("ALTER TABLE things ADD COLUMN name text;")
    async with pool.acquire() as connection:
        first = await postgres.migrate(connection, schema, tmp_path)
        again = await postgres.migrate(connection, schema, tmp_path)
        recorded = await connection.fetch(
            f'SELECT version, name FROM "{schema}".schema_migrations ORDER BY version'
        )
        await connection.execute(f'INSERT INTO "{schema}".things (id, name) VALUES (1, $1)', "x")

    assert (first, again) == ([1, 2], [])
    assert [tuple(r) for r in recorded] == [(1, "001_first.sql"), (2, "002_second.sql")]


async def test_a_failing_migration_leaves_nothing_half_applied(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    schema = new_id("mig")
    (tmp_path / "001_broken.sql").write_text("CREATE TABLE ok (id int); SELECT no_such_function();")
    async with pool.acquire() as connection:
        with contextlib.suppress(asyncpg.PostgresError):
            await postgres.migrate(connection, schema, tmp_path)
        tables = await connection.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
        )
    assert [t["table_name"] for t in tables] == ["schema_migrations"]


async def test_every_service_schema_migrates_on_a_fresh_database(pool: asyncpg.Pool) -> None:
    for service, directory in SERVICE_MIGRATIONS.items():
        schema = new_id(service.replace("-", "_"))
        async with pool.acquire() as connection:
            applied = await postgres.migrate(connection, schema, directory)
        assert applied and applied == sorted(applied), service


async def test_streams_are_created_idempotently_with_their_retention(js: JetStreamContext) -> None:
    await ensure_streams(js, ALL_STREAMS)
    await ensure_streams(js, ALL_STREAMS)  # a second replica starting: no error, same streams

    info = await js.stream_info(MAIL_CMD.name)
    assert info.config.retention == RetentionPolicy.WORK_QUEUE
    assert info.config.subjects == ["cmd.mail.>"]
