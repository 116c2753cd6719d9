"""Sends through a three-node NATS cluster survive losing a node, and then the command stream's
leader: nothing lost, nothing sent twice.

The services (config-api, policy, oauth-broker, two mail-workers) run on a ``NatsCluster`` with
every URL in ``MAILBRIDGE_NATS_URL`` and ``MAILBRIDGE_STREAM_REPLICAS=3``, on the session's
PostgreSQL (a database of their own) and its Dovecot + Postfix. One burst of sends goes through
the HTTP API in three waves: the first, then a follower node SIGKILLed while it is in flight; the
second while that node is down, which is then started again; then the leader of ``MAIL_CMD``
(stream info's ``cluster.leader``) SIGKILLed, the third wave sent during its election, and the old
leader started again. Every send the API took (202) must end ``sent`` (or ``unknown``, counted)
and be in its recipient's inbox once. Postfix's log says how often each message was submitted, so
the test waits until Postfix delivered every submission, not for a duplicate that might come.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client

from mailbridge.devstack import maillog
from mailbridge.devstack.environment import Infrastructure
from mailbridge.devstack.mailstack import MailStack
from mailbridge.devstack.nats_cluster import NatsCluster
from mailbridge.devstack.system import RunningSystem, running_system
from mailbridge.mail_worker.domain.mime import message_id_for
from mailbridge.shared.crypto import generate_key_spec
from mailbridge.shared.ids import new_id
from mailbridge.shared.streams import MAIL_CMD
from tests.e2e.databases import own_database, stack_api
from tests.e2e.mailboxes import Agent, agent_with_mailbox, new_recipient
from tests.e2e.workers import message_ids_in, with_worker_replicas
from tests.support.waiting import eventually

REPLICAS = 3
WORKERS = 2
ACK_WAIT = 10.0  # a command whose ack died with a node comes back this soon
WAVE = 16  # sends per wave; three waves make the burst
PARALLEL = 4
SETTLED_WITHIN = 90.0
FINAL = frozenset({"sent", "unknown"})

api = stack_api  # this module's stack's client fixture


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    with NatsCluster(tmp_path_factory.mktemp("nats-cluster")) as running:
        yield running


@pytest.fixture(scope="module")
def stack(
    cluster: NatsCluster, postgres_dsn: str, mail_stack: MailStack,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningSystem]:  # fmt: skip
    directory = tmp_path_factory.mktemp("cluster-stack")
    with own_database(postgres_dsn, "clusterdb") as database_url:
        infra = Infrastructure(
            cluster.urls, database_url, generate_key_spec("cl"), mail_stack.endpoints.ca_file,
            "WARNING", stream_replicas=REPLICAS,
        )  # fmt: skip
        with running_system(
            infra, arrange=with_worker_replicas(WORKERS, ack_wait=ACK_WAIT),
            poll_interval=600.0, sink=directory / "services.log",
        ) as system:  # fmt: skip
            yield system


@pytest.fixture
async def bus(cluster: NatsCluster) -> AsyncIterator[Client]:
    """The test's own view of the cluster, reconnecting like the services do."""
    client = await nats.connect(cluster.urls.split(","), max_reconnect_attempts=-1)
    yield client
    await client.close()


# ---------------------------------------------------------------------------------------------
# sends


@dataclass(frozen=True)
class Send:
    sender: Agent
    to: Agent
    command_id: str

    @property
    def path(self) -> str:
        return f"/bridge/agents/{self.sender.agent_id}/messages/{self.command_id}"

    @property
    def message_id(self) -> str:
        return message_id_for(self.command_id, self.sender.address)


async def post_send(api: httpx.AsyncClient, sender: Agent, to: Agent, tally: Counter[str]) -> Send:
    """One send, asked again with its Idempotency-Key while the API answers 503 or the connection
    breaks, as a client retries (the key makes the retries one send); ``tally`` counts them."""
    key, body = new_id(), {"to": [to.address], "subject": "through the cluster", "text": "hi"}

    async def answered() -> httpx.Response | None:
        try:
            answer = await api.post(
                f"/bridge/agents/{sender.agent_id}/messages", json=body,
                headers={"Idempotency-Key": key},
            )  # fmt: skip
        except httpx.TransportError:
            tally["retried after a broken connection"] += 1
            return None
        if answer.status_code == 503:
            tally["retried after 503"] += 1
            return None
        return answer

    answer = await eventually(answered, what="the send answered", timeout=30, every=0.5)
    assert answer.status_code == 202, answer.text
    return Send(sender, to, answer.json()["command_id"])


async def wave(
    api: httpx.AsyncClient, senders: list[Agent], recipients: list[Agent], tally: Counter[str]
) -> list[Send]:
    gate = asyncio.Semaphore(PARALLEL)

    async def one(number: int) -> Send:
        async with gate:
            sender, to = senders[number % len(senders)], recipients[number % len(recipients)]
            return await post_send(api, sender, to, tally)

    return list(await asyncio.gather(*(one(n) for n in range(WAVE))))


async def outcomes(api: httpx.AsyncClient, sends: list[Send]) -> dict[Send, str]:
    """Each send's status as the HTTP API shows it."""
    gate = asyncio.Semaphore(8)

    async def one(send: Send) -> str:
        async with gate:
            answer = await api.get(send.path)
            answer.raise_for_status()
            return str(answer.json()["status"])

    return dict(zip(sends, await asyncio.gather(*(one(s) for s in sends)), strict=True))


async def settled(api: httpx.AsyncClient, sends: list[Send]) -> dict[Send, str]:
    async def all_final() -> dict[Send, str] | None:
        found = await outcomes(api, sends)
        return found if set(found.values()) <= FINAL else None

    return await eventually(
        all_final, what="every send sent or unknown", timeout=SETTLED_WITHIN, every=1.0
    )


