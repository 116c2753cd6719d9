"""The outbox relay: publishes the messages config-api stored with its changes, then marks them.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` so replicas share the work; each is published with
``Nats-Msg-Id: outbox-{id}``, so a row published twice (a crash between publish and mark) is stored
once by JetStream.

Rows go out in order, and each has an outcome of its own, so no row can hold back those behind it:

- **published**: ``published_at`` is set.
- **refused**: the row can never be published — its payload (with room for the headers) is over the
  server's ``max_payload``, no stream captures its subject, or JetStream rejects it with a 4xx. It
  is dead-lettered at once (``dead_at``, ``dead_reason``) and the round goes on with the next row.
- **failed for now**: NATS is disconnected, the ack timed out, JetStream is unavailable, no stream
  answered (a stream being restored or re-created), or anything unforeseen. The round stops there,
  keeping the row and the order, and the relay backs off (1 s doubling to 10 s; a ``notify()``
  does not cut a backoff short). A failure while the NATS connection is up counts as one of the
  row's ``attempts``; at ``MAX_ATTEMPTS``, about a minute after the first, the row is given up —
  dead-lettered as ``gave_up`` — and the relay goes on. Failures while disconnected are not
  counted: an outage of any length loses no row.

A dead-lettered send command settles its HTTP send ``failed`` in the same transaction, as
``message_too_large`` when its payload was too large, else ``internal``. The mailbox status is left
alone: the mailbox did nothing wrong. Dead rows stay in the table for operators, and are counted by
reason in ``mailbridge_outbox_dead_lettered_total``; failed rounds in
``mailbridge_outbox_publish_failures_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import asyncpg
from nats.aio.client import Client
from nats.errors import MaxPayloadError
from nats.js.errors import APIError
from prometheus_client import CollectorRegistry, Counter

from mailbridge.shared import subjects
from mailbridge.shared.background import BackgroundLoop
from mailbridge.shared.bus import NatsBus
from mailbridge.shared.errors import ErrorCode, ErrorInfo
from mailbridge.shared.postgres import Connection
from mailbridge.shared.streams import stream_for
from mailbridge.shared.telemetry import continued_trace

log = logging.getLogger(__name__)

BATCH = 100
IDLE_POLL_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 10.0
MAX_ATTEMPTS = 10
HEADER_ALLOWANCE = 4096  # bytes: the server counts headers (trace, ids) against max_payload too
SEND_SUBJECT_PREFIX = subjects.CMD_MESSAGE_SEND.removesuffix(subjects.ID_PLACEHOLDER)

_CLAIM = (
    "SELECT id, subject, payload, trace_context FROM config_api.outbox"
    " WHERE published_at IS NULL AND dead_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"
)


class DeadReason(StrEnum):
    PAYLOAD_TOO_LARGE = "payload_too_large"
    NO_STREAM = "no_stream"
    REJECTED = "rejected"
    GAVE_UP = "gave_up"


class Refused(Exception):
    """A row that can never be published, and why."""

    def __init__(self, reason: DeadReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason


class Stalled(Exception):
    """A row that may yet be published failed and ended the round; the failure is its cause."""

    def __init__(self, row: asyncpg.Record) -> None:
        super().__init__(f"outbox row {row['id']} ({row['subject']}) is kept for the next round")


class OutboxRelay(BackgroundLoop):
    name = "outbox-relay"

    def __init__(
        self, pool: asyncpg.Pool, bus: NatsBus, nats: Callable[[], Client] | None = None
    ) -> None:
        """``nats`` gives the bus's client: whether it is connected, and the server's max_payload.
        Without it every failure counts as an attempt, and only nats-py checks payload sizes."""
        self._pool, self._bus, self._nats = pool, bus, nats
        self._wake = asyncio.Event()
        self.metrics = CollectorRegistry()  # served with config-api's own at /metrics
        self._failures = Counter(
            "mailbridge_outbox_publish_failures",
            "Relay rounds stopped by a failure that may pass (the row is kept)",
            registry=self.metrics,
        )
        self._dead = Counter(
            "mailbridge_outbox_dead_lettered",
            "Outbox rows set aside unpublished, by reason",
            ["reason"],
            registry=self.metrics,
        )

    @property
    def failed_attempts(self) -> int:
        """Rounds stopped by a failure, visible to health checks and tests."""
        return int(self.metrics.get_sample_value("mailbridge_outbox_publish_failures_total") or 0)

    def dead_lettered(self, reason: DeadReason) -> int:
        sample = self.metrics.get_sample_value(
            "mailbridge_outbox_dead_lettered_total", {"reason": reason.value}
        )
        return int(sample or 0)

    def notify(self) -> None:
        """Called after a commit that wrote outbox rows: publish now, not at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        backoff = IDLE_POLL_SECONDS
        while True:
            try:
                settled = await self.publish_pending()
            except Exception:  # NATS or the database is down, or a row failed: keep it, retry
                self._failures.inc()
                log.warning(
                    "outbox relay could not publish; retrying in %.0fs", backoff, exc_info=True
                )
                await asyncio.sleep(backoff)  # not cut short by notify(): attempts stay spaced
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            backoff = IDLE_POLL_SECONDS
            if settled < BATCH:
                await self._wait_for_work()

    async def _wait_for_work(self) -> None:
        """Until notify() or the next poll, whichever is first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=IDLE_POLL_SECONDS)
        self._wake.clear()

    async def publish_pending(self) -> int:
        """One round: settle up to BATCH rows in order and return how many. A failure that may
        pass ends the round; the rows settled before it are committed, then it is raised."""
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(_CLAIM, BATCH)
            outcome = await self._settle_in_order(connection, rows)
            await connection.execute(
                "UPDATE config_api.outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                outcome.published,
            )
        for reason in outcome.dead:
            self._dead.labels(reason=reason.value).inc()
        if outcome.stalled is not None:
            row, failure = outcome.stalled
            raise Stalled(row) from failure
        return len(rows)

    async def _settle_in_order(self, connection: Connection, rows: list[asyncpg.Record]) -> _Round:
        outcome = _Round()
        for row in rows:
            try:
                await self._publish(row)
                outcome.published.append(row["id"])
            except Refused as refusal:
                outcome.dead.append(await self._dead_letter(connection, row, refusal))
            except Exception as failure:
                given_up = await self._count_attempt(connection, row, failure)
                if given_up is None:
                    outcome.stalled = (row, failure)
                    break
                outcome.dead.append(await self._dead_letter(connection, row, given_up))
        return outcome

    async def _publish(self, row: asyncpg.Record) -> None:
        """As part of the trace of the request that wrote the row (its publish span a child)."""
        self._check_publishable(row)
        carrier = json.loads(row["trace_context"]) if row["trace_context"] else None
        try:
            with continued_trace(carrier):
                await self._bus.publish_raw(row["subject"], row["payload"], f"outbox-{row['id']}")
        except MaxPayloadError as error:
            raise Refused(DeadReason.PAYLOAD_TOO_LARGE, str(error)) from error
        except APIError as error:
            if error.code is not None and 400 <= error.code < 500:
                raise Refused(DeadReason.REJECTED, str(error)) from error
            raise

    def _check_publishable(self, row: asyncpg.Record) -> None:
        """Refuse before sending what the server would refuse by closing the connection."""
        try:
            stream_for(row["subject"])
        except LookupError as error:
            raise Refused(DeadReason.NO_STREAM, str(error)) from error
        size, limit = len(row["payload"].encode()), self._max_payload()
        if limit is not None and size + HEADER_ALLOWANCE > limit:
            detail = f"{size} bytes, with headers over the server's max_payload of {limit}"
            raise Refused(DeadReason.PAYLOAD_TOO_LARGE, detail)

    def _max_payload(self) -> int | None:
        return self._nats().max_payload if self._nats is not None else None

    def _connected(self) -> bool:
        return self._nats is None or self._nats().is_connected

    async def _count_attempt(
        self, connection: Connection, row: asyncpg.Record, failure: Exception
    ) -> Refused | None:
        """Count a failure while NATS is up against the row; at MAX_ATTEMPTS, give the row up."""
        if not self._connected():
            return None
        attempts = await connection.fetchval(
            "UPDATE config_api.outbox SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts",
            row["id"],
        )
        if attempts < MAX_ATTEMPTS:
            return None
        return Refused(DeadReason.GAVE_UP, f"after {attempts} attempts, the last {failure!r}")

    async def _dead_letter(
        self, connection: Connection, row: asyncpg.Record, refusal: Refused
    ) -> DeadReason:
        log.error("outbox row %s (%s) dead-lettered: %s", row["id"], row["subject"], refusal)
        await connection.execute(
            "UPDATE config_api.outbox SET dead_at = now(), dead_reason = $2 WHERE id = $1",
            row["id"],
            str(refusal),
        )
        if row["subject"].startswith(SEND_SUBJECT_PREFIX):
            await _fail_send(connection, row["payload"], refusal.reason)
        return refusal.reason


@dataclass
class _Round:
    """What one round did: rows published, reasons of rows dead-lettered, the row it stopped at."""

    published: list[int] = field(default_factory=list)
    dead: list[DeadReason] = field(default_factory=list)
    stalled: tuple[asyncpg.Record, Exception] | None = None


async def _fail_send(connection: Connection, payload: str, reason: DeadReason) -> None:
    """Settle the HTTP send of a dead-lettered send command ``failed``, if it is still queued."""
    code = (
        ErrorCode.MESSAGE_TOO_LARGE
        if reason is DeadReason.PAYLOAD_TOO_LARGE
        else ErrorCode.INTERNAL
    )
    error = ErrorInfo.of(code)
    await connection.execute(
        "UPDATE config_api.http_sends SET status = 'failed', error = $2::jsonb, updated_at = now()"
        " WHERE command_id = $1 AND status = 'queued'",
        _command_id_of(payload),
        json.dumps(error.model_dump(mode="json")),
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
