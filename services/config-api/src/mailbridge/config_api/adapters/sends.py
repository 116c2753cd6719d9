"""PostgresSendLedger: HTTP sends, their Idempotency-Keys and outcomes.

A new send and its command are written in one transaction (the command goes out through the
outbox), so a 202 answer always means the command will reach the mail-workers, or, when the
outbox relay can never publish it, that the send is settled ``failed`` (``settle_dead_send``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import timedelta

import asyncpg

from mailbridge.config_api.adapters.audit import write_audit
from mailbridge.config_api.adapters.postgres import SCHEMA
from mailbridge.config_api.domain.audit import AuditEntry
from mailbridge.config_api.domain.outgoing import (
    DecisionView,
    HeldView,
    SendStatus,
    SendView,
)
from mailbridge.shared import subjects
from mailbridge.shared.errors import ErrorCode, ErrorInfo
from mailbridge.shared.messages import SendHold, SendMessage
from mailbridge.shared.outbox import DeadReason, write_outbox
from mailbridge.shared.postgres import Connection

SEND_SUBJECT_PREFIX = subjects.CMD_MESSAGE_SEND.removesuffix(subjects.ID_PLACEHOLDER)
DEFAULT_HOLD_LIFETIME = timedelta(hours=24)
VIEW_COLUMNS = (
    "command_id, status, message_id, error, held_command, hold, held_at, decision, decided_by,"
    " decided_at"
)


class PostgresSendLedger:
    def __init__(
        self,
        pool: asyncpg.Pool,
        on_outbox_write: Callable[[], None] = lambda: None,
        hold_lifetime: timedelta = DEFAULT_HOLD_LIFETIME,
    ) -> None:
        self._pool = pool
        self._on_outbox_write = on_outbox_write
        self._hold_lifetime = hold_lifetime  # how long a held send waits: its expires_at

    async def open(
        self,
        command: SendMessage,
        idempotency_key: str | None,
        fingerprint: str,
        audit: Sequence[AuditEntry] = (),
    ) -> tuple[str, str]:
        """Record the send, its audit entries and queue its command; with a known key, the
        earlier send instead. Returns the command id that stands and the fingerprint stored
        with it."""
        async with self._pool.acquire() as connection, connection.transaction():
            inserted = await connection.fetchval(
                "INSERT INTO config_api.http_sends"
                " (command_id, agent_id, idempotency_key, request_hash) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (agent_id, idempotency_key) DO NOTHING RETURNING command_id",
                command.command_id,
                command.agent_id,
                idempotency_key,
                fingerprint,
            )
            if inserted is None:
                earlier = await connection.fetchrow(
                    "SELECT command_id, request_hash FROM config_api.http_sends"
                    " WHERE agent_id = $1 AND idempotency_key = $2",
                    command.agent_id,
                    idempotency_key,
                )
                assert earlier is not None  # the conflicting row exists: it made the insert a no-op
                return earlier["command_id"], earlier["request_hash"]
            await write_outbox(connection, SCHEMA, [command])
            await write_audit(connection, audit)
        self._on_outbox_write()
        return command.command_id, fingerprint

    async def find(self, agent_id: str, command_id: str) -> SendView | None:
        row = await self._pool.fetchrow(
            f"SELECT {VIEW_COLUMNS} FROM config_api.http_sends"  # noqa: S608 (constant columns)
            " WHERE agent_id = $1 AND command_id = $2",
            agent_id,
            command_id,
        )
        return send_view(row, self._hold_lifetime) if row is not None else None

    async def listed(self, agent_id: str, status: SendStatus | None, limit: int) -> list[SendView]:
        """The agent's sends (of one status, when given), oldest first."""
        rows = await self._pool.fetch(
            f"SELECT {VIEW_COLUMNS} FROM config_api.http_sends"  # noqa: S608 (constant columns)
            " WHERE agent_id = $1 AND ($2::text IS NULL OR status = $2)"
            " ORDER BY created_at, command_id LIMIT $3",
            agent_id,
            status.value if status else None,
            limit,
        )
        return [send_view(row, self._hold_lifetime) for row in rows]

    async def settle(
        self, command_id: str, status: SendStatus, message_id: str | None, error: ErrorInfo | None
    ) -> None:
        """Record an outcome; ``sent`` and ``rejected`` are final (a late failure changes
        neither)."""
        await self._pool.execute(
            "UPDATE config_api.http_sends SET status = $2, message_id = $3, error = $4::jsonb,"
            " updated_at = now() WHERE command_id = $1 AND status NOT IN ('sent', 'rejected')",
            command_id,
            status.value,
            message_id,
            json.dumps(error.model_dump(mode="json")) if error else None,
        )


def send_view(row: asyncpg.Record, hold_lifetime: timedelta) -> SendView:
    """A row of ``VIEW_COLUMNS`` as the API shows it."""
    error = ErrorInfo.model_validate_json(row["error"]) if row["error"] else None
    decision = None
    if row["decision"] is not None:
        decision = DecisionView(
            decision=row["decision"], by=row["decided_by"], at=row["decided_at"]
        )
    return SendView(
        command_id=row["command_id"],
        status=row["status"],
        message_id=row["message_id"],
        error=error,
        held=_held_view(row, hold_lifetime),
        decision=decision,
    )


def _held_view(row: asyncpg.Record, hold_lifetime: timedelta) -> HeldView | None:
    if row["held_command"] is None:
        return None
    command = SendMessage.model_validate_json(row["held_command"])
    hold = SendHold.model_validate_json(row["hold"])
    return HeldView(
        reason=hold.reason, recipients=hold.recipients, to=command.to, cc=command.cc,
        bcc=command.bcc, subject=command.subject, held_at=row["held_at"],
        expires_at=row["held_at"] + hold_lifetime,
    )  # fmt: skip


async def settle_dead_send(
    connection: Connection, subject: str, payload: str, reason: DeadReason
) -> None:
    """The outbox relay's dead-letter hook: a send command that can never be published settles
    its HTTP send ``failed`` in the dead-lettering transaction, if it is still queued, as
    ``message_too_large`` when its payload was too large, else ``internal``. The mailbox status is
    left alone: the mailbox did nothing wrong. Any other row is not a send, and is left alone."""
    if not subject.startswith(SEND_SUBJECT_PREFIX):
        return
    code = (
        ErrorCode.MESSAGE_TOO_LARGE
        if reason is DeadReason.PAYLOAD_TOO_LARGE
        else ErrorCode.INTERNAL
    )
    await connection.execute(
        "UPDATE config_api.http_sends SET status = 'failed', error = $2::jsonb, updated_at = now()"
        " WHERE command_id = $1 AND status = 'queued'",
        _command_id_of(payload),
        json.dumps(ErrorInfo.of(code).model_dump(mode="json")),
    )


def _command_id_of(payload: str) -> str | None:
    """The payload's ``command_id``; None for a payload that is not a JSON object (never raises:
    a row that cannot be read must still be dead-lettered)."""
    try:
        command = json.loads(payload)
    except ValueError:
        return None
    command_id = command.get("command_id") if isinstance(command, dict) else None
    return command_id if isinstance(command_id, str) else None
