"""The outbox: a service that owns tables writes its messages in the transaction of its change, and
a relay publishes them. A stored change never loses its message, whatever NATS is doing.

``write_outbox(connection, schema, messages)`` queues messages in ``{schema}.outbox`` inside the
caller's transaction, with the caller's trace. ``OutboxRelay`` is a service ``Part``: started once
the broker is connected, it publishes the rows and marks them.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` so replicas share the work; each is published with
``Nats-Msg-Id: outbox-{schema}-{id}``, so a row published twice (a crash between publish and mark)
is stored once by JetStream, and two services' rows never share an id.

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

A service that must settle its own state when a row is dead-lettered passes ``on_dead_letter``; it
runs in the same transaction as the dead-lettering. Dead rows stay in the table for operators, and
are counted by reason in ``mailbridge_outbox_dead_lettered_total``; failed rounds in
``mailbridge_outbox_publish_failures_total``; and before each round the age of the oldest row
still waiting is read into ``mailbridge_outbox_lag_seconds`` (0 when none waits): all on the
registry the relay is given. The lag is what an operator watches: it grows whatever the cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import asyncpg
from faststream.exceptions import IncorrectState
from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.errors import MaxPayloadError
from nats.js import JetStreamContext
from nats.js.errors import APIError
from prometheus_client import CollectorRegistry, Counter, Gauge

from mailbridge.shared.background import BackgroundLoop
from mailbridge.shared.bus import NatsBus
from mailbridge.shared.messages import Message
from mailbridge.shared.postgres import Connection
from mailbridge.shared.streams import stream_for
from mailbridge.shared.telemetry import continued_trace, trace_carrier

log = logging.getLogger(__name__)

BATCH = 100
IDLE_POLL_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 10.0
MAX_ATTEMPTS = 10
HEADER_ALLOWANCE = 4096  # bytes: the server counts headers (trace, ids) against max_payload too


class DeadReason(StrEnum):
    PAYLOAD_TOO_LARGE = "payload_too_large"
    NO_STREAM = "no_stream"
    REJECTED = "rejected"
    GAVE_UP = "gave_up"


DeadLetterHook = Callable[[Connection, str, str, DeadReason], Awaitable[None]]
"""``(connection, subject, payload, reason)``, run in the transaction that dead-letters the row.
It must not raise for any payload: a row whose hook fails is kept and retried, not dead-lettered."""


def outbox_table(schema: str) -> str:
    """``{schema}.outbox``; the schema is a code constant, and anything else is refused."""
    if not (schema.isidentifier() and schema.isascii()):
        raise ValueError(f"not a schema name: {schema!r}")
    return f"{schema}.outbox"


async def write_outbox(connection: Connection, schema: str, messages: Sequence[Message]) -> None:
    """Queue messages for the relay, inside the caller's transaction, with the caller's trace:
    they are published if and only if that transaction commits."""
    carrier = trace_carrier()
    trace = json.dumps(carrier) if carrier else None
    await connection.executemany(
        f"INSERT INTO {outbox_table(schema)} (subject, payload, trace_context)"  # noqa: S608
        " VALUES ($1, $2, $3)",
        [(m.nats_subject(), m.model_dump_json(by_alias=True), trace) for m in messages],
    )


class Refused(Exception):
    """A row that can never be published, and why."""

    def __init__(self, reason: DeadReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason


class Stalled(Exception):
    """A row that may yet be published failed and ended the round; the failure is its cause."""

    def __init__(self, row: asyncpg.Record) -> None:
        super().__init__(f"outbox row {row['id']} ({row['subject']}) is kept for the next round")


@dataclass(frozen=True)
class _Statements:
    """The relay's SQL on one service's outbox table."""

    claim: str
    mark_published: str
    count_attempt: str
    dead_letter: str
    oldest_age: str

    @classmethod
    def on(cls, schema: str) -> _Statements:
        table = outbox_table(schema)
        return cls(
            claim=f"SELECT id, subject, payload, trace_context FROM {table}"  # noqa: S608
            " WHERE published_at IS NULL AND dead_at IS NULL ORDER BY id LIMIT $1"
            " FOR UPDATE SKIP LOCKED",
            mark_published=f"UPDATE {table} SET published_at = now()"  # noqa: S608
            " WHERE id = ANY($1::bigint[])",
            count_attempt=f"UPDATE {table} SET attempts = attempts + 1"  # noqa: S608
            " WHERE id = $1 RETURNING attempts",
            dead_letter=f"UPDATE {table} SET dead_at = now(), dead_reason = $2"  # noqa: S608
            " WHERE id = $1",
            # by id, as the claim: the unpublished index answers it whatever the backlog
            oldest_age=f"SELECT extract(epoch FROM now() - created_at)::float8 FROM {table}"  # noqa: S608
            " WHERE published_at IS NULL AND dead_at IS NULL ORDER BY id LIMIT 1",
        )


class OutboxRelay:
    """Publishes ``{schema}.outbox`` through ``broker``: a ``Part`` of the service that owns it."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: NatsBroker,
        *,
        schema: str,
        registry: CollectorRegistry,
        on_dead_letter: DeadLetterHook | None = None,
    ) -> None:
        """Nothing is connected here. ``broker`` publishes the rows (with their trace) and tells
        the client's state and the server's max_payload; ``registry`` is the service's own."""
        self._pool, self._broker, self._bus = pool, broker, NatsBus(broker)
        self._schema, self._sql = schema, _Statements.on(schema)
        self._on_dead_letter = on_dead_letter
        self._wake = asyncio.Event()
        self._loop = _Loop(f"outbox-relay-{schema}", self.run)
        self._registry = registry
        self._failures = Counter(
            "mailbridge_outbox_publish_failures",
            "Relay rounds stopped by a failure that may pass (the row is kept)",
            registry=registry,
        )
        self._dead = Counter(
            "mailbridge_outbox_dead_lettered",
            "Outbox rows set aside unpublished, by reason",
            ["reason"],
            registry=registry,
        )
        self._lag = Gauge(
            "mailbridge_outbox_lag_seconds",
            "Age of the oldest outbox row not yet published (0 when none waits)",
            registry=registry,
        )

    @property
    def failed_attempts(self) -> int:
        """Rounds stopped by a failure, visible to health checks and tests."""
        sample = self._registry.get_sample_value("mailbridge_outbox_publish_failures_total")
        return int(sample or 0)

    def dead_lettered(self, reason: DeadReason) -> int:
        sample = self._registry.get_sample_value(
            "mailbridge_outbox_dead_lettered_total", {"reason": reason.value}
        )
        return int(sample or 0)

    def notify(self) -> None:
        """Called after a commit that wrote outbox rows: publish now, not at the next poll."""
        self._wake.set()

    async def start(self, js: JetStreamContext) -> None:
        """Start relaying (the broker is connected by now)."""
        self._loop.start()

    async def stop(self) -> None:
        """Stop relaying; a round cut short keeps its unmarked rows for the next start."""
        await self._loop.stop()

    async def run(self) -> None:
        """Relay until cancelled, surviving the failure of any round."""
        backoff = IDLE_POLL_SECONDS
        while True:
            await self.measure_lag()
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

    async def measure_lag(self) -> None:
        """The oldest waiting row's age into the gauge; with the database away, the last one
        stays (readiness tells that outage)."""
        try:
            age = await self._pool.fetchval(self._sql.oldest_age)
        except Exception as exc:
            log.debug("outbox lag not measured: %r", exc)
            return
        self._lag.set(max(age or 0.0, 0.0))

    async def _wait_for_work(self) -> None:
        """Until notify() or the next poll, whichever is first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=IDLE_POLL_SECONDS)
        self._wake.clear()

    async def publish_pending(self) -> int:
        """One round: settle up to BATCH rows in order and return how many. A failure that may
        pass ends the round; the rows settled before it are committed, then it is raised."""
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(self._sql.claim, BATCH)
            outcome = await self._settle_in_order(connection, rows)
            await connection.execute(self._sql.mark_published, outcome.published)
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
        msg_id = f"outbox-{self._schema}-{row['id']}"
        try:
            with continued_trace(carrier):
                await self._bus.publish_raw(row["subject"], row["payload"], msg_id)
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
        client = self._client()
        size, limit = len(row["payload"].encode()), client.max_payload if client else None
        if limit is not None and size + HEADER_ALLOWANCE > limit:
            detail = f"{size} bytes, with headers over the server's max_payload of {limit}"
            raise Refused(DeadReason.PAYLOAD_TOO_LARGE, detail)

    def _client(self) -> Client | None:
        """The broker's NATS client; None before it connects and once it has stopped."""
        try:
            return self._broker.connection
        except IncorrectState:
            return None

    async def _count_attempt(
        self, connection: Connection, row: asyncpg.Record, failure: Exception
    ) -> Refused | None:
        """Count a failure while NATS is up against the row; at MAX_ATTEMPTS, give the row up."""
        client = self._client()
        if client is None or not client.is_connected:
            return None
        attempts = await connection.fetchval(self._sql.count_attempt, row["id"])
        if attempts < MAX_ATTEMPTS:
            return None
        return Refused(DeadReason.GAVE_UP, f"after {attempts} attempts, the last {failure!r}")

    async def _dead_letter(
        self, connection: Connection, row: asyncpg.Record, refusal: Refused
    ) -> DeadReason:
        log.error("outbox row %s (%s) dead-lettered: %s", row["id"], row["subject"], refusal)
        await connection.execute(self._sql.dead_letter, row["id"], str(refusal))
        if self._on_dead_letter is not None:
            await self._on_dead_letter(connection, row["subject"], row["payload"], refusal.reason)
        return refusal.reason


@dataclass
class _Round:
    """What one round did: rows published, reasons of rows dead-lettered, the row it stopped at."""

    published: list[int] = field(default_factory=list)
    dead: list[DeadReason] = field(default_factory=list)
    stalled: tuple[asyncpg.Record, Exception] | None = None


class _Loop(BackgroundLoop):
    """The relay's task, named after its schema."""

    def __init__(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        self.name, self._run = name, run

    async def run(self) -> None:
        await self._run()
