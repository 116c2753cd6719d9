"""PollScheduler: asks the mail-workers to poll every connected mailbox once per interval
(IMAP, Gmail API and Graph alike).

Time is cut into slots of ``interval`` seconds; each mailbox's poll command for a slot has the id
``poll-{agent_id}-{slot}``, published with that id as ``Nats-Msg-Id``. Every config-api replica runs
the scheduler, and JetStream keeps one command per mailbox and slot, so each poll is done once, by
one worker, and a restart neither skips nor repeats a slot. (The dedupe holds while replicas tick
within the stream's duplicate window of each other, which a tick of seconds guarantees.)
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from mailbridge.shared.background import BackgroundLoop
from mailbridge.shared.bus import NatsBus
from mailbridge.shared.clock import Clock
from mailbridge.shared.messages import PollMailbox

log = logging.getLogger(__name__)


class PollScheduler(BackgroundLoop):
    name = "poll-scheduler"

    def __init__(
        self, pool: asyncpg.Pool, bus: NatsBus, clock: Clock, *, interval: float, tick: float
    ) -> None:
        self._pool, self._bus, self._clock = pool, bus, clock
        self._interval, self._tick = interval, tick
        self._published: dict[str, int] = {}  # agent → last slot this replica published

    async def run(self) -> None:
        while True:
            try:
                await self.publish_due()
            except Exception:  # NATS or the database is down: the next tick tries again
                log.warning("poll scheduler tick failed", exc_info=True)
            await asyncio.sleep(self._tick)

    async def publish_due(self) -> int:
        slot = int(self._clock.now().timestamp() // self._interval)
        due = [a for a in await self._connected_mailboxes() if self._published.get(a) != slot]
        for agent_id in due:
            command = PollMailbox(agent_id=agent_id, command_id=f"poll-{agent_id}-{slot}")
            await self._bus.publish(command)
            self._published[agent_id] = slot
        return len(due)

    async def _connected_mailboxes(self) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT s.agent_id FROM config_api.mailbox_status s"
            " JOIN config_api.email_configs c USING (agent_id)"
            " WHERE s.status = 'connected'"
        )
        return [row["agent_id"] for row in rows]
