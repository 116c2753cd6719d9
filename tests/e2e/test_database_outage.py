"""PostgreSQL stopped for ten seconds during a burst of sends, and started again (a real fast
shutdown and start on the same data and port, on a server of this module's own).

What a user sees: while it is away, config-api answers 503 ``database_unavailable`` (never a
500) and its readiness says the database is down; sends queued before keep going out (the
mail-worker needs no database); a send whose authorization meets policy's outage waits and goes
out later (policy answers "retry", never "allowed"); once the server is back, config-api
answers 202 again by itself, and every send answered 202 ends ``sent``, each delivered once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from mailbridge.devstack.mailstack import MailStack
from mailbridge.devstack.postgres import EmbeddedPostgres
from mailbridge.devstack.system import RunningSystem
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import MessageSent
from tests.e2e.databases import own_system, stack_api, stack_bus
from tests.e2e.mailboxes import (
    Agent,
    new_recipient,
    sender_through,
    settled,
    throttled_submission,
)
from tests.e2e.metrics import counted, metrics_of
from tests.e2e.workers import SERVICE, message_ids_in, with_worker_replicas
from tests.support.waiting import eventually

api, bus = stack_api, stack_bus  # this module's stack's client fixtures

ORG = "org-outage"
OUTAGE_SECONDS = 10.0
PROBE_EVERY = 0.25  # how often a client tries during the outage
BURST = 18  # queued before the stop: every third from the agent whose sends policy checks
AFTER = 4  # sent once the server is back
SMTP_BYTES_PER_SECOND = 1500  # a few seconds a send: the burst is still going out at the stop
CONCURRENCY = 2
WORKER_ENV = {"MAILBRIDGE_CONCURRENCY": str(CONCURRENCY)}


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this module's own: the session's is shared, and this one is stopped."""
    with EmbeddedPostgres(tmp_path_factory.mktemp("outage-postgres")) as server:
        yield server


@pytest.fixture(scope="module")
def stack(
    postgres: EmbeddedPostgres, mail_stack: MailStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSystem]:
    with own_system(
        postgres.dsn, tmp_path_factory.mktemp("database-outage"), "outagedb",
        ca_file=mail_stack.endpoints.ca_file, only={"config-api", "policy", SERVICE},
        arrange=with_worker_replicas(1, ack_wait=30.0, env=WORKER_ENV), poll_interval=600.0,
    ) as system:  # fmt: skip
        yield system


@pytest.fixture
async def slow_smtp(mail_stack: MailStack) -> AsyncIterator[int]:
    async with throttled_submission(mail_stack, SMTP_BYTES_PER_SECOND) as port:
        yield port


@dataclass
class Outage:
    """What clients saw while the database was away, and when it was."""

    began: float = 0.0
    ended: float = 0.0
    sends: list[httpx.Response] = field(default_factory=list)
    readiness: list[httpx.Response] = field(default_factory=list)

    def statuses(self) -> set[int]:
        return {answer.status_code for answer in self.sends}

    def codes(self) -> set[str]:
        return {answer.json().get("code") for answer in self.sends}


@pytest.mark.timeout(300)
async def test_a_database_outage_during_a_burst_answers_503_and_loses_no_send(
    api: httpx.AsyncClient, bus: Client, stack: RunningSystem, postgres: EmbeddedPostgres,
    mail_stack: MailStack, slow_smtp: int,
) -> None:  # fmt: skip
    unchecked = await sender_through(api, mail_stack, slow_smtp, org_id=ORG)
    checked = await sender_through(
        api, mail_stack, slow_smtp, org_id=ORG, client_org_id=await limited_client_org(api)
    )
    recipient, recipient_password = await new_recipient(mail_stack)
    sent_at = await sent_times(bus)
    config_api_pid = stack.supervisor.pids()["config-api"]

    # one send each first: the worker then holds both agents' credentials (it keeps them 30 s;
    # a send it has none for asks config-api, and that one waits for the database too)
    warm_up = [await send(api, agent, recipient, -3) for agent in (checked, unchecked)]
    for agent, command_id in warm_up:
        await settled(api, f"{messages_of(agent)}/{command_id}")
    senders = [checked if n % 3 == 0 else unchecked for n in range(BURST)]
    queued = [await send(api, agent, recipient, n) for n, agent in enumerate(senders)]
    outage = await database_away(api, postgres, unchecked, recipient)
    refused_after_start, recovered = await answers_until_accepted(api, unchecked, recipient)
    after = [await send(api, unchecked, recipient, BURST + n) for n in range(AFTER)]

    accepted = [*warm_up, *queued, recovered, *after]
    outcomes = [
        await settled(api, f"/bridge/agents/{a.agent_id}/messages/{c}") for a, c in accepted
    ]
    assert outage.statuses() == {503} and outage.codes() == {"database_unavailable"}
    assert {r.status_code for r in outage.readiness} == {503}
    assert all(r.json()["database"] is False for r in outage.readiness)
    assert stack.supervisor.pids()["config-api"] == config_api_pid  # recovered by itself
    assert [o["status"] for o in outcomes] == ["sent"] * len(accepted)  # none blocked, none lost
    arrived = await asyncio.to_thread(
        message_ids_in, mail_stack.endpoints, recipient, recipient_password
    )
    expected = {message_id(agent, command_id): 1 for agent, command_id in accepted}
    assert {m: arrived[m] for m in expected} == expected  # each exactly once
    meanwhile = [t for t in sent_at[unchecked.agent_id] if outage.began < t < outage.ended]
    # more than the worker holds at once: some were taken and authorized after the stop
    assert len(meanwhile) > CONCURRENCY, "queued sends did not keep going out meanwhile"
    policy_metrics = await metrics_of(stack, "policy")
    retried = counted(policy_metrics, 'mailbridge_policy_send_decisions_total{decision="retry"}')
    assert retried >= 1, "no authorization met policy's outage: the test proved nothing"
    print(
        f"outage {outage.ended - outage.began:.1f} s; burst {BURST} queued before, {AFTER} after;"
        f" 503 database_unavailable during it {len(outage.sends)}, readiness 503 {len(outage.readiness)};"
        f" 503 after the start before the first 202 {refused_after_start};"
        f" sent during it {len(meanwhile)}; policy 'retry' answers {retried:.0f}"
    )


