"""PostgreSQL stores of approval before sending: an agent's contacts, and the sends held.

Neither writes events: a contact is learnt from events (sent, received), and a hold's facts are
published by the mail-worker (held) and config-api (approved, rejected).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from mailbridge.policy.ports import StoredHold
from mailbridge.shared.messages import ApprovalMode

HOLDS_KEPT_DAYS = 14  # a hold outlives any approval expiry; older ones are forgotten


class PostgresContacts:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def known(self, agent_id: str, keys: Sequence[str]) -> set[str]:
        rows = await self._pool.fetch(
            "SELECT address FROM policy.contacts WHERE agent_id = $1 AND address = ANY($2)",
            agent_id,
            list(keys),
        )
        return {row["address"] for row in rows}

    async def record(self, agent_id: str, keys: Sequence[str]) -> None:
        await self._pool.execute(
            "INSERT INTO policy.contacts (agent_id, address) SELECT $1, unnest($2::text[])"
            " ON CONFLICT DO NOTHING",
            agent_id,
            list(keys),
        )


class PostgresSendHolds:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def hold(self, held: StoredHold) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO policy.send_holds (agent_id, command_id, recipients, reason)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                held.agent_id,
                held.command_id,
                list(held.recipients),
                held.reason.value,
            )
            await connection.execute(
                "DELETE FROM policy.send_holds WHERE agent_id = $1"
                " AND held_at < now() - make_interval(days => $2)",
                held.agent_id,
                HOLDS_KEPT_DAYS,
            )

    async def find(self, agent_id: str, command_id: str) -> StoredHold | None:
        row = await self._pool.fetchrow(
            "SELECT recipients, reason, approved_at IS NOT NULL AS approved"
            " FROM policy.send_holds WHERE agent_id = $1 AND command_id = $2",
            agent_id,
            command_id,
        )
        if row is None:
            return None
        return StoredHold(
            agent_id, command_id, tuple(row["recipients"]), ApprovalMode(row["reason"]),
            approved=row["approved"],
        )  # fmt: skip

    async def approve(self, agent_id: str, command_id: str) -> None:
        await self._pool.execute(
            "UPDATE policy.send_holds SET approved_at = coalesce(approved_at, now())"
            " WHERE agent_id = $1 AND command_id = $2",
            agent_id,
            command_id,
        )
