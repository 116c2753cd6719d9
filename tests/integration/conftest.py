"""Connections to the real NATS server and PostgreSQL for integration tests."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from mailbridge.shared import postgres
from mailbridge.shared.ids import new_id


@pytest.fixture
async def pool(postgres_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=4)
    assert created is not None
    yield created
    await created.close()


@pytest.fixture
async def fresh_database(postgres_dsn: str) -> AsyncIterator[str]:
    """A database of its own, for tests whose relay must not see other tests' outbox rows."""
    name = new_id("db")
    admin = await asyncpg.connect(postgres_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_dsn.rsplit("/", 1)[0] + "/" + name
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


@asynccontextmanager
async def outbox_pool(dsn: str, schema: str, migrations: Path) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a migrated database of its own, its outbox ids starting at random: JetStream
    dedupes ``Nats-Msg-Id: outbox-{schema}-{id}`` across the shared server, so two tests' row 1
    must not meet within the duplicate window."""
    created = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    assert created is not None
    async with created.acquire() as connection:
        await postgres.migrate(connection, schema, migrations)
        await connection.execute(
            f"SELECT setval('{schema}.outbox_id_seq', $1)", random.randrange(1, 2**48)
        )
    try:
        yield created
    finally:
        await created.close()
