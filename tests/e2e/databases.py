"""A NATS server and a database of a test's own, for stacks that must not share the session's."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from mailbridge.devstack.nats import EmbeddedNats
from mailbridge.shared.ids import new_id


async def admin(dsn: str, statement: str) -> None:
    """One statement on its own connection (CREATE/DROP DATABASE cannot run in a pool's)."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def own_infrastructure(postgres_dsn: str, directory: Path, name: str) -> Iterator[tuple[str, str]]:
    """``(nats_url, database_url)``: a nats-server under ``directory`` and a new database on the
    session's PostgreSQL server, both gone afterwards."""
    nats_server = EmbeddedNats(directory)
    nats_url = nats_server.start()
    database = new_id(name).lower()
    try:
        asyncio.run(admin(postgres_dsn, f'CREATE DATABASE "{database}"'))
        yield nats_url, postgres_dsn.rsplit("/", 1)[0] + "/" + database
    finally:
        nats_server.stop()
        asyncio.run(admin(postgres_dsn, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
