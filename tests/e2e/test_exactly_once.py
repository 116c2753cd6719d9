"""Exactly once, through three mail-worker replicas and real SIGKILLs.

The pipeline is the real one: HTTP → outbox → NATS (one durable consumer shared by the replicas) →
mail-worker → Postfix → Dovecot. Each message is counted where it lands, per Message-ID (the worker
derives it from the command id, so a resend would show as a second copy of the same id).

- at scale: 2,000 sends across 50 mailboxes: every one ``sent`` and delivered exactly once;
- a replica SIGKILLed a third of the way through: its commands come back after the ack wait; each
  ends ``sent`` and arrived once, or ``unknown`` (killed after the data began) and arrived at most
  once; nothing stays ``queued``;
- a kill at each moment of one send (before the SMTP session, after the server's 250 but before
  the ack, in the middle of DATA), made exact by a TCP proxy that holds, throttles or cuts;
- two deliveries of one command in flight at once (a worker stalled past the ack wait): the
  ledger's atomic claim before DATA lets only one of them send.

The stack is this module's own (NATS server, database): a shared consumer would let another
test's workers take our commands. Its workers run with a shorter ack wait than the default
(``MAILBRIDGE_ACK_WAIT_SECONDS``), so the kill tests wait less for redeliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from nats.aio.client import Client

from mailbridge.devstack.environment import Infrastructure
from mailbridge.devstack.mailstack import MailStack
from mailbridge.devstack.system import RunningSystem, running_system
from mailbridge.shared.crypto import generate_key_spec
from mailbridge.shared.ids import new_id
from tests.e2e.databases import own_infrastructure, stack_bus
from tests.e2e.mailboxes import Agent as Mailbox
from tests.e2e.mailboxes import imap_config
from tests.e2e.workers import (
    SERVICE,
    AckTap,
    consumer_ack_wait,
    ensure_running,
    kill,
    ledger_state,
    message_ids_in,
    pending_seq,
    replica_names,
    restart_with_ack_wait,
    with_worker_replicas,
)
from tests.support.proxy import Proxy
from tests.support.waiting import eventually

bus = stack_bus  # this module's stack's client fixtures

WORKERS = 3
# The workers' MAILBRIDGE_ACK_WAIT_SECONDS (60 by default): a killed worker's commands come back
# after it; a live send says it is in progress every third of it, so it is never redelivered.
ACK_WAIT = 25.0
WORKER_NAMES = replica_names(SERVICE, WORKERS)
ORG = "org-exactly-once"
QUIET_SECONDS = 3.0  # once every copy is in: a duplicate in Postfix's queue would be in by now


@pytest.fixture(scope="module")
def stack(
    postgres_dsn: str, mail_stack: MailStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSystem]:
    """config-api, policy and the worker replicas, their logs in one file of the module's own."""
    directory = tmp_path_factory.mktemp("exactly-once")
    with own_infrastructure(postgres_dsn, directory / "nats", "eodb") as (nats_url, database_url):
        infra = Infrastructure(
            nats_url, database_url, generate_key_spec("eo"), mail_stack.endpoints.ca_file, "WARNING"
        )
        with running_system(
            infra,
            only={"config-api", "policy", SERVICE},
            arrange=with_worker_replicas(WORKERS, ack_wait=ACK_WAIT),
            poll_interval=600.0,
            sink=directory / "services.log",
        ) as system:
            yield system


def log_lines_with(stack: RunningSystem, text: str, since: int) -> int:
    """Lines of the services' log that mention ``text``, from offset ``since`` on."""
    return sum(1 for line in stack.log_text()[since:].splitlines() if text in line)


@pytest.fixture
async def api(stack: RunningSystem) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {stack.operator_key}"}
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(
        base_url=stack.base_url, timeout=30, headers=headers, limits=limits
    ) as client:
        yield client


@pytest.fixture
async def db(stack: RunningSystem) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=2)
    assert pool is not None
    yield pool
    await pool.close()


# ---------------------------------------------------------------------------------------------
# mailboxes, sends and what came of them


@dataclass(frozen=True)
class Send:
    sender: Mailbox
    recipient: Mailbox
    subject: str
    command_id: str = ""

    @property
    def message_id(self) -> str:  # mime.message_id_for: the command id at the sender's domain
        return f"<{self.command_id}@{self.sender.address.rpartition('@')[2]}>"


