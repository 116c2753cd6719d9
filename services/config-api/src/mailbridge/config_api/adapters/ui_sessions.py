"""PostgresUiSessionStore: the Email tab's sessions in ``config_api.ui_sessions``.

The exchange is one statement, so it is atomic: of two exchanges of one link, the
``NOT exchanged`` condition lets exactly one update the row.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime

import asyncpg

from mailbridge.config_api.domain.ui_sessions import KEPT_AFTER_END, UiSession

_FIELDS = tuple(field.name for field in fields(UiSession))  # a row holds its hashes too


class PostgresUiSessionStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, session: UiSession, link_hash: str) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "DELETE FROM config_api.ui_sessions WHERE expires_at < $1",
                session.created_at - KEPT_AFTER_END,
            )
            await connection.execute(
                "INSERT INTO config_api.ui_sessions"
                " (session_id, link_hash, agent_id, org_id, expires_at, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                session.session_id,
                link_hash,
                session.agent_id,
                session.org_id,
                session.expires_at,
                session.created_at,
            )

    async def exchange(self, link_hash: str, secret_hash: str, now: datetime) -> UiSession | None:
        return _session_of(
            await self._pool.fetchrow(
                "UPDATE config_api.ui_sessions SET exchanged = true, secret_hash = $2"
                " WHERE link_hash = $1 AND NOT exchanged AND expires_at > $3 RETURNING *",
                link_hash,
                secret_hash,
                now,
            )
        )

    async def find(self, secret_hash: str) -> UiSession | None:
        return _session_of(
            await self._pool.fetchrow(
                "SELECT * FROM config_api.ui_sessions WHERE secret_hash = $1",
                secret_hash,
            )
        )

    async def renew(self, session_id: str, expires_at: datetime, now: datetime) -> UiSession | None:
        return _session_of(
            await self._pool.fetchrow(
                "UPDATE config_api.ui_sessions SET expires_at = $2"
                " WHERE session_id = $1 AND exchanged AND expires_at > $3 RETURNING *",
                session_id,
                expires_at,
                now,
            )
        )

    async def end(self, session_id: str) -> None:
        await self._pool.execute(
            "DELETE FROM config_api.ui_sessions WHERE session_id = $1", session_id
        )


def _session_of(row: asyncpg.Record | None) -> UiSession | None:
    return UiSession(**{name: row[name] for name in _FIELDS}) if row is not None else None
