"""A NATS server and a database of a test's own, for stacks that must not share the session's."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import asyncpg

from mailbridge.shared.ids import new_id
from tests.conftest import a_nats_server


async def admin(dsn: str, statement: str) -> None:
    """One statement on its own connection (CREATE/DROP DATABASE cannot run in a pool's)."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def own_infrastructure(postgres_dsn: str, directory: Path, name: str) -> Iterator[tuple[str, str]]:
    """``(nats_url, database_url)``: a NATS server of its own (by the session's rule: the one
    ``MAILBRIDGE_TEST_NATS_URL`` names, else an embedded one under ``directory``) and a new
    database on the session's PostgreSQL server, both gone afterwards."""
    with ExitStack() as teardown:
        nats_url = a_nats_server(directory, teardown.callback)
        database = new_id(name).lower()
        asyncio.run(admin(postgres_dsn, f'CREATE DATABASE "{database}"'))
        teardown.callback(
            asyncio.run, admin(postgres_dsn, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        )
        yield nats_url, postgres_dsn.rsplit("/", 1)[0] + "/" + database