async def mailboxes(
    api: httpx.AsyncClient,
    mail_stack: MailStack,
    count: int,
    *,
    smtp_port: int | None = None,
    imap_port: int | None = None,
) -> list[Mailbox]:
    """``count`` agents, each with a Dovecot mailbox of the stack's domain and its config saved
    (optionally reaching Postfix or Dovecot through a proxy's port)."""
    gate = asyncio.Semaphore(8)

    async def one() -> Mailbox:
        async with gate:
            agent_id = new_id("agent")
            password = "app-" + new_id()
            address = await asyncio.to_thread(
                mail_stack.create_mailbox, agent_id.replace("_", "-"), password
            )
            put = await request(api, "PUT", f"/bridge/agents/{agent_id}", json={"org_id": ORG})
            put.raise_for_status()
            config = imap_config(mail_stack.endpoints, address, password)
            if smtp_port is not None:
                config["smtp"]["port"] = smtp_port
            if imap_port is not None:
                config["imap"]["port"] = imap_port
            path = f"/bridge/agents/{agent_id}/email-config"
            saved = await request(api, "PUT", path, json=config)
            saved.raise_for_status()
            return Mailbox(agent_id, address, password)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def request(api: httpx.AsyncClient, method: str, path: str, **kw: Any) -> httpx.Response:
    """One request; tried again (three times) when the connection broke before an answer, e.g. a
    kept-alive connection the server closed just as it was reused. Only for idempotent requests:
    every POST here carries an Idempotency-Key."""
    for attempt in range(3):
        try:
            return await api.request(method, path, **kw)
        except httpx.TransportError:
            if attempt == 2:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


async def post(api: httpx.AsyncClient, send: Send, **extra: Any) -> Send:
    body = {"to": [send.recipient.address], "subject": send.subject, "text": "exactly once"}
    answer = await request(
        api,
        "POST",
        f"/bridge/agents/{send.sender.agent_id}/messages",
        json={**body, **extra},
        headers={"Idempotency-Key": new_id()},
    )
    assert answer.status_code == 202, answer.text
    return Send(send.sender, send.recipient, send.subject, answer.json()["command_id"])


async def post_all(api: httpx.AsyncClient, planned: list[Send], parallel: int = 24) -> list[Send]:
    """Every planned send through the API, ``parallel`` at a time."""
    gate = asyncio.Semaphore(parallel)

    async def one(send: Send) -> Send:
        async with gate:
            return await post(api, send)

    return list(await asyncio.gather(*(one(s) for s in planned)))


async def status_counts(db: asyncpg.Pool, command_ids: list[str]) -> Counter[str]:
    rows = await db.fetch(
        "SELECT status, count(*) AS n FROM config_api.http_sends"
        " WHERE command_id = ANY($1::text[]) GROUP BY status",
        command_ids,
    )
    return Counter({row["status"]: row["n"] for row in rows})


async def wait_settled(
    db: asyncpg.Pool, command_ids: list[str], timeout: float, stack: RunningSystem
) -> Counter[str]:
    """Until none of the commands is ``queued`` (read from the database: cheap to poll)."""

    async def none_queued() -> Counter[str] | None:
        counts = await status_counts(db, command_ids)
        return None if counts["queued"] else counts

    try:
        return await eventually(
            none_queued, what="no send queued any more", timeout=timeout, every=0.5
        )
    except AssertionError as late:
        counts = dict(await status_counts(db, command_ids))
        raise AssertionError(f"{late}: {counts}\n{stack.log_tail()}") from None


async def http_statuses(api: httpx.AsyncClient, sends: list[Send]) -> dict[str, dict[str, Any]]:
    """Every send's status as the HTTP API shows it."""
    gate = asyncio.Semaphore(24)

    async def one(send: Send) -> tuple[str, dict[str, Any]]:
        async with gate:
            path = f"/bridge/agents/{send.sender.agent_id}/messages/{send.command_id}"
            answer = await request(api, "GET", path)
            answer.raise_for_status()
            return send.command_id, dict(answer.json())

    return dict(await asyncio.gather(*(one(s) for s in sends)))


