"""PostgresAuditLog: the agents' audit trail in ``config_api.audit_log``, and its retention purge.

``write_audit`` appends entries inside a caller's transaction (a saved config's, a send's), so an
entry is stored if and only if its change is; an entry whose ``source_id`` is stored already, or
whose agent is unknown, is skipped. The table refuses updates (migration 009); the purge alone
deletes, rows past the retention, in batches.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from mailbridge.config_api.domain.audit import (
    AuditEntry,
    AuditEntryView,
    AuditPage,
    AuditQuery,
)
from mailbridge.shared.background import BackgroundLoop
from mailbridge.shared.clock import Clock
from mailbridge.shared.postgres import Connection

log = logging.getLogger(__name__)

PURGE_BATCH = 5000
PURGE_EVERY_SECONDS = 3600.0

_INSERT = (
    "INSERT INTO config_api.audit_log"
    " (source_id, agent_id, org_id, kind, occurred_at, actor, summary, details)"
    " SELECT $1, a.agent_id, a.org_id, $3, $4, $5, $6, $7::jsonb"
    " FROM config_api.agents a WHERE a.agent_id = $2"
    " ON CONFLICT (source_id) DO NOTHING RETURNING id"
)

_PAGE = (
    "SELECT id, kind, occurred_at, actor, summary, details FROM config_api.audit_log"
    " WHERE agent_id = $1 AND ($2::text IS NULL OR org_id = $2)"
    " AND (cardinality($3::text[]) = 0 OR kind = ANY($3::text[]))"
    " AND ($4::timestamptz IS NULL OR occurred_at >= $4)"
    " AND ($5::timestamptz IS NULL OR occurred_at < $5)"
    " AND ($6::timestamptz IS NULL OR (occurred_at, id) < ($6, $7::bigint))"
    " ORDER BY occurred_at DESC, id DESC LIMIT $8"
)

_PURGE = (
    "DELETE FROM config_api.audit_log WHERE id IN (SELECT id FROM config_api.audit_log"
    " WHERE occurred_at < $1 ORDER BY occurred_at LIMIT $2)"
)


def _row(entry: AuditEntry) -> tuple[object, ...]:
    return (
        entry.source_id,
        entry.agent_id,
        entry.kind.value,
        entry.occurred_at,
        entry.actor,
        entry.summary,
        json.dumps(entry.details),
    )


async def write_audit(connection: Connection, entries: Sequence[AuditEntry]) -> None:
    """Append, in the caller's transaction; what is there already stays as it was."""
    await connection.executemany(_INSERT, [_row(entry) for entry in entries])


class PostgresAuditLog:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, entry: AuditEntry) -> bool:
        inserted = await self._pool.fetchval(_INSERT, *_row(entry))
        return inserted is not None

    async def page(self, query: AuditQuery) -> AuditPage:
        after = query.after
        rows = await self._pool.fetch(
            _PAGE,
            query.agent_id,
            query.org_id,
            sorted(kind.value for kind in query.kinds),
            query.since,
            query.until,
            after.occurred_at if after else None,
            after.entry_id if after else None,
            query.limit + 1,
        )
        return AuditPage.of(query.agent_id, [_view(row) for row in rows], query.limit)

    async def purge(self, before: datetime) -> int:
        """Delete every entry that occurred before ``before``, a batch per transaction."""
        purged = 0
        while True:
            async with self._pool.acquire() as connection, connection.transaction():
                # the one deletion the append-only trigger lets through, for this transaction
                await connection.execute("SELECT set_config('mailbridge.audit_purge', 'on', true)")
                status = await connection.execute(_PURGE, before, PURGE_BATCH)
            deleted = int(status.split()[-1])
            purged += deleted
            if deleted < PURGE_BATCH:
                return purged


def _view(row: asyncpg.Record) -> AuditEntryView:
    return AuditEntryView(
        entry_id=str(row["id"]),
        kind=row["kind"],
        occurred_at=row["occurred_at"],
        actor=row["actor"],
        summary=row["summary"],
        details=json.loads(row["details"]),
    )


class AuditPurge(BackgroundLoop):
    """Every replica purges hourly (a purge finding nothing is one indexed query): entries
    older than the retention go, whichever replica gets there first."""

    name = "audit-purge"

    def __init__(
        self,
        audit: PostgresAuditLog,
        clock: Clock,
        retention: timedelta,
        every: float = PURGE_EVERY_SECONDS,
    ) -> None:
        self._audit, self._clock, self._retention, self._every = audit, clock, retention, every

    async def run(self) -> None:
        while True:
            try:
                await self.purge_expired()
            except Exception:  # the database is down: the next round tries again
                log.warning("audit purge failed", exc_info=True)
            await asyncio.sleep(self._every)

    async def purge_expired(self) -> int:
        purged = await self._audit.purge(self._clock.now() - self._retention)
        if purged:
            log.info("purged %d audit entries older than %s", purged, self._retention)
        return purged
