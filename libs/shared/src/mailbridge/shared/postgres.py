"""PostgreSQL for the services that own tables: a pool, and ordered plain-SQL migrations.

Each service has its own schema and its own ``migrations/NNN_name.sql`` files; applied versions are
recorded in ``{schema}.schema_migrations``. An advisory lock keeps replicas from racing.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Connection = asyncpg.Connection | PoolConnectionProxy
"""A connection, whether acquired from a pool or opened directly."""

DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    ConnectionError,  # refused or reset while the pool (re)connects: asyncpg raises the OS's own
    asyncpg.PostgresConnectionError,  # a connection lost mid-query, or one that could not be made
    asyncpg.CannotConnectNowError,  # the server is starting up or shutting down
    asyncpg.AdminShutdownError,  # the server was told to stop: every open connection ends so
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)
"""What asyncpg raises while PostgreSQL is away: the request may succeed once it is back (the pool
connects again by itself on its next acquire), so it is an outage to report, not a bug."""

READINESS_TIMEOUT_SECONDS = 2.0  # a server that accepts but does not answer is not ready either

log = logging.getLogger(__name__)

_MIGRATION = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def migration_files(directory: Path) -> list[tuple[int, Path]]:
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _MIGRATION.match(p.name))]
    return sorted(found)


async def migrate(connection: Connection, schema: str, directory: Path) -> list[int]:
    """Apply every migration newer than the recorded ones, each in its own transaction."""
    if not _SCHEMA.match(schema):  # schema names are code constants; refuse anything else
        raise ValueError(f"not a schema name: {schema!r}")
    await connection.execute("SELECT pg_advisory_lock(hashtext($1))", schema)
    try:
        await _ensure_ledger(connection, schema)
        applied = {r["version"] for r in await connection.fetch(_applied_sql(schema))}
        pending = [(v, p) for v, p in migration_files(directory) if v not in applied]
        for version, path in pending:
            await _apply(connection, schema, version, path)
        return [v for v, _ in pending]
    finally:
        await connection.execute("SELECT pg_advisory_unlock(hashtext($1))", schema)


async def _ensure_ledger(connection: Connection, schema: str) -> None:
    await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    await connection.execute(
        f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )


def _applied_sql(schema: str) -> str:
    return f'SELECT version FROM "{schema}".schema_migrations'  # noqa: S608 (checked name)


async def _apply(connection: Connection, schema: str, version: int, path: Path) -> None:
    async with connection.transaction():
        await connection.execute(f'SET LOCAL search_path TO "{schema}"')
        await connection.execute(path.read_text())  # noqa: ASYNC240 (start-up, small file)
        await connection.execute(
            f'INSERT INTO "{schema}".schema_migrations (version, name) VALUES ($1, $2)',  # noqa: S608
            version,
            path.name,
        )
    log.info("applied migration %s to schema %s", path.name, schema)


async def create_pool(dsn: str, *, min_size: int, max_size: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, reset=_no_session_state_to_reset
    )
    if pool is None:  # asyncpg's typing allows None; a pool is always returned when awaited
        raise RuntimeError("could not create the database pool")
    return pool


async def _no_session_state_to_reset(connection: asyncpg.Connection) -> None:
    """asyncpg's default reset costs a round trip per release (unlock, CLOSE ALL, UNLISTEN,
    RESET ALL). The services keep no session state: settings are ``SET LOCAL``, advisory locks are
    released where they are taken, nothing LISTENs."""


async def open_database(
    dsn: str, *, schema: str, migrations: Path, min_size: int, max_size: int
) -> asyncpg.Pool:
    """A pool for a service that owns ``schema``, migrated to the newest version."""
    pool = await create_pool(dsn, min_size=min_size, max_size=max_size)
    async with pool.acquire() as connection:
        await migrate(connection, schema, migrations)
    return pool


async def database_ready(pool: asyncpg.Pool) -> dict[str, bool]:
    try:
        answer = await asyncio.wait_for(pool.fetchval("SELECT 1"), READINESS_TIMEOUT_SECONDS)
    except (OSError, TimeoutError, asyncpg.PostgresError):  # every one of DATABASE_UNAVAILABLE
        return {"database": False}
    return {"database": bool(answer)}
