"""A database of a test's own on the session's PostgreSQL server, for stacks that must not share."""

from __future__ import annotations

import asyncpg


async def admin(dsn: str, statement: str) -> None:
    """One statement on its own connection (CREATE/DROP DATABASE cannot run in a pool's)."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
