"""One mailbox's watch on fakes of its server: what is there and what arrives is published once
each with the cursor moved past it; a refused login ends the watch at once (no second bad login);
a lost session is replaced, and replaced sessions that keep failing end it; a server without
IDLE ends it as one that cannot push. And the config events that start, restart and stop
watches."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from faststream.nats import NatsBroker, TestNatsBroker

from mailbridge.mail_worker.container import Container
from mailbridge.mail_worker.domain.cursor import Cursor
from mailbridge.mail_worker.entrypoints import config_events
from mailbridge.mail_worker.entrypoints.watchers import Failed, MailboxWatch, NoPush
from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.shared.errors import ErrorCode, PermanentError, RetryableError
from mailbridge.shared.messages import (
    AgentUpdated,
    EmailConfigDeleted,
    EmailConfigSaved,
    MailboxStatus,
    MessageReceived,
    StatusChanged,
)
from tests.fakes.config_api import RecordingPublisher
from tests.fakes.mail_worker import (
    UIDVALIDITY,
    FakePushInbox,
    MemoryCursorStore,
    container_of_fakes,
)

REFUSED = PermanentError(ErrorCode.AUTH_FAILED, "IMAP login was refused.")
DROPPED = RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, "dropped the connection.")


def raw(subject: str) -> bytes:
    return f"From: ada@example.com\r\nSubject: {subject}\r\n\r\nhello\r\n".encode()


@dataclass
class Watching:
    inbox: FakePushInbox
    c: Container
    watch: MailboxWatch

    @property
    def subjects(self) -> list[str]:
        published = self.c.publisher.published  # type: ignore[attr-defined]
        return [m.subject for m in published if isinstance(m, MessageReceived)]

    async def until_published(self, count: int) -> None:
        while len(self.subjects) < count:
            await asyncio.sleep(0.005)


def watching(inbox: FakePushInbox, reconnects: int = 2) -> Watching:
    c = container_of_fakes(publisher=RecordingPublisher(), cursors=MemoryCursorStore())
    settings = MailWorkerSettings(watch_reconnects=reconnects, watch_quiet_seconds=30)
    return Watching(inbox, c, MailboxWatch(c, inbox, settings, asyncio.Semaphore(4)))


async def test_mail_there_and_mail_that_arrives_is_published_once_each_and_the_cursor_moves() -> (
    None
):
    w = watching(FakePushInbox())
    w.inbox.deliver(raw("old"))
    task = asyncio.create_task(w.watch.run("a1"))
    await asyncio.wait_for(w.until_published(1), 2)
    w.inbox.deliver(raw("new"))
    await asyncio.wait_for(w.until_published(2), 2)
    task.cancel()

    assert w.subjects == ["old", "new"]
    assert await w.c.cursors.get("a1") == Cursor(UIDVALIDITY, 2)
    assert w.inbox.attempts == 1  # one session all along


async def test_a_refused_login_ends_the_watch_at_once() -> None:
    w = watching(FakePushInbox(logins=[REFUSED]))
    ended = await asyncio.wait_for(w.watch.run("a1"), 2)
    assert isinstance(ended, Failed) and ended.error.code is ErrorCode.AUTH_FAILED
    assert w.inbox.attempts == 1  # never a second bad login


@pytest.mark.usefixtures("instant_backoff")
async def test_a_lost_session_is_replaced_and_reading_goes_on() -> None:
    w = watching(FakePushInbox(logins=[None, DROPPED]))
    task = asyncio.create_task(w.watch.run("a1"))
    await asyncio.sleep(0.01)
    w.inbox.cut(DROPPED)  # the first session lost; the next login fails; the one after works
    while not w.inbox.sessions:
        await asyncio.sleep(0.005)
    w.inbox.deliver(raw("after"))
    await asyncio.wait_for(w.until_published(1), 2)
    task.cancel()
    assert w.inbox.attempts == 3 and w.subjects == ["after"]


@pytest.mark.usefixtures("instant_backoff")
async def test_replaced_sessions_that_keep_failing_end_the_watch() -> None:
    w = watching(FakePushInbox(logins=[DROPPED] * 5), reconnects=2)
    ended = await asyncio.wait_for(w.watch.run("a1"), 2)
    assert isinstance(ended, Failed) and ended.error.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert w.inbox.attempts == 3  # the first, then two replacements


async def test_a_server_without_idle_ends_the_watch_as_one_that_cannot_push() -> None:
    w = watching(FakePushInbox(push=False))
    assert isinstance(await asyncio.wait_for(w.watch.run("a1"), 2), NoPush)


@pytest.fixture
def instant_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reconnect backoff (1, 2, 4 s) without the waiting."""
    real_sleep = asyncio.sleep
    monkeypatch.setattr(asyncio, "sleep", lambda seconds: real_sleep(0))


@dataclass
class RecordingWatches:
    calls: list[tuple[str, str]] = field(default_factory=list)

    def is_watched(self, agent_id: str) -> bool:
        return False

    async def offer(self, agent_id: str) -> None:
        self.calls.append(("offer", agent_id))

    async def restart(self, agent_id: str) -> None:
        self.calls.append(("restart", agent_id))

    async def stop_watching(self, agent_id: str) -> None:
        self.calls.append(("stop", agent_id))


async def test_watched_while_connected_stopped_otherwise_and_when_disconnected() -> None:
    watches, broker = RecordingWatches(), NatsBroker()
    config_events.register(broker, container_of_fakes(watches=watches))
    events = [
        StatusChanged(
            agent_id="a1", status=MailboxStatus.CONNECTED, previous=MailboxStatus.CONFIGURED
        ),
        StatusChanged(agent_id="a1", status=MailboxStatus.ERROR, previous=MailboxStatus.CONNECTED),
        EmailConfigDeleted(agent_id="a2"),
        EmailConfigSaved(agent_id="a3", provider="imap", version=2),
        AgentUpdated(agent_id="a4", org_id="o2"),  # re-linked: its policy and banners changed
    ]
    async with TestNatsBroker(broker) as test_broker:
        for event in events:
            await test_broker.publish(event.model_dump(mode="json"), event.nats_subject())
    assert watches.calls == [
        ("offer", "a1"), ("stop", "a1"), ("stop", "a2"), ("restart", "a3"), ("restart", "a4"),
    ]  # fmt: skip
