"""Connections to the real NATS server and PostgreSQL for integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

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
