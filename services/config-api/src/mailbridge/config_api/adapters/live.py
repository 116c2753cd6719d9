"""LiveStatusFeed: an agent's status changes, test results, policy changes and held sends, as SSE.

Each connection reads the JetStream streams that hold those events (CONFIG_EVT, MAIL_EVT and
POLICY_EVT) through ephemeral ordered consumers, one per feed: test results and the approval of
sends (held, approved, rejected: ``send_held``, ``send_approved``, ``send_rejected``) are two
feeds of MAIL_EVT. An event's SSE id is the feeds' stream positions after it,
``"{config_seq}-{mail_seq}-{policy_seq}-{approval_seq}"``, so a client that reconnects with
``Last-Event-ID`` resumes exactly where it stopped, in every feed; a position the id does not
have (an id from before a feed was added) resumes from now. A comment line every
``heartbeat`` seconds keeps proxies from closing an idle connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from mailbridge.config_api.domain.email_config import AgentIn
from mailbridge.shared.messages import (
    ClientOrgChanged,
    ConnectionTested,
    Event,
    MessageApproved,
    MessageHeld,
    MessageRejected,
    OrgChanged,
    StatusChanged,
)
from mailbridge.shared.streams import CONFIG_EVT, MAIL_EVT, POLICY_EVT, StreamDefinition

_CURSOR = re.compile(r"^\d{1,18}(-\d{1,18}){1,3}$")


@dataclass(frozen=True)
class Audience:
    """Whose events one connection shows: the agent's own, its org's and its client org's."""

    agent_id: str
    org_id: str
    client_org_id: str | None = None

    def policy_subjects(self) -> list[str]:
        subjects = [OrgChanged.subject_for(self.org_id)]
        if self.client_org_id is not None:
            subjects.append(ClientOrgChanged.subject_for(self.client_org_id))
        return subjects

    def in_org(self, msg: Msg) -> bool:
        """A client org id is unique only within its org: another org's namesake is not ours."""
        try:
            return bool(json.loads(msg.data)["org_id"] == self.org_id)
        except (ValueError, TypeError, KeyError):
            return False


@dataclass(frozen=True)
class Feed:
    stream: StreamDefinition
    event: str  # the SSE event name
    subjects: Callable[[Audience], list[str]]
    org_scoped: bool = False  # its payloads name an org, which must be the agent's
    events: Mapping[str, str] = field(default_factory=dict)  # a name per subject (id left out)

    def shows(self, msg: Msg, audience: Audience) -> bool:
        return not self.org_scoped or audience.in_org(msg)

    def event_of(self, subject: str) -> str:
        return self.events.get(subject.rsplit(".", 1)[0], self.event)


def wildcard_prefix(kind: type[Event]) -> str:
    """``evt.mail.message.held.v1``: a subject of ``kind`` without its id."""
    return kind.subscription().removesuffix(".*")


_APPROVAL_EVENTS: dict[type[Event], str] = {
    MessageHeld: "send_held",
    MessageApproved: "send_approved",
    MessageRejected: "send_rejected",
}


FEEDS: tuple[Feed, ...] = (
    Feed(CONFIG_EVT, "status", lambda who: [StatusChanged.subject_for(who.agent_id)]),
    Feed(MAIL_EVT, "test_result", lambda who: [ConnectionTested.subject_for(who.agent_id)]),
    Feed(POLICY_EVT, "policy", Audience.policy_subjects, org_scoped=True),
    Feed(
        MAIL_EVT, "send",
        lambda who: [kind.subject_for(who.agent_id) for kind in _APPROVAL_EVENTS],
        events={wildcard_prefix(kind): name for kind, name in _APPROVAL_EVENTS.items()},
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Cursor:
    """The last stream sequence a client has seen, per stream (same order as ``FEEDS``); a
    parsed cursor may be short of the later streams, which ``completed`` fills with now."""

    positions: tuple[int, ...]

    def render(self) -> str:
        return "-".join(map(str, self.positions))

    def advanced(self, feed: int, sequence: int) -> Cursor:
        positions = list(self.positions)
        positions[feed] = sequence
        return Cursor(tuple(positions))

    def completed(self, now: Cursor) -> Cursor:
        return Cursor(self.positions + now.positions[len(self.positions) :])

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        if not _CURSOR.match(text or ""):
            return None
        return cls(tuple(int(part) for part in (text or "").split("-")))


def sse(data: str, *, event: str, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


class LiveStatusFeed:
    """Built before config-api connects; ``start`` (a service part) gives it JetStream."""

    _js: JetStreamContext

    def __init__(self, heartbeat_seconds: float) -> None:
        self._heartbeat = heartbeat_seconds

    async def start(self, js: JetStreamContext) -> None:
        self._js = js

    async def stop(self) -> None:
        return None

    def follow(
        self, agent_id: str, agent: AgentIn, last_event_id: str | None, snapshot: str
    ) -> AsyncIterator[str]:
        audience = Audience(agent_id, agent.org_id, agent.client_org_id)
        first = sse(snapshot, event="snapshot")
        return self.events(audience, Cursor.parse(last_event_id), first)

    async def events(
        self, audience: Audience, resume: Cursor | None, first: str
    ) -> AsyncIterator[str]:
        """``first`` (the current snapshot), then every new event, then heartbeats while idle."""
        cursor = await self._start(resume)
        queue: asyncio.Queue[tuple[int, Msg]] = asyncio.Queue(maxsize=1000)
        subscriptions = [
            await self._follow(index, feed.subjects(audience), feed.stream, cursor, queue)
            for index, feed in enumerate(FEEDS)
        ]
        try:
            yield first
            while True:
                try:
                    index, msg = await asyncio.wait_for(queue.get(), self._heartbeat)
                except TimeoutError:
                    yield ": heartbeat\n\n"
                    continue
                feed = FEEDS[index]
                cursor = cursor.advanced(index, msg.metadata.sequence.stream)
                if feed.shows(msg, audience):
                    name = feed.event_of(msg.subject)
                    yield sse(msg.data.decode(), event=name, event_id=cursor.render())
        finally:
            for subscription in subscriptions:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    async def _start(self, resume: Cursor | None) -> Cursor:
        if resume is not None and len(resume.positions) == len(FEEDS):
            return resume
        infos = [await self._js.stream_info(f.stream.name) for f in FEEDS]
        now = Cursor(tuple(info.state.last_seq for info in infos))
        return resume.completed(now) if resume is not None else now

    async def _follow(
        self,
        index: int,
        subjects: list[str],
        stream: StreamDefinition,
        cursor: Cursor,
        queue: asyncio.Queue[tuple[int, Msg]],
    ) -> JetStreamContext.PushSubscription:
        async def deliver(msg: Msg) -> None:
            await queue.put((index, msg))

        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=cursor.positions[index] + 1,
            filter_subjects=subjects if len(subjects) > 1 else None,
        )
        return await self._js.subscribe(
            subjects[0], stream=stream.name, cb=deliver, ordered_consumer=True, config=config
        )