async def wait_delivered(
    mail_stack: MailStack, expected: dict[Mailbox, int], timeout: float
) -> dict[Mailbox, int]:
    """Until each inbox holds at least its expected count (LMTP delivery is asynchronous), then a
    little longer, so a late duplicate still in Postfix's queue would be counted too."""

    async def counts() -> dict[Mailbox, int]:
        found = await asyncio.gather(
            *(
                asyncio.to_thread(mail_stack.count_messages, box.address, "INBOX")
                for box in expected
            )
        )
        return dict(zip(expected, found, strict=True))

    async def all_in() -> dict[Mailbox, int] | None:
        found = await counts()
        return found if all(found[box] >= n for box, n in expected.items()) else None

    try:
        await eventually(all_in, what="every expected copy delivered", timeout=timeout, every=0.5)
    except AssertionError as late:
        found = await counts()
        short = {b.address: (found[b], n) for b, n in expected.items() if found[b] != n}
        raise AssertionError(f"{late} (found, expected): {short}") from None
    await asyncio.sleep(QUIET_SECONDS)
    return await counts()


async def copies(mail_stack: MailStack, boxes: set[Mailbox]) -> Counter[str]:
    """Copies of each Message-ID across the inboxes."""
    mail = mail_stack.endpoints
    gate = asyncio.Semaphore(8)

    async def one(box: Mailbox) -> Counter[str]:
        async with gate:
            return await asyncio.to_thread(message_ids_in, mail, box.address, box.password)

    total: Counter[str] = Counter()
    for found in await asyncio.gather(*(one(box) for box in boxes)):
        total.update(found)
    return total


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        print(f"[exactly-once] {line}")  # the numbers this test exists to show


# ---------------------------------------------------------------------------------------------
# 1. scale


SCALE_MAILBOXES = 50
SCALE_SENDS = 2000


@pytest.mark.timeout(420)  # the module's setup included; on 2 busy cores
async def test_two_thousand_sends_through_three_workers_arrive_exactly_once(
    stack: RunningSystem,
    api: httpx.AsyncClient,
    bus: Client,
    db: asyncpg.Pool,
    mail_stack: MailStack,
) -> None:
    report = Report()
    ensure_running(stack.supervisor, WORKER_NAMES)
    assert await consumer_ack_wait(bus) == ACK_WAIT  # the workers' setting, applied
    prepared = time.monotonic()
    boxes = await mailboxes(api, mail_stack, SCALE_MAILBOXES)
    report(f"{len(boxes)} mailboxes with configs saved in {time.monotonic() - prepared:.1f}s")
    run = new_id()[:8]
    planned = [
        Send(
            boxes[k % len(boxes)], boxes[(k % len(boxes) + 1 + k % 7) % len(boxes)], f"eo {run} {k}"
        )
        for k in range(SCALE_SENDS)
    ]
    tap = AckTap()
    await tap.start(bus)
    log_start = len(stack.log_text())

    began = time.monotonic()
    sends = await post_all(api, planned)
    posted = time.monotonic()
    ids = [s.command_id for s in sends]
    counts = await wait_settled(db, ids, timeout=180, stack=stack)
    settled = time.monotonic()
    expected = Counter(s.recipient for s in sends)
    delivered = await wait_delivered(mail_stack, dict(expected), timeout=60)
    landed = time.monotonic()
    await tap.stop()
    twice = {seq: tap.deliveries.get(seq) for seq in tap.acked_twice()}

    report(
        f"{len(sends)} sends, {len(boxes)} mailboxes, {WORKERS} workers: posted in "
        f"{posted - began:.1f}s ({len(sends) / (posted - began):.0f}/s), all settled after "
        f"{settled - began:.1f}s ({len(sends) / (settled - began):.1f} sends/s end to end), "
        f"all in Dovecot after {landed - began:.1f}s; statuses {dict(counts)}; acks on the wire "
        f"{sum(tap.acks.values())}, redelivered {tap.redelivered()}, other {dict(tap.other)}, "
        f"acked twice {twice}"
    )
    statuses = await http_statuses(api, sends)
    not_sent = {cid: s for cid, s in statuses.items() if s["status"] != "sent"}
    assert not not_sent, f"{len(not_sent)} not sent, e.g. {list(not_sent.items())[:5]}"
    assert all(statuses[s.command_id]["message_id"] == s.message_id for s in sends)
    off = {b.address: (delivered[b], n) for b, n in expected.items() if delivered[b] != n}
    assert not off, f"inbox counts (found, sent to it) differ: {off}"
    found = await copies(mail_stack, set(boxes))
    wanted = Counter(s.message_id for s in sends)
    assert found == wanted, _difference(found, wanted)
    assert not twice, f"stream seqs acknowledged twice (highest delivery count): {twice}"
    report(f"checked every status and Message-ID in {time.monotonic() - landed:.1f}s")
    in_sent = sum(
        await asyncio.gather(
            *(asyncio.to_thread(mail_stack.count_messages, b.address, "Sent") for b in boxes)
        )
    )
    report(
        f"copies in Sent {in_sent}/{len(sends)}; log lines: session pool KeyError "
        f"{log_lines_with(stack, 'KeyError', log_start)}, no copy in Sent "
        f"{log_lines_with(stack, 'no copy in Sent', log_start)}, retried "
        f"{log_lines_with(stack, 'retrying cmd.mail', log_start)}"
    )


