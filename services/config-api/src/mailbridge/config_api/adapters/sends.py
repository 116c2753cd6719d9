"""PostgresSendLedger: HTTP sends, their Idempotency-Keys and outcomes.

A new send and its command are written in one transaction (the command goes out through the
outbox), so a 202 answer always means the command will reach the mail-workers, or, when the
outbox relay can never publish it, that the send is settled ``failed`` (``settle_dead_send``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import asyncpg

from mailbridge.config_api.adapters.audit import write_audit
from mailbridge.config_api.adapters.postgres import SCHEMA
from mailbridge.config_api.domain.audit import AuditEntry
from mailbridge.config_api.domain.outgoing import SendStatus, SendView
from mailbridge.shared import subjects
from mailbridge.shared.errors import ErrorCode, ErrorInfo
from mailbridge.shared.messages import SendMessage
from mailbridge.shared.outbox import DeadReason, write_outbox
from mailbridge.shared.postgres import Connection

SEND_SUBJECT_PREFIX = subjects.CMD_MESSAGE_SEND.removesuffix(subjects.ID_PLACEHOLDER)


class PostgresSendLedger:
    def __init__(
        self, pool: asyncpg.Pool, on_outbox_write: Callable[[], None] = lambda: None
    ) -> None:
        self._pool = pool
        self._on_outbox_write = on_outbox_write

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
            "SELECT command_id, status, message_id, error FROM config_api.http_sends"
            " WHERE agent_id = $1 AND command_id = $2",
            agent_id,
            command_id,
        )
        if row is None:
            return None
        error = ErrorInfo.model_validate_json(row["error"]) if row["error"] else None
        return SendView(
            command_id=row["command_id"],
            status=row["status"],
            message_id=row["message_id"],
            error=error,
        )

    async def settle(
        self, command_id: str, status: SendStatus, message_id: str | None, error: ErrorInfo | None
    ) -> None:
        """Record an outcome; ``sent`` is final and is never overwritten by a late failure."""
        await self._pool.execute(
            "UPDATE config_api.http_sends SET status = $2, message_id = $3, error = $4::jsonb,"
            " updated_at = now() WHERE command_id = $1 AND status <> 'sent'",
            command_id,
            status.value,
            message_id,
            json.dumps(error.model_dump(mode="json")) if error else None,
        )


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