# ---------------------------------------------------------------------------------------------
# the cluster


async def stream_leader(bus: Client, stream: str) -> str | None:
    """The node leading ``stream``, or None while there is none to answer (an election)."""
    try:
        info = await bus.jetstream().stream_info(stream)
    except (nats.errors.Error, TimeoutError):
        return None
    return info.cluster.leader if info.cluster is not None else None


async def replica_counts(bus: Client) -> dict[str, int]:
    return {
        str(info.config.name): int(info.config.num_replicas or 1)
        for info in await bus.jetstream().streams_info()
    }


async def restarted(cluster: NatsCluster, name: str) -> None:
    """The node started again on its ports and store, and caught up with the others."""
    await asyncio.to_thread(cluster.node(name).start)
    await asyncio.to_thread(cluster.wait_healthy)


# ---------------------------------------------------------------------------------------------
# what arrived


def submissions(mail_stack: MailStack, sends: list[Send]) -> Counter[str]:
    """How many times Postfix accepted each send's message (from its log)."""
    log = mail_stack.postfix_log
    return Counter({s.message_id: len(maillog.queue_ids(log, s.message_id)) for s in sends})


def delivered_everything(mail_stack: MailStack, sends: list[Send]) -> bool:
    """Whether Postfix delivered (or discarded) every submission: none is left in its queue."""
    log = mail_stack.postfix_log
    return all(
        len(maillog.recipients(log, s.message_id)) == len(maillog.queue_ids(log, s.message_id))
        for s in sends
    )


async def copies(mail_stack: MailStack, recipients: list[Agent]) -> Counter[str]:
    """Copies of each Message-ID across the recipients' inboxes, read over IMAP."""
    total: Counter[str] = Counter()
    for box in recipients:
        total.update(
            await asyncio.to_thread(message_ids_in, mail_stack.endpoints, box.address, box.password)
        )
    return total


def report(figures: dict[str, Any], log: Path) -> None:
    for name, value in figures.items():
        print(f"[nats-cluster] {name}: {value}")  # the figures this test exists to show
    log.write_text("".join(f"{name}: {value}\n" for name, value in figures.items()))


# ---------------------------------------------------------------------------------------------
# the test


@pytest.mark.timeout(240)  # the stack's start included
async def test_sends_through_the_cluster_survive_a_node_and_then_the_stream_leader_killed(
    cluster: NatsCluster, stack: RunningSystem, api: httpx.AsyncClient, bus: Client,
    mail_stack: MailStack, tmp_path: Path,
) -> None:  # fmt: skip
    began = time.monotonic()
    replicas = await replica_counts(bus)
    assert MAIL_CMD.name in replicas and "KV_MAIL_SEND_LEDGER" in replicas, replicas
    assert set(replicas.values()) == {REPLICAS}, replicas  # every stream and bucket, R3
    senders = [await agent_with_mailbox(api, mail_stack) for _ in range(3)]
    recipients = [Agent("", *await new_recipient(mail_stack)) for _ in range(3)]
    tally: Counter[str] = Counter()
    kills: list[str] = []

    sends = await wave(api, senders, recipients, tally)
    leader = await eventually(lambda: stream_leader(bus, MAIL_CMD.name), what="a leader")
    follower = next(name for name in cluster.nodes if name != leader)
    cluster.node(follower).kill()  # the first wave still in flight
    kills.append(f"{follower} (follower)")
    sends += await wave(api, senders, recipients, tally)
    await restarted(cluster, follower)

    leader = await eventually(lambda: stream_leader(bus, MAIL_CMD.name), what="a leader")
    cluster.node(leader).kill()
    killed_at = time.monotonic()
    kills.append(f"{leader} (leader of {MAIL_CMD.name})")
    sends += await wave(api, senders, recipients, tally)
    successor = await eventually(
        lambda: _another_leader(bus, leader), what=f"a {MAIL_CMD.name} leader other than {leader}"
    )
    elected_within = time.monotonic() - killed_at
    await restarted(cluster, leader)

    final = await settled(api, sends)
    await eventually(
        lambda: asyncio.to_thread(delivered_everything, mail_stack, sends),
        what="every submission delivered by Postfix", timeout=60, every=0.5,
    )  # fmt: skip
    submitted = submissions(mail_stack, sends)
    found = await copies(mail_stack, recipients)
    statuses = Counter(final.values())
    report(
        {
            "sends in the burst (all answered 202)": len(sends),
            "retries of a POST": dict(tally) or "none",
            "nodes SIGKILLed and restarted": ", ".join(kills),
            f"new {MAIL_CMD.name} leader": f"{successor} within {elected_within:.1f}s",
            "outcomes": dict(statuses),
            "submitted to Postfix more than once": sum(n > 1 for n in submitted.values()),
            "copies in the inboxes": sum(found.values()),
            "runtime of the test (stack start excluded)": f"{time.monotonic() - began:.1f}s",
        },
        tmp_path / "figures.txt",
    )

    assert set(statuses) <= FINAL, statuses
    for send, status in final.items():
        expected = {1} if status == "sent" else {0, 1}  # unknown: sent at most once
        assert found[send.message_id] in expected, (send, status, found[send.message_id])
        assert submitted[send.message_id] == found[send.message_id], send
    assert set(found) <= {s.message_id for s in sends}, found  # nothing but our sends


async def _another_leader(bus: Client, old: str) -> str | None:
    leader = await stream_leader(bus, MAIL_CMD.name)
    return leader if leader not in (None, old) else None
