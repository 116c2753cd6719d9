"""oauth-broker's tables: flows, and grants (their tokens sealed, agent id as associated data).

A refresh runs inside ``GrantStore.locked``: the grant's row is locked (``FOR UPDATE``) and read
again, so any number of broker replicas refresh one grant one at a time, and what one stored (a
rotated Microsoft refresh token) is what the next one reads. The lock is the transaction's: a
broker that dies holding it loses its connection, and PostgreSQL releases it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from mailbridge.oauth_broker.domain.flows import Flow, FlowSecrets, Stage
from mailbridge.oauth_broker.domain.tokens import TokenSet
from mailbridge.shared.crypto import Sealer
from mailbridge.shared.errors import ErrorInfo
from mailbridge.shared.messages import Event, OAuthApp, Provider
from mailbridge.shared.outbox import write_outbox
from mailbridge.shared.postgres import Connection

SCHEMA = "oauth_broker"
LOCK_TIMEOUT = "30s"  # a refresh waits this long for another replica's; then it answers an error
_FLOW_COLUMNS = (
    "flow_id, agent_id, provider, state_hash, nonce, issuer, app, scopes, required_scopes,"
    " expected_email, ui_origin, reauthorize, binding_hash, status, email, error, expires_at"
)
_GRANT_COLUMNS = (
    "agent_id, provider, email, client_id, scopes, sealed_tokens, dead, retry_after, refreshed_at"
)


class PostgresFlows:
    def __init__(self, pool: asyncpg.Pool, sealer: Sealer) -> None:
        self._pool, self._sealer = pool, sealer

    async def add(self, flow: Flow, flow_secrets: FlowSecrets) -> None:
        sealed = self._sealer.seal(
            json.dumps({"state": flow_secrets.state, "verifier": flow_secrets.verifier}),
            flow.flow_id,
        )
        await self._pool.execute(
            "INSERT INTO oauth_broker.flows (flow_id, agent_id, provider, state_hash,"
            " sealed_secrets, nonce, issuer, app, scopes, required_scopes, expected_email,"
            " ui_origin, reauthorize, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            flow.flow_id, flow.agent_id, flow.provider.value, flow.state_hash, sealed, flow.nonce,
            flow.issuer, flow.app.model_dump_json(exclude={"client_secret"}), flow.scopes,
            flow.required_scopes, flow.expected_email, flow.ui_origin, flow.reauthorize,
            flow.expires_at,
        )  # fmt: skip

    async def get(self, flow_id: str) -> Flow | None:
        row = await self._pool.fetchrow(
            f"SELECT {_FLOW_COLUMNS} FROM oauth_broker.flows WHERE flow_id = $1",  # noqa: S608
            flow_id,
        )
        return _flow(row) if row else None

    async def bind(
        self, flow_id: str, binding_hash: str, now: datetime
    ) -> tuple[Flow, FlowSecrets] | None:
        """Bind a pending flow to one browser, once: the flow and its secrets, or None if it
        cannot be (unknown, already bound, finished or expired)."""
        row = await self._pool.fetchrow(
            "UPDATE oauth_broker.flows SET binding_hash = $2 WHERE flow_id = $1"  # noqa: S608
            " AND binding_hash IS NULL AND status = 'pending' AND expires_at > $3"
            f" RETURNING {_FLOW_COLUMNS}, sealed_secrets",
            flow_id, binding_hash, now,
        )  # fmt: skip
        return (_flow(row), self._secrets(flow_id, row["sealed_secrets"])) if row else None

    async def claim(self, flow_id: str) -> FlowSecrets | None:
        """Take a pending flow for one callback; a second one finds it taken (a replay)."""
        sealed = await self._pool.fetchval(
            "UPDATE oauth_broker.flows SET status = 'completing' WHERE flow_id = $1"
            " AND status = 'pending' RETURNING sealed_secrets",
            flow_id,
        )
        return self._secrets(flow_id, sealed) if sealed else None

    async def finish(
        self,
        flow_id: str,
        stage: Stage,
        *,
        error: ErrorInfo | None = None,
        email: str | None = None,
    ) -> None:
        async with self._pool.acquire() as connection:
            await _finish(connection, flow_id, stage, error=error, email=email)

    def _secrets(self, flow_id: str, sealed: str) -> FlowSecrets:
        opened = json.loads(self._sealer.open(sealed, flow_id))
        return FlowSecrets(state=opened["state"], verifier=opened["verifier"])


async def _finish(
    connection: Connection,
    flow_id: str,
    stage: Stage,
    *,
    error: ErrorInfo | None,
    email: str | None,
) -> None:
    """The flow's outcome; its sealed verifier is kept no longer than it is needed."""
    await connection.execute(
        "UPDATE oauth_broker.flows SET status = $2, error = $3, email = $4, finished_at = now(),"
        " sealed_secrets = '' WHERE flow_id = $1",
        flow_id, stage.value, error.model_dump_json() if error else None, email,
    )  # fmt: skip


@dataclass(frozen=True)
class Grant:
    agent_id: str
    provider: Provider
    email: str
    client_id: str
    scopes: list[str]
    tokens: TokenSet
    dead: ErrorInfo | None
    retry_after: datetime | None
    refreshed_at: datetime


