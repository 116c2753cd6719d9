"""Receiving as mail arrives (IMAP IDLE) with two mail-worker replicas, the real Dovecot and Postfix.

Mail submitted to Postfix is one ``message.received`` within 2 s (the poll interval is 15 s, so
only a push can be that quick). The worker that watches a mailbox is SIGKILLed: the other takes
the mailbox over one lease later, and the mail that came meanwhile arrives once each. A session
the server cuts is replaced. A worker stopped (SIGTERM) hands its mailboxes over at once; one
that joins takes its share.
Disconnecting stops the watch within a second; connecting again starts it within a second.

The stack is this module's own (NATS server, database), its workers with a 2 s lease.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from nats.aio.client import Client

from mailbridge.devstack.mailstack import MailStack
from mailbridge.devstack.system import RunningSystem
from tests.e2e.databases import own_system, stack_api, stack_bus
from tests.e2e.mailboxes import (
    Agent,
    Inbox,
    agent_with_mailbox,
    imap_config,
    mail_through_postfix,
    run_test,
)
from tests.e2e.metrics import counted, metrics_of
from tests.e2e.watches import (
    live_workers,
    owners,
    replica_named_by,
    watch_entry,
    watcher_of,
    worker_id_of,
)
from tests.e2e.workers import SERVICE, ensure_running, kill, replica_names, with_worker_replicas
from tests.support.waiting import eventually

api, bus = stack_api, stack_bus  # this module's stack's client fixtures

WORKERS = replica_names(SERVICE, 2)
LEASE_SECONDS = 2.0
PUSH_WITHIN_SECONDS = 2.0
RECONNECTS = "mailbridge_watch_reconnects_total"


@pytest.fixture(scope="module")
def stack(
    postgres_dsn: str, mail_stack: MailStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSystem]:
    lease = {"MAILBRIDGE_WATCH_LEASE_SECONDS": str(LEASE_SECONDS)}
    with own_system(
        postgres_dsn, tmp_path_factory.mktemp("push"), "pushdb",
        ca_file=mail_stack.endpoints.ca_file,
        arrange=with_worker_replicas(len(WORKERS), ack_wait=20.0, env=lease),
    ) as system:  # fmt: skip
        yield system


async def watched_agent(api: httpx.AsyncClient, bus: Client, mail_stack: MailStack) -> Agent:
    agent = await agent_with_mailbox(api, mail_stack)
    assert (await run_test(api, agent)).json()["ok"]
    await watcher_of(bus, agent)
    return agent


async def subscribed(bus: Client, agent: Agent) -> Inbox:
    inbox = Inbox()
    await inbox.subscribe(bus.jetstream(), agent.agent_id)
    return inbox


async def test_mail_through_postfix_is_one_event_within_two_seconds(
    api: httpx.AsyncClient, bus: Client, mail_stack: MailStack
) -> None:
    agent = await watched_agent(api, bus, mail_stack)
    inbox = await subscribed(bus, agent)
    latencies = []
    for number in range(3):
        accepted = await mail_through_postfix(mail_stack, agent.address, f"push {number}")
        await inbox.until(number + 1)
        latencies.append(inbox.arrived_at[number] - accepted)

    assert [e["subject"] for e in inbox.events] == ["push 0", "push 1", "push 2"]
    assert max(latencies) <= PUSH_WITHIN_SECONDS, latencies


async def test_the_watching_worker_killed_the_other_takes_over_and_nothing_is_missed_or_doubled(
    api: httpx.AsyncClient, bus: Client, mail_stack: MailStack, stack: RunningSystem
) -> None:
    agent = await watched_agent(api, bus, mail_stack)
    inbox = await subscribed(bus, agent)
    first = await watcher_of(bus, agent)
    await asyncio.to_thread(kill, stack.supervisor, replica_named_by(stack, first))
    killed_at = time.monotonic()
    for number in range(3):  # while no one watches
        await mail_through_postfix(mail_stack, agent.address, f"meanwhile {number}")
    second = await watcher_of(bus, agent, besides=first)
    taken_after = time.monotonic() - killed_at
    await inbox.until(3)
    accepted = await mail_through_postfix(mail_stack, agent.address, "after")
    await inbox.until(4)
    await asyncio.to_thread(ensure_running, stack.supervisor, WORKERS)

    assert second != first and taken_after <= LEASE_SECONDS + 3  # a lease, then the next round
    subjects = [e["subject"] for e in inbox.events]
    assert subjects == ["meanwhile 0", "meanwhile 1", "meanwhile 2", "after"]
    assert len({e["uid"] for e in inbox.events}) == 4
    assert inbox.arrived_at[3] - accepted <= PUSH_WITHIN_SECONDS


async def test_a_session_the_server_cuts_is_replaced_and_mail_keeps_coming(
    api: httpx.AsyncClient, bus: Client, mail_stack: MailStack, stack: RunningSystem
) -> None:
    agent = await watched_agent(api, bus, mail_stack)
    inbox = await subscribed(bus, agent)
    watcher = replica_named_by(stack, await watcher_of(bus, agent))
    reconnects = counted(await metrics_of(stack, watcher), RECONNECTS)

    await asyncio.to_thread(mail_stack.kick, agent.address)

    async def replaced() -> bool:
        return counted(await metrics_of(stack, watcher), RECONNECTS) > reconnects

    await eventually(replaced, what="the cut session replaced")
    await mail_through_postfix(mail_stack, agent.address, "after the cut")
    assert [e["subject"] for e in await inbox.until(1)] == ["after the cut"]


async def test_disconnecting_stops_the_watch_and_connecting_starts_it_within_a_second(
    api: httpx.AsyncClient, bus: Client, mail_stack: MailStack
) -> None:
    agent = await watched_agent(api, bus, mail_stack)
    (await api.delete(f"/bridge/agents/{agent.agent_id}/email-config")).raise_for_status()
    answered = time.monotonic()

    async def unwatched() -> bool:
        return await watch_entry(bus, agent) is None

    await eventually(unwatched, what="the watch stopped", every=0.05)
    assert time.monotonic() - answered <= 1.0

    config = imap_config(mail_stack.endpoints, agent.address, agent.password)
    (await api.put(f"/bridge/agents/{agent.agent_id}/email-config", json=config)).raise_for_status()
    assert (await run_test(api, agent)).json()["ok"]  # connected again
    connected_at = time.monotonic()
    await watcher_of(bus, agent)
    assert time.monotonic() - connected_at <= 1.0


async def test_a_worker_stopping_hands_over_one_joining_takes_its_share_and_mail_keeps_coming(
    api: httpx.AsyncClient, bus: Client, mail_stack: MailStack, stack: RunningSystem
) -> None:
    leaving = worker_id_of(stack, WORKERS[1], await live_workers(bus))
    await asyncio.to_thread(stack.supervisor.stop_service, WORKERS[1])  # SIGTERM
    assert leaving not in await live_workers(bus)  # handed over: no one waits out its lease
    assert leaving not in await owners(bus)
    agents = [await watched_agent(api, bus, mail_stack) for _ in range(4)]  # all on the other
    await asyncio.to_thread(ensure_running, stack.supervisor, WORKERS)

    async def evened() -> Counter[str] | None:
        held = await owners(bus)
        even = len(held) == 2 and "" not in held and max(held.values()) - min(held.values()) <= 1
        return held if even else None

    await eventually(evened, what="the watched mailboxes shared by both workers")
    inboxes = [await subscribed(bus, agent) for agent in agents]
    for agent in agents:
        await mail_through_postfix(mail_stack, agent.address, f"to {agent.agent_id}")
    for agent, inbox in zip(agents, inboxes, strict=True):
        assert [e["subject"] for e in await inbox.until(1)] == [f"to {agent.agent_id}"]