def _difference(found: Counter[str], wanted: Counter[str]) -> str:
    extra = {mid: n for mid, n in found.items() if n > wanted.get(mid, 0)}
    missing = {mid: n for mid, n in wanted.items() if found.get(mid, 0) < n}
    return f"duplicated or unexpected: {list(extra.items())[:10]}; missing: {list(missing)[:10]}"


# ---------------------------------------------------------------------------------------------
# 2. a worker killed midway


KILL_MAILBOXES = 20
KILL_SENDS = 600


async def test_a_worker_killed_midway_loses_and_duplicates_nothing(
    stack: RunningSystem,
    api: httpx.AsyncClient,
    bus: Client,
    db: asyncpg.Pool,
    mail_stack: MailStack,
) -> None:
    report = Report()
    ensure_running(stack.supervisor, WORKER_NAMES)
    victim = WORKER_NAMES[1]
    try:
        boxes = await mailboxes(api, mail_stack, KILL_MAILBOXES)
        run = new_id()[:8]
        planned = [
            Send(boxes[k % len(boxes)], boxes[(k + 1 + k % 5) % len(boxes)], f"kill {run} {k}")
            for k in range(KILL_SENDS)
        ]
        tap = AckTap()
        await tap.start(bus)
        # the workers would keep pace with the API: queue every command first, then let them go
        for worker in WORKER_NAMES:
            await asyncio.to_thread(stack.supervisor.stop_service, worker)
        sends = await post_all(api, planned)
        ids = [s.command_id for s in sends]
        began = time.monotonic()
        await asyncio.to_thread(ensure_running, stack.supervisor, WORKER_NAMES)

        async def a_third_sent() -> bool:
            return (await status_counts(db, ids))["sent"] >= KILL_SENDS // 3

        await eventually(a_third_sent, what="a third of the sends sent", timeout=120)
        in_flight = await _in_flight(bus)
        await asyncio.to_thread(kill, stack.supervisor, victim)
        killed_at = time.monotonic() - began
        counts = await wait_settled(db, ids, timeout=ACK_WAIT * 4 + 60, stack=stack)
        settled = time.monotonic()
        await tap.stop()
    finally:
        await asyncio.to_thread(ensure_running, stack.supervisor, WORKER_NAMES)

    statuses = await http_statuses(api, sends)
    by_status = Counter(s["status"] for s in statuses.values())
    report(
        f"{len(sends)} sends queued, then {WORKERS} workers started; {victim} SIGKILLed after "
        f"{killed_at:.1f}s ({in_flight} commands in flight across the workers); all settled after "
        f"{settled - began:.1f}s: {dict(by_status)} (database {dict(counts)}); "
        f"redelivered {tap.redelivered()}, acks {sum(tap.acks.values())}, other {dict(tap.other)}"
    )
    assert set(by_status) <= {"sent", "unknown"}, by_status
    sent = [s for s in sends if statuses[s.command_id]["status"] == "sent"]
    unknown = [s for s in sends if statuses[s.command_id]["status"] == "unknown"]
    for send in unknown:
        assert await ledger_state(bus, send.command_id) == "data_started", send
    expected = Counter(s.recipient for s in sent)
    await wait_delivered(mail_stack, {b: expected.get(b, 0) for b in boxes}, timeout=60)
    found = await copies(mail_stack, set(boxes))
    twice = {s.message_id: found[s.message_id] for s in sends if found[s.message_id] > 1}
    assert not twice, f"delivered more than once: {twice}"
    lost = [s.message_id for s in sent if found[s.message_id] != 1]
    assert not lost, f"reported sent but not delivered: {lost}"
    strangers = set(found) - {s.message_id for s in sends}
    assert not strangers, strangers
    arrived_unknown = sum(found[s.message_id] for s in unknown)
    report(f"of {len(unknown)} unknown sends, {arrived_unknown} arrived (once each)")


async def _in_flight(bus: Client) -> int:
    info = await bus.jetstream().consumer_info("MAIL_CMD", "mail-worker")
    return int(info.num_ack_pending)


