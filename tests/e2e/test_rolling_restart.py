"""A rolling restart of every mail-worker during a burst of sends loses nothing and sends nothing
twice: each worker is sent SIGTERM, drains the sends it holds, exits 0 and is started again.

Sends go through a loopback proxy that throttles what reaches Postfix, so each takes about a
second and every worker holds some when it is told to stop. Counted where they land (Dovecot,
per Message-ID, which the worker derives from the command id): every send ``sent``, none
``unknown``, each arrived exactly once, whether its command was redelivered or not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from nats.aio.client import Client

from mailbridge.devstack.mailstack import MailStack
from mailbridge.devstack.system import RunningSystem
from tests.e2e.databases import own_system, stack_api, stack_bus
from tests.e2e.mailboxes import (
    Agent,
    new_recipient,
    sender_through,
    settled,
    throttled_submission,
)
from tests.e2e.workers import (
    SERVICE,
    AckTap,
    message_ids_in,
    replica_names,
    wait_ready,
    with_worker_replicas,
)

api, bus = stack_api, stack_bus  # this module's stack's client fixtures

WORKERS = 3
WORKER_NAMES = replica_names(SERVICE, WORKERS)
BURST = 60
DRAIN_SECONDS = 20.0  # far above a throttled send (~1 s): every held send finishes in the drain
# A command the server handed to a stopping worker's last pull request, in the instant between
# its last fetch and its unsubscribe, is not lost but comes back only after the ack wait: short
# here, so such a one settles within the test's wait too (and is still sent only once).
ACK_WAIT = 10.0
SMTP_BYTES_PER_SECOND = 1500  # a STARTTLS session and a small message: a few seconds each
WORKER_ENV = {
    "MAILBRIDGE_CONCURRENCY": "2",
    "MAILBRIDGE_DRAIN_SECONDS": str(DRAIN_SECONDS),
    "MAILBRIDGE_LOG_LEVEL": "INFO",  # the drain's own lines, counted below
}


@pytest.fixture(scope="module")
def stack(
    postgres_dsn: str, mail_stack: MailStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSystem]:
    with own_system(
        postgres_dsn, tmp_path_factory.mktemp("rolling-restart"), "rollingdb",
        ca_file=mail_stack.endpoints.ca_file, only={"config-api", "policy", SERVICE},
        arrange=with_worker_replicas(WORKERS, ack_wait=ACK_WAIT, env=WORKER_ENV),
        poll_interval=600.0,
    ) as system:  # fmt: skip
        yield system


@pytest.fixture
async def slow_smtp(mail_stack: MailStack) -> AsyncIterator[int]:
    async with throttled_submission(mail_stack, SMTP_BYTES_PER_SECOND) as port:
        yield port


@pytest.mark.timeout(300)
async def test_a_rolling_restart_during_a_burst_sends_every_message_exactly_once(
    api: httpx.AsyncClient, bus: Client, stack: RunningSystem, mail_stack: MailStack,
    slow_smtp: int,
) -> None:  # fmt: skip
    sender = await sender_through(api, mail_stack, slow_smtp, org_id="org-rolling")
    recipient, recipient_password = await new_recipient(mail_stack)
    tap = AckTap()
    await tap.start(bus)
    log_start = len(stack.log_text())

    command_ids = await asyncio.gather(*(send(api, sender, recipient, n) for n in range(BURST)))
    exits = [await asyncio.to_thread(restart, stack, name) for name in WORKER_NAMES]
    outcomes = [
        await settled(api, f"/bridge/agents/{sender.agent_id}/messages/{c}") for c in command_ids
    ]
    await tap.stop()

    assert exits == [0] * WORKERS
    assert [o["status"] for o in outcomes] == ["sent"] * BURST  # none unknown, none failed
    domain = sender.address.rpartition("@")[2]
    arrived = await asyncio.to_thread(
        message_ids_in, mail_stack.endpoints, recipient, recipient_password
    )
    assert {f"<{c}@{domain}>": arrived[f"<{c}@{domain}>"] for c in command_ids} == {
        f"<{c}@{domain}>": 1 for c in command_ids
    }  # each exactly once: no redelivered command was sent again
    drained = stack.log_text()[log_start:].count("draining ")
    assert drained >= 1, "no worker held a send when told to stop: the test proved nothing"
    print(
        f"burst {BURST}, restarts {WORKERS}, drains with sends in flight {drained},"
        f" naks {tap.other['-NAK']}, redelivered {tap.redelivered()}"
    )


async def send(api: httpx.AsyncClient, sender: Agent, recipient: str, number: int) -> str:
    body = {"to": [recipient], "subject": f"rolling {number}", "text": "once"}
    answer = await api.post(f"/bridge/agents/{sender.agent_id}/messages", json=body)
    assert answer.status_code == 202, answer.text
    command_id: str = answer.json()["command_id"]
    return command_id


def restart(stack: RunningSystem, name: str) -> int | None:
    """SIGTERM one worker, wait for it to exit (its drain included), start it, wait until ready;
    answers its exit status."""
    status = stack.supervisor.stop_service(name, timeout=DRAIN_SECONDS + 15)
    stack.supervisor.start_service(name)
    wait_ready(stack.supervisor, name)
    return status
