"""The watch leases on a real JetStream: a mailbox offered is claimed by one worker only, every
worker sees who holds what, and a worker that stops beating loses its mailboxes a lease later."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from mailbridge.mail_worker.adapters.watch_leases import MAILBOXES, WORKERS, NatsKvWatchLeases

pytestmark = pytest.mark.integration

LEASE = 1.5
Leases = Callable[[], Awaitable[NatsKvWatchLeases]]


@pytest.fixture
async def leases(js: JetStreamContext) -> AsyncIterator[Leases]:
    for bucket in (MAILBOXES, WORKERS):  # each test starts from no leases
        with contextlib.suppress(NotFoundError):  # not made yet
            await js.delete_key_value(bucket)
    started: list[NatsKvWatchLeases] = []

    async def make() -> NatsKvWatchLeases:
        made = NatsKvWatchLeases(LEASE)
        await made.start(js)
        started.append(made)
        return made

    yield make
    for each in started:
        await each.stop()


async def until(condition: Callable[[], bool], seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the KV watch never told"
        await asyncio.sleep(0.02)


async def test_one_worker_wins_a_mailbox_and_both_see_it(leases: Leases) -> None:
    a, b = await leases(), await leases()
    await a.offer("agent-1")
    await until(lambda: "agent-1" in b.share().entries)
    won = await asyncio.gather(a.claim("agent-1"), b.claim("agent-1"))
    assert sorted(won) == [False, True]
    winner = a if won[0] else b
    await until(lambda: a.share().owned_by(winner.worker_id) == {"agent-1"})
    await until(lambda: b.share().is_watched("agent-1"))


async def test_a_worker_that_stops_beating_loses_its_mailboxes_a_lease_later(
    leases: Leases,
) -> None:
    a, b = await leases(), await leases()
    await a.offer("agent-2")
    await until(lambda: "agent-2" in a.share().entries)
    assert await a.claim("agent-2")
    await until(lambda: b.share().is_watched("agent-2"))
    began = time.monotonic()
    await until(lambda: not b.share().is_watched("agent-2"), seconds=LEASE * 4)  # a never beats
    assert time.monotonic() - began >= LEASE / 2
    assert await b.claim("agent-2")  # a's entry, unchanged since: b takes it over


async def test_a_forgotten_mailbox_is_gone_for_every_worker(leases: Leases) -> None:
    a, b = await leases(), await leases()
    await a.offer("agent:3@x")  # characters a KV key cannot hold
    await until(lambda: "agent:3@x" in b.share().entries)
    await b.forget("agent:3@x")
    assert "agent:3@x" not in b.share().entries  # at once where it was said, not at the echo
    await until(lambda: "agent:3@x" not in a.share().entries)
    await a.offer("agent:3@x")  # offered again: known again everywhere
    await until(lambda: "agent:3@x" in b.share().entries)


async def test_a_mailbox_marked_as_one_that_cannot_push_is_so_at_once(leases: Leases) -> None:
    a = await leases()
    await a.offer("agent-4")
    await until(lambda: "agent-4" in a.share().entries)
    assert await a.claim("agent-4")
    await a.unpushable("agent-4")
    assert not a.share().is_watched("agent-4")  # the same round must not start it again
    assert a.share().owned_by(a.worker_id) == set()