async def limited_client_org(api: httpx.AsyncClient) -> str:
    """A client org with a send limit: authorizing its agents' sends reads and reserves in
    policy's database."""
    client_org_id = new_id("client")
    body = {"name": "Limited", "restrictions": {"max_per_hour": 1000}}
    (await api.put(f"/bridge/orgs/{ORG}/client-orgs/{client_org_id}", json=body)).raise_for_status()
    return client_org_id


async def database_away(
    api: httpx.AsyncClient, postgres: EmbeddedPostgres, sender: Agent, recipient: str
) -> Outage:
    """Stop PostgreSQL, try a send and the readiness every PROBE_EVERY for OUTAGE_SECONDS,
    and start it again."""
    outage = Outage(began=time.monotonic())
    await asyncio.to_thread(postgres.stop)
    try:
        while time.monotonic() - outage.began < OUTAGE_SECONDS:
            outage.sends.append(await api.post(messages_of(sender), json=body_to(recipient, -1)))
            outage.readiness.append(await api.get("/readyz"))
            await asyncio.sleep(PROBE_EVERY)
    finally:
        await asyncio.to_thread(postgres.start)
        outage.ended = time.monotonic()
    return outage


async def answers_until_accepted(
    api: httpx.AsyncClient, sender: Agent, recipient: str
) -> tuple[int, tuple[Agent, str]]:
    """After the start, one send (one Idempotency-Key) tried until config-api accepts it, with
    no service restarted; answers how many 503s came first, and the accepted send."""
    refused = 0
    key = {"Idempotency-Key": new_id("recovery")}

    async def accepted() -> str | None:
        nonlocal refused
        answer = await api.post(messages_of(sender), json=body_to(recipient, -2), headers=key)
        assert answer.status_code in (202, 503), answer.text
        refused += answer.status_code == 503
        return answer.json()["command_id"] if answer.status_code == 202 else None

    command_id = await eventually(accepted, what="config-api accepting sends", timeout=30)
    return refused, (sender, command_id)


async def sent_times(bus: Client) -> dict[str, list[float]]:
    """When each ``sent`` event arrived (monotonic), by agent, from now on."""
    times: dict[str, list[float]] = {}

    async def record(msg: Msg) -> None:
        event = MessageSent.model_validate_json(msg.data)
        times.setdefault(event.agent_id, []).append(time.monotonic())

    await bus.subscribe(MessageSent.subscription(), cb=record)
    return times


async def send(
    api: httpx.AsyncClient, sender: Agent, recipient: str, number: int
) -> tuple[Agent, str]:
    answer = await api.post(messages_of(sender), json=body_to(recipient, number))
    assert answer.status_code == 202, answer.text
    return sender, answer.json()["command_id"]


def messages_of(agent: Agent) -> str:
    return f"/bridge/agents/{agent.agent_id}/messages"


def body_to(recipient: str, number: int) -> dict[str, object]:
    return {"to": [recipient], "subject": f"outage {number}", "text": "once"}


def message_id(agent: Agent, command_id: str) -> str:
    """The Message-ID the worker derives from the command id, in the sender's domain."""
    return f"<{command_id}@{agent.address.rpartition('@')[2]}>"
