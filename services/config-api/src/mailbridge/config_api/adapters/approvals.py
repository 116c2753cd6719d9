"""PostgresApprovals: held sends in the send ledger (``config_api.http_sends``), and decisions.

A decision locks the send's row (``FOR UPDATE``), applies ``domain.approval.step`` to what it
finds and, when that is a change, writes the new state and the decision's messages (the command
queued again, the decision's event) to the outbox in the same transaction: an approve and a reject
that race take turns on the row, so exactly one of them decides, and a committed approval queues
the command exactly once. The expiry takes the rows it can lock (``SKIP LOCKED``): a send a person
is deciding right now is theirs, and replicas sweeping together never take the same row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import asyncpg
from asyncpg.exceptions import ForeignKeyViolationError

from mailbridge.config_api.adapters.postgres import SCHEMA
from mailbridge.config_api.domain.approval import SendState, error_after, step
from mailbridge.config_api.domain.outgoing import Decision, SendStatus
from mailbridge.config_api.ports import DecisionEffects, HeldSend
from mailbridge.shared.messages import MessageHeld, SendHold, SendMessage
from mailbridge.shared.outbox import write_outbox
from mailbridge.shared.postgres import Connection

_HOLD = """
INSERT INTO config_api.http_sends
    (command_id, agent_id, request_hash, status, held_command, hold, held_at)
VALUES ($1, $2, '', 'held', $3::jsonb, $4::jsonb, now())
ON CONFLICT (command_id) DO UPDATE SET
    status = 'held', held_command = EXCLUDED.held_command, hold = EXCLUDED.hold,
    held_at = now(), updated_at = now()
WHERE http_sends.agent_id = EXCLUDED.agent_id AND http_sends.status = 'queued'
    AND http_sends.decision IS NULL
RETURNING command_id
"""
_LOCKED = """
SELECT agent_id, command_id, status, decision, held_command, hold, held_at
FROM config_api.http_sends WHERE agent_id = $1 AND command_id = $2 FOR UPDATE
"""
_DUE = """
SELECT agent_id, command_id, status, decision, held_command, hold, held_at
FROM config_api.http_sends WHERE status = 'held' AND decision IS NULL AND held_at < $1
ORDER BY held_at LIMIT $2 FOR UPDATE SKIP LOCKED
"""
_DECIDED = """
UPDATE config_api.http_sends SET status = $2, decision = $3, decided_by = $4,
    decided_at = now(), error = $5::jsonb, updated_at = now()
WHERE command_id = $1
"""


class PostgresApprovals:
    def __init__(
        self, pool: asyncpg.Pool, on_outbox_write: Callable[[], None] = lambda: None
    ) -> None:
        self._pool = pool
        self._on_outbox_write = on_outbox_write

    async def hold(self, event: MessageHeld) -> bool:
        """The send waits for a decision (a new row for one published on NATS); False when it
        was decided already, or is not this agent's, or the agent is gone."""
        try:
            held = await self._pool.fetchval(
                _HOLD, event.command_id, event.agent_id, event.command.model_dump_json(),
                event.hold.model_dump_json(),
            )  # fmt: skip
        except ForeignKeyViolationError:  # the agent was deleted meanwhile: nobody to ask
            return False
        return held is not None

    async def decide(
        self, agent_id: str, command_id: str, wanted: Decision, actor: str | None,
        effects: DecisionEffects,
    ) -> bool | None:  # fmt: skip
        """Apply the decision; True when it changed the send, False when it had it already,
        None when there is no such send. Raises ``not_held`` as ``step`` does, or what
        ``effects`` raised (then nothing changes)."""
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(_LOCKED, agent_id, command_id)
            if row is None:
                return None
            after = step(SendState(SendStatus(row["status"]), _decision(row)), wanted)
            if after is None:
                return False
            await _apply(connection, _held(row), after, actor, effects)
        self._on_outbox_write()
        return True

    async def expire(
        self, held_before: datetime, effects: DecisionEffects, limit: int = 100
    ) -> list[HeldSend]:
        """Reject, as ``expired``, the undecided sends held before ``held_before``."""
        async with self._pool.acquire() as connection, connection.transaction():
            due = [_held(row) for row in await connection.fetch(_DUE, held_before, limit)]
            expired = SendState(SendStatus.REJECTED, Decision.EXPIRED)
            for held in due:
                await _apply(connection, held, expired, None, effects)
        if due:
            self._on_outbox_write()
        return due


async def _apply(
    connection: Connection,
    held: HeldSend,
    after: SendState,
    actor: str | None,
    effects: DecisionEffects,
) -> None:
    messages = await effects(held)  # first: a refusal (policy's) leaves the row as it was
    error = error_after(after.decision)
    decision = after.decision.value if after.decision else None
    await connection.execute(
        _DECIDED, held.command_id, after.status.value, decision, actor,
        json.dumps(error.model_dump(mode="json")) if error else None,
    )  # fmt: skip
    await write_outbox(connection, SCHEMA, messages)


def _decision(row: asyncpg.Record) -> Decision | None:
    return Decision(row["decision"]) if row["decision"] is not None else None


def _held(row: asyncpg.Record) -> HeldSend:
    """The held send of a locked row that ``step`` let be decided: one that was held, so it has
    its command and hold."""
    if row["held_command"] is None or row["hold"] is None:
        raise RuntimeError(f"send {row['command_id']} is decided but was never held")
    return HeldSend(
        agent_id=row["agent_id"],
        command_id=row["command_id"],
        command=SendMessage.model_validate_json(row["held_command"]),
        hold=SendHold.model_validate_json(row["hold"]),
        held_at=row["held_at"],
    )