# ---------------------------------------------------------------------------------------------
# 3. a kill at each moment of one send


async def test_a_kill_before_during_or_after_the_data_never_sends_twice(
    stack: RunningSystem,
    api: httpx.AsyncClient,
    bus: Client,
    db: asyncpg.Pool,
    mail_stack: MailStack,
) -> None:
    """One worker up; for each moment a send of its own, to a mailbox of its own:

    - before: its SMTP server (a proxy) accepts the connection and says nothing; the worker is
      killed waiting for the greeting. The redelivery sends it: one copy, ``sent``.
    - after: Postfix answered 250 and the ledger says ``sent``; the copy to Sent hangs (its IMAP
      server is a silent proxy), so the command is not acked yet; killed. The redelivery must
      answer from the ledger: one copy, ``sent``.
    - during: the data goes through a proxy at 64 KB/s; killed a second into DATA and the proxy
      cuts the connection: Postfix got part of the message. ``unknown``, never resent: no copy.
    """
    report = Report()
    supervisor = stack.supervisor
    ensure_running(supervisor, WORKER_NAMES)
    worker = WORKER_NAMES[0]
    for other in WORKER_NAMES[1:]:
        await asyncio.to_thread(supervisor.stop_service, other)
    mail = mail_stack.endpoints
    smtp_hold, imap_hold, smtp_slow = (
        Proxy(mail.host, mail.smtp_starttls_port),
        Proxy(mail.host, mail.imap_port),
        Proxy(mail.host, mail.smtp_starttls_port),
    )
    smtp_hold.mode, imap_hold.mode = "hold", "hold"
    smtp_slow.throttle = 64 * 1024
    try:
        (before_box,) = await mailboxes(api, mail_stack, 1, smtp_port=await smtp_hold.start())
        (after_box,) = await mailboxes(api, mail_stack, 1, imap_port=await imap_hold.start())
        (during_box,) = await mailboxes(api, mail_stack, 1, smtp_port=await smtp_slow.start())
        recipients = {name: (await mailboxes(api, mail_stack, 1))[0] for name in "abc"}

        async def sigkill() -> None:
            await asyncio.to_thread(kill, supervisor, worker)

        async def restart() -> None:
            await asyncio.to_thread(ensure_running, supervisor, [worker])

        # before: killed waiting for the greeting of an SMTP server that never sends one
        before = await post(api, Send(before_box, recipients["a"], "killed before"))
        async with asyncio.timeout(30):
            await smtp_hold.connected.wait()
        await sigkill()
        assert await ledger_state(bus, before.command_id) is None
        smtp_hold.release()
        await restart()

        # after: Postfix said 250 and the ledger says sent; the Sent copy hangs; not acked yet
        after = await post(api, Send(after_box, recipients["b"], "killed after"))
        async with asyncio.timeout(30):
            await imap_hold.connected.wait()
        assert await ledger_state(bus, after.command_id) == "sent"
        await sigkill()
        after_subject = f"cmd.mail.message.send.v1.{after_box.agent_id}"
        assert await pending_seq(bus, after_subject) is not None, "it was acked before the kill"
        imap_hold.release()
        await restart()

        # during: killed a second into a slow DATA; the proxy cuts the rest
        body = ("x" * 70 + "\n") * 9000  # about 640 KB: ten seconds at 64 KB/s
        during = await post(api, Send(during_box, recipients["c"], "killed during"), text=body)

        async def data_started() -> bool:
            return await ledger_state(bus, during.command_id) == "data_started"

        await eventually(data_started, what="the slow send's DATA begun", every=0.02)
        await asyncio.sleep(1.0)
        relayed = smtp_slow.bytes_up
        await sigkill()
        smtp_slow.cut()
        assert relayed < len(body) / 2, f"too much of the data went through: {relayed}"
        await restart()

        sends = [before, after, during]
        ids = [s.command_id for s in sends]
        counts = await wait_settled(db, ids, timeout=ACK_WAIT * 3 + 30, stack=stack)
        statuses = await http_statuses(api, sends)
        outcomes = {s.subject: statuses[s.command_id]["status"] for s in sends}
        await wait_delivered(mail_stack, {recipients["a"]: 1, recipients["b"]: 1}, timeout=30)
        found = await copies(mail_stack, set(recipients.values()))
        arrived = {s.subject: found[s.message_id] for s in sends}
        report(
            f"outcomes {outcomes} (database {dict(counts)}); copies {arrived}; "
            f"relayed {relayed} bytes of about {len(body)} before the cut"
        )
        assert outcomes == {
            "killed before": "sent",
            "killed after": "sent",
            "killed during": "unknown",
        }
        assert arrived == {"killed before": 1, "killed after": 1, "killed during": 0}
        assert sum(found.values()) == 2, found
        assert await ledger_state(bus, during.command_id) == "data_started"
    finally:
        for proxy in (smtp_hold, imap_hold, smtp_slow):
            await proxy.stop()
        await asyncio.to_thread(ensure_running, supervisor, WORKER_NAMES)


