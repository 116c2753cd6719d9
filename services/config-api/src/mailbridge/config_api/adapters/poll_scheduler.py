"""PollScheduler: asks the mail-workers to poll every connected mailbox once per interval
(IMAP, Gmail API and Graph alike).

Time is cut into slots of ``interval`` seconds; each mailbox's poll command for a slot has the id
``poll-{agent_id}-{slot}``, published with that id as ``Nats-Msg-Id``. Every config-api replica runs
the scheduler, and JetStream keeps one command per mailbox and slot, so each poll is done once, by
one worker, and a restart neither skips nor repeats a slot. (The dedupe holds while replicas tick
within the stream's duplicate window of each other, which a tick of seconds guarantees.)

A mailbox whose polls keep failing is in backoff (``domain/poll_backoff.py``): the scheduler skips
its slots until its ``retry_at``, and asks its next poll to report a success, which ends the
backoff. The backoff lives in the status row, so every replica holds the mailbox back alike; the
``mailbridge_poll_backoff_mailboxes`` gauge counts the polled mailboxes in backoff at the last tick.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from prometheus_client import CollectorRegistry, Gauge

from mailbridge.shared.background import BackgroundLoop
from mailbridge.shared.bus import Publisher
from mailbridge.shared.clock import Clock
from mailbridge.shared.messages import PollMailbox

log = logging.getLogger(__name__)


# Polled: connected, or in error from polls that may pass (still in backoff: domain/poll_backoff)
_POLLED = (
    "SELECT s.agent_id, (s.poll_state->'backoff'->>'retry_at')::timestamptz AS retry_at"
    " FROM config_api.mailbox_status s"
    " JOIN config_api.email_configs c USING (agent_id)"
    " WHERE s.status = 'connected' OR (s.status = 'error'"
    " AND s.last_error->>'source' = 'poll' AND s.poll_state ? 'backoff')"
)


@dataclass(frozen=True)
class PolledMailbox:
    agent_id: str
    retry_at: datetime | None  # set while its polls are failing: not polled before then

    def is_due(self, now: datetime) -> bool:
        return self.retry_at is None or self.retry_at <= now


class PollScheduler(BackgroundLoop):
    name = "poll-scheduler"

    def __init__(
        self,
        pool: asyncpg.Pool,
        bus: Publisher,
        clock: Clock,
        *,
        interval: float,
        tick: float,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._pool, self._bus, self._clock = pool, bus, clock
        self._interval, self._tick = interval, tick
        self._published: dict[str, int] = {}  # agent → last slot this replica published
        self._in_backoff = Gauge(
            "mailbridge_poll_backoff_mailboxes",
            "Polled mailboxes whose polls keep failing, held back by their backoff",
            registry=registry,
        )

    async def run(self) -> None:
        while True:
            try:
                await self.publish_due()
            except Exception:  # NATS or the database is down: the next tick tries again
                log.warning("poll scheduler tick failed", exc_info=True)
            await asyncio.sleep(self._tick)

    async def publish_due(self) -> int:
        now = self._clock.now()
        slot = int(now.timestamp() // self._interval)
        mailboxes = await self._polled_mailboxes()
        self._in_backoff.set(sum(m.retry_at is not None for m in mailboxes))
        due = [m for m in mailboxes if m.is_due(now) and self._published.get(m.agent_id) != slot]
        for mailbox in due:
            await self._bus.publish(_poll_command(mailbox, slot))
            self._published[mailbox.agent_id] = slot
        return len(due)

    async def _polled_mailboxes(self) -> list[PolledMailbox]:
        rows = await self._pool.fetch(_POLLED)
        return [PolledMailbox(row["agent_id"], row["retry_at"]) for row in rows]


def _poll_command(mailbox: PolledMailbox, slot: int) -> PollMailbox:
    """One slot's poll; one in backoff asks to hear of its success, which ends the backoff."""
    return PollMailbox(
        agent_id=mailbox.agent_id,
        command_id=f"poll-{mailbox.agent_id}-{slot}",
        report_success=mailbox.retry_at is not None,
    )
