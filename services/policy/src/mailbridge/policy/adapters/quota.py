"""PostgresSendQuota: sliding-window send limits, exact under any number of concurrent callers.

Each authorized send is a row of ``send_reservations``. Counting and recording happen in one
transaction that first takes a transaction-scoped advisory lock on the agent, so two reservations
for one agent are serialized (no lost update) while different agents never wait on each other.
"""

from __future__ import annotations

import asyncpg

from mailbridge.policy.domain.restrictions import WindowCounts
from mailbridge.policy.ports import QuotaDecision, Reservation
from mailbridge.shared.ids import new_id

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('policy.quota:' || $1, 0))"
_EXISTING = """
SELECT reservation_id FROM policy.send_reservations
WHERE agent_id = $1 AND command_id = $2 AND released_at IS NULL
"""
_COUNTS = """
SELECT count(*) FILTER (WHERE reserved_at > now() - interval '1 hour') AS hour,
       count(*) AS day
FROM policy.send_reservations
WHERE agent_id = $1 AND released_at IS NULL AND reserved_at > now() - interval '24 hours'
"""
_RECORD = """
INSERT INTO policy.send_reservations (reservation_id, agent_id, command_id) VALUES ($1, $2, $3)
ON CONFLICT (agent_id, command_id) DO UPDATE SET
    reservation_id = EXCLUDED.reservation_id, reserved_at = now(), released_at = NULL
"""
_FORGET_OLD = """
DELETE FROM policy.send_reservations WHERE agent_id = $1 AND reserved_at < now() - interval '2 days'
"""
_RELEASE = """
UPDATE policy.send_reservations SET released_at = now()
WHERE agent_id = $1 AND command_id = $2 AND released_at IS NULL
"""


class PostgresSendQuota:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def reserve(self, agent_id: str, command_id: str, decide: QuotaDecision) -> Reservation:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(_LOCK, agent_id)
            existing = await connection.fetchval(_EXISTING, agent_id, command_id)
            if existing is not None:  # a redelivered command: it already holds its reservation
                return Reservation(existing)
            hour, day = await connection.fetchrow(_COUNTS, agent_id) or (0, 0)
            refusal = decide(WindowCounts(hour=hour, day=day))
            if refusal is not None:
                return Reservation(None, refusal)
            reservation_id = new_id("rsv")
            await connection.execute(_RECORD, reservation_id, agent_id, command_id)
            await connection.execute(_FORGET_OLD, agent_id)
            return Reservation(reservation_id)

    async def release(self, agent_id: str, command_id: str) -> bool:
        status = await self._pool.execute(_RELEASE, agent_id, command_id)
        return not status.endswith(" 0")
