"""The commands a mail-worker works on at once, and how it lets go of them when it stops.

A command is fetched only when a slot is free (the subscriber fetches one at a time and waits
here), so the worker never holds a command it has not started: faststream's concurrent pull
subscriber fetches whole batches beyond its workers and, when it stops, drops the ones it had not
started, unacknowledged, for the ack wait (ag2ai/faststream#2563).

On SIGTERM (``hand_over``, before the connection closes): no more fetching; a command waiting for
a slot is nak'd at once, so another replica takes it now; the commands in flight finish and are
settled for up to ``MAILBRIDGE_DRAIN_SECONDS``; one still running then is cancelled and nak'd at
once (its redelivery reads the send ledger, so a send cut after its data began is ``unknown``,
never sent again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from faststream.nats.annotations import NatsMessage
from nats.js import JetStreamContext

log = logging.getLogger(__name__)


class Fetching(Protocol):
    """The subscriber that fetches the commands: stopping it fetches no more."""

    async def stop(self) -> None: ...


class CommandSlots:
    """A service part (``HandsOver``): the worker's command slots, drained when it stops."""

    def __init__(self, concurrency: int, drain_seconds: float) -> None:
        self._free = asyncio.Semaphore(concurrency)
        self._drain_seconds = drain_seconds
        self._working: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()
        self._fetching: Fetching | None = None

    def fetched_by(self, subscriber: Fetching) -> None:
        self._fetching = subscriber

    async def run(self, msg: NatsMessage, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Start ``work`` once a slot is free and return (the subscriber fetches the next); a
        command that arrives or waits while the worker stops is handed back instead."""
        if not await self._slot_taken():
            log.info("stopping: handing %s back", msg.raw_message.subject)
            await msg.nack()
            return
        task = asyncio.create_task(work())
        self._working.add(task)
        task.add_done_callback(self._finished)

    async def _slot_taken(self) -> bool:
        taken = asyncio.ensure_future(self._free.acquire())
        closing = asyncio.ensure_future(self._closing.wait())
        await asyncio.wait((taken, closing), return_when=asyncio.FIRST_COMPLETED)
        closing.cancel()
        if not self._closing.is_set():
            return True
        if taken.done():
            self._free.release()  # acquired in the same moment as the worker began to stop
        else:
            taken.cancel()
        return False

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._working.discard(task)
        self._free.release()

    async def start(self, js: JetStreamContext) -> None:
        return None

    async def hand_over(self) -> None:
        """Fetch no more, hand back what waits, finish what runs within the drain bound."""
        self._closing.set()
        if self._fetching is not None:
            await self._fetching.stop()
        if not self._working:
            return
        log.info("draining %d commands for up to %.0fs", len(self._working), self._drain_seconds)
        _, unfinished = await asyncio.wait(set(self._working), timeout=self._drain_seconds)
        for task in unfinished:
            task.cancel()  # settled as a nak by the task itself (see commands._settle)
        if unfinished:
            log.warning("drain bound reached: %d commands handed back", len(unfinished))
            await asyncio.wait(unfinished)

    async def stop(self) -> None:
        return None
