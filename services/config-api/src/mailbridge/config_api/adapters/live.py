"""LiveStatusFeed: one agent's status changes and test results, as Server-Sent Events.

Each connection reads the two JetStream streams that hold those events (CONFIG_EVT and MAIL_EVT)
through ephemeral ordered consumers. An event's SSE id is the pair of stream positions after it,
``"{config_seq}-{mail_seq}"``, so a client that reconnects with ``Last-Event-ID`` resumes exactly
where it stopped, in both streams. A comment line every ``heartbeat`` seconds keeps proxies from
closing an idle connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from mailbridge.shared.messages import ConnectionTested, Message, StatusChanged
from mailbridge.shared.streams import CONFIG_EVT, MAIL_EVT, StreamDefinition

_CURSOR = re.compile(r"^(\d{1,18})-(\d{1,18})$")
FEEDS: tuple[tuple[StreamDefinition, type[Message], str], ...] = (
    (CONFIG_EVT, StatusChanged, "status"),
    (MAIL_EVT, ConnectionTested, "test_result"),
)


@dataclass(frozen=True)
class Cursor:
    """The last stream sequence a client has seen, per stream (same order as ``FEEDS``)."""

    positions: tuple[int, int]

    def render(self) -> str:
        return f"{self.positions[0]}-{self.positions[1]}"

    def advanced(self, feed: int, sequence: int) -> Cursor:
        positions = list(self.positions)
        positions[feed] = sequence
        return Cursor((positions[0], positions[1]))

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        match = _CURSOR.match(text or "")
        return cls((int(match.group(1)), int(match.group(2)))) if match else None


def sse(data: str, *, event: str, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


class LiveStatusFeed:
    def __init__(self, nc: Client, heartbeat_seconds: float) -> None:
        self._nc, self._heartbeat = nc, heartbeat_seconds

    async def events(self, agent_id: str, resume: Cursor | None, first: str) -> AsyncIterator[str]:
        """``first`` (the current snapshot), then every new event, then heartbeats while idle."""
        cursor = resume or await self._now()
        queue: asyncio.Queue[tuple[int, Msg]] = asyncio.Queue(maxsize=1000)
        subscriptions = [
            await self._follow(feed, message.subject_for(agent_id), stream, cursor, queue)
            for feed, (stream, message, _) in enumerate(FEEDS)
        ]
        try:
            yield first
            while True:
                try:
                    feed, msg = await asyncio.wait_for(queue.get(), self._heartbeat)
                except TimeoutError:
                    yield ": heartbeat\n\n"
                    continue
                cursor = cursor.advanced(feed, msg.metadata.sequence.stream)
                yield sse(msg.data.decode(), event=FEEDS[feed][2], event_id=cursor.render())
        finally:
            for subscription in subscriptions:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    async def _now(self) -> Cursor:
        js = self._nc.jetstream()
        infos = [await js.stream_info(stream.name) for stream, _, _ in FEEDS]
        return Cursor((infos[0].state.last_seq, infos[1].state.last_seq))

    async def _follow(
        self,
        feed: int,
        subject: str,
        stream: StreamDefinition,
        cursor: Cursor,
        queue: asyncio.Queue[tuple[int, Msg]],
    ) -> JetStreamContext.PushSubscription:
        async def deliver(msg: Msg) -> None:
            await queue.put((feed, msg))

        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=cursor.positions[feed] + 1,
        )
        return await self._nc.jetstream().subscribe(
            subject, stream=stream.name, cb=deliver, ordered_consumer=True, config=config
        )