class LockedGrant:
    """A grant's row under its lock, in one transaction: read again, then changed."""

    def __init__(self, connection: Connection, sealer: Sealer, grant: Grant | None) -> None:
        self._connection, self._sealer, self.grant = connection, sealer, grant
        self.wrote_events = False

    async def save_tokens(self, tokens: TokenSet, now: datetime) -> None:
        await self._connection.execute(
            "UPDATE oauth_broker.grants SET sealed_tokens = $2, refreshed_at = $3, updated_at = $3,"
            " retry_after = NULL WHERE agent_id = $1",
            self._agent_id, self._sealer.seal(tokens.model_dump_json(), self._agent_id), now,
        )  # fmt: skip

    async def mark_dead(self, error: ErrorInfo, events: Sequence[Event]) -> None:
        """No more refreshes until a new authorization replaces the grant."""
        await self._connection.execute(
            "UPDATE oauth_broker.grants SET dead = $2, updated_at = now() WHERE agent_id = $1",
            self._agent_id, error.model_dump_json(),
        )  # fmt: skip
        await self._write(events)

    async def cool_down(self, until: datetime, events: Sequence[Event]) -> None:
        await self._connection.execute(
            "UPDATE oauth_broker.grants SET retry_after = $2 WHERE agent_id = $1",
            self._agent_id, until,
        )  # fmt: skip
        await self._write(events)

    async def delete(self, events: Sequence[Event]) -> None:
        await self._connection.execute(
            "DELETE FROM oauth_broker.grants WHERE agent_id = $1", self._agent_id
        )
        await self._write(events)

    @property
    def _agent_id(self) -> str:
        if self.grant is None:
            raise LookupError("no grant to change")
        return self.grant.agent_id

    async def _write(self, events: Sequence[Event]) -> None:
        if events:
            await write_outbox(self._connection, SCHEMA, events)
            self.wrote_events = True


class PostgresGrants:
    def __init__(
        self, pool: asyncpg.Pool, sealer: Sealer, on_outbox_write: Callable[[], None]
    ) -> None:
        self._pool, self._sealer, self._on_outbox_write = pool, sealer, on_outbox_write

    async def get(self, agent_id: str) -> Grant | None:
        row = await self._pool.fetchrow(
            f"SELECT {_GRANT_COLUMNS} FROM oauth_broker.grants WHERE agent_id = $1",  # noqa: S608
            agent_id,
        )
        return self._grant(row) if row else None

    @asynccontextmanager
    async def locked(self, agent_id: str) -> AsyncIterator[LockedGrant]:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            row = await connection.fetchrow(
                f"SELECT {_GRANT_COLUMNS} FROM oauth_broker.grants"  # noqa: S608
                " WHERE agent_id = $1 FOR UPDATE",
                agent_id,
            )
            locked = LockedGrant(connection, self._sealer, self._grant(row) if row else None)
            yield locked
        if locked.wrote_events:
            self._on_outbox_write()

    async def authorize(
        self, grant: Grant, *, flow_id: str, email: str, events: Sequence[Event]
    ) -> None:
        """Store a new grant (replacing the agent's old one) and finish its flow, in one
        transaction with the events that announce it."""
        sealed = self._sealer.seal(grant.tokens.model_dump_json(), grant.agent_id)
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                f"INSERT INTO oauth_broker.grants ({_GRANT_COLUMNS}, updated_at)"  # noqa: S608
                " VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, $7, $7)"
                " ON CONFLICT (agent_id) DO UPDATE SET provider = $2, email = $3, client_id = $4,"
                " scopes = $5, sealed_tokens = $6, dead = NULL, retry_after = NULL,"
                " refreshed_at = $7, updated_at = $7",
                grant.agent_id, grant.provider.value, grant.email, grant.client_id, grant.scopes,
                sealed, grant.refreshed_at,
            )  # fmt: skip
            await _finish(connection, flow_id, Stage.COMPLETED, error=None, email=email)
            await write_outbox(connection, SCHEMA, events)
        self._on_outbox_write()

    async def idle(self, refreshed_before: datetime, limit: int = 100) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT agent_id FROM oauth_broker.grants WHERE dead IS NULL AND refreshed_at < $1"
            " ORDER BY refreshed_at LIMIT $2",
            refreshed_before, limit,
        )  # fmt: skip
        return [row["agent_id"] for row in rows]

    def _grant(self, row: asyncpg.Record) -> Grant:
        tokens = TokenSet.model_validate_json(
            self._sealer.open(row["sealed_tokens"], row["agent_id"])
        )
        return Grant(
            agent_id=row["agent_id"],
            provider=Provider(row["provider"]),
            email=row["email"] or "",
            client_id=row["client_id"],
            scopes=list(row["scopes"]),
            tokens=tokens,
            dead=ErrorInfo.model_validate_json(row["dead"]) if row["dead"] else None,
            retry_after=row["retry_after"],
            refreshed_at=row["refreshed_at"],
        )


def _flow(row: asyncpg.Record) -> Flow:
    return Flow(
        flow_id=row["flow_id"],
        agent_id=row["agent_id"],
        provider=Provider(row["provider"]),
        app=OAuthApp.model_validate_json(row["app"]),
        issuer=row["issuer"],
        nonce=row["nonce"],
        scopes=list(row["scopes"]),
        required_scopes=list(row["required_scopes"]),
        expected_email=row["expected_email"],
        ui_origin=row["ui_origin"],
        reauthorize=row["reauthorize"],
        expires_at=row["expires_at"],
        state_hash=row["state_hash"],
        stage=Stage(row["status"]),
        binding_hash=row["binding_hash"],
        email=row["email"],
        error=_error(row["error"]),
    )


def _error(value: Any) -> ErrorInfo | None:
    return ErrorInfo.model_validate_json(value) if value else None