# ---------------------------------------------------------------------------------------------
# 4. two deliveries of one command in flight at once


PAUSE_ACK_WAIT = 3.0  # the server redelivers within about two ack waits; the SMTP timeout is 15 s
LATE_COPY_SECONDS = 20.0  # A, resumed, would have sent its copy by now: it needs only its DATA


async def test_a_worker_stalled_past_the_ack_wait_does_not_send_again(
    stack: RunningSystem,
    api: httpx.AsyncClient,
    bus: Client,
    mail_stack: MailStack,
) -> None:
    """Worker A takes a send, finds no ledger entry and connects to the SMTP server; then it
    stalls (SIGSTOP: a VM pause, a stop-the-world pause, a starved event loop) while it waits
    for the greeting. Its ack wait passes, worker B gets the command, sends it, and the ledger
    says ``sent``. Then A resumes within its SMTP timeout: nothing tells it the command was
    taken over, so it would go on to DATA and the message would arrive twice.

    A and B restart with an ack wait of 3 s, so that the stall fits inside A's 15 s SMTP
    timeout; with the default 60 s the same happens whenever two deliveries of one command
    overlap before the first reaches DATA (a heartbeat gap longer than the ack wait). What
    prevents it: the ledger's create-only claim right before DATA, which only one of them wins.
    """
    report = Report()
    supervisor = stack.supervisor
    ensure_running(supervisor, WORKER_NAMES)
    first, second, third = WORKER_NAMES
    await asyncio.to_thread(supervisor.stop_service, third)
    mail = mail_stack.endpoints
    smtp = Proxy(mail.host, mail.smtp_starttls_port)
    smtp.mode = "hold"
    stopped: set[int] = set()

    def stop(name: str) -> None:
        pid = supervisor.pids()[name]
        os.kill(pid, signal.SIGSTOP)
        stopped.add(pid)

    def resume(name: str) -> None:
        pid = supervisor.pids()[name]
        os.kill(pid, signal.SIGCONT)
        stopped.discard(pid)

    try:
        await asyncio.to_thread(restart_with_ack_wait, supervisor, [first, second], PAUSE_ACK_WAIT)
        assert await consumer_ack_wait(bus) == PAUSE_ACK_WAIT
        (sender,) = await mailboxes(api, mail_stack, 1, smtp_port=await smtp.start())
        (recipient,) = await mailboxes(api, mail_stack, 1)
        stop(second)
        await asyncio.sleep(6)  # B's pull requests (5 s) expire: only A can take the command
        send = await post(api, Send(sender, recipient, "stalled"))
        async with asyncio.timeout(30):
            await smtp.connected.wait()  # A checked the ledger, then connected
        stop(first)
        stalled = time.monotonic()
        if await ledger_state(bus, send.command_id) is not None:
            pytest.fail("A reached DATA before the stall")
        smtp.release()  # the greeting waits in A's socket
        resume(second)

        async def sent_by_b() -> bool:
            return await ledger_state(bus, send.command_id) == "sent"

        # within 12 s: A's greeting times out 15 s after it connected
        await eventually(sent_by_b, what="B's send of the redelivery in A's stall", timeout=12)
        taken_over = time.monotonic() - stalled
        resume(first)
        await asyncio.sleep(LATE_COPY_SECONDS)
        found = await copies(mail_stack, {recipient})
        status = (await http_statuses(api, [send]))[send.command_id]["status"]
        report(
            f"B sent the redelivery {taken_over:.1f}s into A's stall; A resumed: copies "
            f"{found[send.message_id]}, status {status}, "
            f"ledger {await ledger_state(bus, send.command_id)}, SMTP connections {smtp.accepted}"
        )
        assert found[send.message_id] == 1, f"the message arrived {found[send.message_id]} times"
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        await smtp.stop()
        await asyncio.to_thread(restart_with_ack_wait, supervisor, [first, second], ACK_WAIT)
        await asyncio.to_thread(ensure_running, supervisor, WORKER_NAMES)
