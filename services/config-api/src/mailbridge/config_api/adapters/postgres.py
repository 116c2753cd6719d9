"""PostgresConfigRepository: config-api's tables, with every write's events in the outbox.

All statements are schema-qualified (``config_api.*``); the pool is the service's own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg

from mailbridge.config_api.adapters.audit import write_audit
from mailbridge.config_api.domain import versions
from mailbridge.config_api.domain.audit import AuditEntry
from mailbridge.config_api.domain.email_config import AgentIn, StatusRecord, StoredConfig
from mailbridge.config_api.domain.poll_backoff import PollState
from mailbridge.config_api.ports import StatusDecision
from mailbridge.shared.crypto import Sealer, SealingError
from mailbridge.shared.messages import ApprovalMode, EmailConfigSaved, Event, LastError, Provider
from mailbridge.shared.outbox import write_outbox
from mailbridge.shared.postgres import Connection

SCHEMA = "config_api"
MIGRATIONS = Path(__file__).resolve().parents[4] / "migrations"  # services/config-api/migrations


class PostgresConfigRepository:
    def __init__(
        self, pool: asyncpg.Pool, on_outbox_write: Callable[[], None] = lambda: None
    ) -> None:
        self._pool = pool
        self._on_outbox_write = on_outbox_write

    async def upsert_agent(self, agent_id: str, agent: AgentIn, events: list[Event]) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO config_api.agents (agent_id, org_id, client_org_id, name, approval)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (agent_id) DO UPDATE SET"
                " org_id = $2, client_org_id = $3, name = $4, approval = $5, updated_at = now()",
                agent_id,
                agent.org_id,
                agent.client_org_id,
                agent.name,
                agent.approval.value if agent.approval else None,
            )
            await write_outbox(connection, SCHEMA, events)
        self._on_outbox_write()

    async def agent_org(self, agent_id: str) -> str | None:
        org: str | None = await self._pool.fetchval(
            "SELECT org_id FROM config_api.agents WHERE agent_id = $1", agent_id
        )
        return org

    async def load(self, agent_id: str) -> tuple[StoredConfig | None, StatusRecord]:
        _, config, status = await self.load_owned(agent_id)
        return config, status

    async def load_owned(
        self, agent_id: str
    ) -> tuple[AgentIn | None, StoredConfig | None, StatusRecord]:
        row = await self._pool.fetchrow(_LOAD, agent_id)
        if row is None:
            return None, None, StatusRecord()
        approval = ApprovalMode(row["approval"]) if row["approval"] else None
        agent = AgentIn.model_construct(
            org_id=row["org_id"],
            client_org_id=row["client_org_id"],
            name=row["name"],
            approval=approval,
        )  # as stored: validated when it was registered
        return agent, _config_of(agent_id, row), _status_of(row)

    async def save(
        self,
        config: StoredConfig,
        status: StatusRecord,
        events: list[Event],
        expected_version: int | None = None,
        audit: Sequence[AuditEntry] = (),
    ) -> StoredConfig:
        async with self._pool.acquire() as connection, connection.transaction():
            current = await _locked_version(connection, config.agent_id)
            versions.check(expected_version, current)
            config = config.model_copy(update={"version": current + 1})
            events = [_with_version(event, config.version) for event in events]
            await connection.execute(
                "INSERT INTO config_api.email_configs"
                " (agent_id, provider, email, settings, sealed_secret, version)"
                " VALUES ($1, $2, $3, $4::jsonb, $5, $6) ON CONFLICT (agent_id) DO UPDATE SET"
                " provider = $2, email = $3, settings = $4::jsonb, sealed_secret = $5,"
                " version = $6, updated_at = now()",
                config.agent_id,
                config.provider.value,
                config.email,
                json.dumps(config.settings),
                config.sealed_secret,
                config.version,
            )
            await _write_status(connection, config.agent_id, status)
            await write_outbox(connection, SCHEMA, events)
            await write_audit(connection, audit)
        self._on_outbox_write()
        return config

    async def delete(
        self,
        agent_id: str,
        status: StatusRecord,
        events: list[Event],
        expected_version: int | None = None,
        audit: Sequence[AuditEntry] = (),
    ) -> bool:
        async with self._pool.acquire() as connection, connection.transaction():
            versions.check(expected_version, await _locked_version(connection, agent_id))
            deleted = await connection.fetchval(
                "DELETE FROM config_api.email_configs WHERE agent_id = $1 RETURNING 1", agent_id
            )
            await connection.execute(
                "DELETE FROM config_api.mailbox_status WHERE agent_id = $1", agent_id
            )
            await write_outbox(connection, SCHEMA, events)
            await write_audit(connection, audit)
        self._on_outbox_write()
        return deleted is not None

    async def update_status(self, agent_id: str, decide: StatusDecision) -> None:
        """Apply ``decide`` to the current config and status with the agent row locked, so two
        deliveries of one event (or two events at once) never both act on a stale status."""
        async with self._pool.acquire() as connection, connection.transaction():
            await _locked_version(connection, agent_id)
            outcome = decide(*await _load(connection, agent_id))
            if outcome is None:
                return
            status, events = outcome
            await _write_status(connection, agent_id, status)
            await write_outbox(connection, SCHEMA, events)
        self._on_outbox_write()

    async def fill_email(self, agent_id: str, provider: Provider, email: str) -> bool:
        filled = await self._pool.fetchval(
            "UPDATE config_api.email_configs SET email = $3, updated_at = now()"
            " WHERE agent_id = $1 AND provider = $2 AND email IS NULL RETURNING 1",
            agent_id,
            provider.value,
            email,
        )
        return filled is not None


_LOAD = (
    "SELECT a.org_id, a.client_org_id, a.name, a.approval,"
    " c.provider, c.email, c.settings, c.sealed_secret, c.version,"
    " s.status, s.last_error, s.last_test, s.poll_state"
    " FROM config_api.agents a"
    " LEFT JOIN config_api.email_configs c USING (agent_id)"
    " LEFT JOIN config_api.mailbox_status s USING (agent_id)"
    " WHERE a.agent_id = $1"
)


async def _load(connection: Connection, agent_id: str) -> tuple[StoredConfig | None, StatusRecord]:
    row = await connection.fetchrow(_LOAD, agent_id)
    if row is None:
        return None, StatusRecord()
    return _config_of(agent_id, row), _status_of(row)


async def _locked_version(connection: Connection, agent_id: str) -> int:
    """The stored version (0: none), with the agent row locked so writers take turns."""
    await connection.execute(
        "SELECT 1 FROM config_api.agents WHERE agent_id = $1 FOR UPDATE", agent_id
    )
    version: int | None = await connection.fetchval(
        "SELECT version FROM config_api.email_configs WHERE agent_id = $1", agent_id
    )
    return version or 0


def _with_version(event: Event, version: int) -> Event:
    if isinstance(event, EmailConfigSaved):
        return event.model_copy(update={"version": version})
    return event


async def _write_status(connection: Connection, agent_id: str, status: StatusRecord) -> None:
    last_error = status.last_error.model_dump_json() if status.last_error else None
    await connection.execute(
        "INSERT INTO config_api.mailbox_status"
        " (agent_id, status, last_error, last_test, poll_state)"
        " VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb) ON CONFLICT (agent_id) DO UPDATE SET"
        " status = $2, last_error = $3::jsonb, last_test = $4::jsonb, poll_state = $5::jsonb,"
        " updated_at = now()",
        agent_id,
        status.status.value,
        last_error,
        json.dumps(status.last_test) if status.last_test is not None else None,
        status.poll.model_dump_json(exclude_none=True),  # no backoff: no key (the scheduler's SQL)
    )


def _config_of(agent_id: str, row: asyncpg.Record) -> StoredConfig | None:
    if row["provider"] is None:
        return None
    return StoredConfig(
        agent_id=agent_id,
        provider=row["provider"],
        email=row["email"],
        settings=json.loads(row["settings"]),
        sealed_secret=row["sealed_secret"],
        version=row["version"],
    )


def _status_of(row: asyncpg.Record) -> StatusRecord:
    if row["status"] is None:
        return StatusRecord()
    return StatusRecord(
        status=row["status"],
        last_error=LastError.model_validate_json(row["last_error"]) if row["last_error"] else None,
        last_test=_json_or_none(row["last_test"]),
        poll=PollState.model_validate_json(row["poll_state"]),
    )


def _json_or_none(value: str | None) -> Any:
    return json.loads(value) if value is not None else None


_RESEAL = (
    "SELECT agent_id, sealed_secret FROM config_api.email_configs"
    " WHERE sealed_secret IS NOT NULL AND split_part(sealed_secret, '.', 1) <> $1"
    " ORDER BY agent_id LIMIT $2 FOR UPDATE"
)
_RESEAL_WAITING, _RESEAL_SKIPPING = _RESEAL, _RESEAL + " SKIP LOCKED"


async def reseal_batch(
    pool: asyncpg.Pool, sealer: Sealer, *, wait_for_locked: bool = False, limit: int = 100
) -> int:
    """Re-seal up to ``limit`` secrets not sealed under the newest key; commits per batch, so a
    rotation killed midway resumes where it stopped. Rows locked by a save in progress are skipped
    unless ``wait_for_locked``: a rotation ends with a waiting pass, so none is left behind."""
    async with pool.acquire() as connection, connection.transaction():
        rows = await connection.fetch(
            _RESEAL_WAITING if wait_for_locked else _RESEAL_SKIPPING,
            sealer.current_key_id,
            limit,
        )
        await connection.executemany(
            "UPDATE config_api.email_configs SET sealed_secret = $2 WHERE agent_id = $1",
            [(r["agent_id"], _resealed(sealer, r["sealed_secret"], r["agent_id"])) for r in rows],
        )
    return len(rows)


def _resealed(sealer: Sealer, sealed: str, agent_id: str) -> str:
    try:
        return sealer.seal(sealer.open(sealed, agent_id), agent_id)
    except SealingError as exc:
        raise SealingError(
            f"the secret of agent {agent_id!r} opens with none of the configured keys"
        ) from exc
