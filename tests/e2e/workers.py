"""A stack with several mail-worker replicas, and the tools to watch and break them.

Used by ``test_exactly_once`` and the receiving tests: config-api plus N mail-worker processes on
a NATS server and a database of their own; the acknowledgements of the shared consumer, as seen
on the wire; and what each mailbox holds, per Message-ID, read over IMAP. (The loopback proxy
that holds, throttles or cuts connections is ``tests/support/proxy.py``.)
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from email.parser import BytesHeaderParser
from typing import Any

import httpx
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError, NotFoundError

from mailbridge.devstack.certs import client_ssl_context
from mailbridge.devstack.environment import HOST
from mailbridge.devstack.mailstack import MailStackEndpoints
from mailbridge.devstack.processes import free_port
from mailbridge.devstack.supervisor import ServiceProcess, Supervisor
from mailbridge.devstack.system import Arrange

SERVICE = "mail-worker"  # its name in devstack.environment.services()
CONSUMER = "mail-worker"  # MailWorkerSettings.consumer_durable
ACK_WAIT_VARIABLE = "MAILBRIDGE_ACK_WAIT_SECONDS"  # MailWorkerSettings.ack_wait_seconds
STREAM = "MAIL_CMD"
LEDGER_BUCKET = "MAIL_SEND_LEDGER"


def replica_names(name: str, count: int) -> list[str]:
    """The names ``worker_replicas`` gives ``count`` replicas of the service ``name``."""
    return [f"{name}-{number}" for number in range(1, count + 1)]


def replicas(
    template: ServiceProcess, count: int, env: dict[str, str] | None = None
) -> list[ServiceProcess]:
    """``count`` processes like ``template``, each named ``{name}-{n}`` with a health port of
    its own and ``env`` added to the template's."""
    made = []
    for name in replica_names(template.name, count):
        port = free_port()
        health = {"MAILBRIDGE_HEALTH_HOST": HOST, "MAILBRIDGE_HEALTH_PORT": str(port)}
        made_env = {**template.env, **health, **(env or {})}
        made.append(ServiceProcess(name, template.module, made_env, f"http://{HOST}:{port}/readyz"))
    return made


def worker_replicas(
    template: ServiceProcess, count: int, *, ack_wait: float, env: Mapping[str, str] = {}
) -> list[ServiceProcess]:
    """``count`` mail-workers like ``template``, all with the ack wait
    ``MAILBRIDGE_ACK_WAIT_SECONDS`` and ``env``."""
    return replicas(template, count, {ACK_WAIT_VARIABLE: str(ack_wait), **env})


def with_worker_replicas(count: int, *, ack_wait: float, env: Mapping[str, str] = {}) -> Arrange:
    """For ``running_system(arrange=...)``: ``count`` replicas in place of the one mail-worker."""

    def arrange(processes: list[ServiceProcess]) -> list[ServiceProcess]:
        arranged: list[ServiceProcess] = []
        for spec in processes:
            if spec.name == SERVICE:
                arranged += worker_replicas(spec, count, ack_wait=ack_wait, env=env)
            else:
                arranged.append(spec)
        return arranged

    return arrange


def restart_with_ack_wait(supervisor: Supervisor, names: list[str], seconds: float) -> None:
    """Stop the named workers, then start them with another ack wait: a worker that starts writes
    its setting to the shared consumer, and keeps its in-progress heartbeat at a third of it."""
    for index, spec in enumerate(supervisor.services):
        if spec.name in names:
            supervisor.stop_service(spec.name)
            env = {**spec.env, ACK_WAIT_VARIABLE: str(seconds)}
            supervisor.services[index] = replace(spec, env=env)
    ensure_running(supervisor, names)


def ensure_running(supervisor: Supervisor, names: list[str], timeout: float = 60.0) -> None:
    """Start whichever of ``names`` is not running, then wait until every service is ready."""
    for name in names:
        if name not in supervisor.pids():
            supervisor.start_service(name)
    supervisor.wait_ready(timeout=timeout)


def wait_ready(supervisor: Supervisor, name: str, timeout: float = 60.0) -> None:
    """Wait for one service only (``Supervisor.wait_ready`` waits for all, a stopped one too)."""
    spec = next(s for s in supervisor.services if s.name == name)
    assert spec.ready_url is not None
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(spec.ready_url, timeout=1.0).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} not ready after {timeout:.0f}s")
        time.sleep(0.1)


def kill(supervisor: Supervisor, name: str) -> int:
    """SIGKILL a service (no shutdown of any kind), then reap it; answers its pid."""
    pid = supervisor.pids()[name]
    os.kill(pid, signal.SIGKILL)
    supervisor.stop_service(name, timeout=5)
    return pid


# ---------------------------------------------------------------------------------------------
# the shared consumer


async def consumer_ack_wait(nc: Client) -> float:
    """The ack wait of the workers' durable consumer, as the server applies it."""
    info = await nc.jetstream().consumer_info(STREAM, CONSUMER)
    assert info.config.ack_wait is not None
    return float(info.config.ack_wait)


def _ack_tokens(subject: str) -> tuple[int, int] | None:
    """(delivery count, stream sequence) of a ``$JS.ACK`` subject, v1 or v2 form."""
    tokens = subject.split(".")
    if len(tokens) == 9:
        return int(tokens[4]), int(tokens[5])
    if len(tokens) >= 12:
        return int(tokens[6]), int(tokens[7])
    return None


@dataclass
class AckTap:
    """Every acknowledgement the workers send for the shared consumer, from the wire."""

    acks: Counter[int] = field(default_factory=Counter)  # stream seq → +ACKs
    deliveries: dict[int, int] = field(default_factory=dict)  # stream seq → highest delivery
    other: Counter[str] = field(default_factory=Counter)  # -NAK, +TERM, +WPI …
    _sub: Any = None

    async def start(self, nc: Client) -> None:
        self._sub = await nc.subscribe(f"$JS.ACK.{STREAM}.{CONSUMER}.>", cb=self._on_ack)
        self._sub2 = await nc.subscribe(f"$JS.ACK.*.*.{STREAM}.{CONSUMER}.>", cb=self._on_ack)
        await nc.flush()

    async def stop(self) -> None:
        for sub in (self._sub, getattr(self, "_sub2", None)):
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def _on_ack(self, msg: Msg) -> None:
        parsed = _ack_tokens(msg.subject)
        if parsed is None:
            return
        delivered, seq = parsed
        self.deliveries[seq] = max(self.deliveries.get(seq, 0), delivered)
        kind = msg.data.split(b" ", 1)[0].decode(errors="replace") or "+ACK"
        if kind == "+ACK":
            self.acks[seq] += 1
        else:
            self.other[kind] += 1

    def redelivered(self) -> int:
        return sum(1 for delivered in self.deliveries.values() if delivered > 1)

    def acked_twice(self) -> list[int]:
        return [seq for seq, count in self.acks.items() if count > 1]


async def ledger_state(nc: Client, command_id: str) -> str | None:
    """The mail-worker's ledger entry for a command (``data_started`` / ``sent``), if any."""
    kv = await nc.jetstream().key_value(LEDGER_BUCKET)
    try:
        entry = await kv.get(command_id)
    except KeyNotFoundError:
        return None
    if entry.value is None:
        return None
    state: str = json.loads(entry.value)["state"]
    return state


async def pending_seq(nc: Client, subject: str) -> int | None:
    """The stream sequence of the command still in MAIL_CMD on ``subject`` (not acked yet)."""
    try:
        found = await nc.jetstream().get_last_msg(STREAM, subject)
    except NotFoundError:
        return None
    return None if found.seq is None else int(found.seq)


async def connect(url: str) -> Client:
    return await nats.connect(url, connect_timeout=5, max_reconnect_attempts=3)


# ---------------------------------------------------------------------------------------------
# what arrived


def message_ids_in(
    mail: MailStackEndpoints, address: str, password: str, folder: str = "INBOX"
) -> Counter[str]:
    """How many copies of each Message-ID the folder holds (IMAP, read-only, nothing flagged);
    a refused or dropped connection (a server at its limits) is tried again, five times."""
    for attempt in range(5):
        try:
            return _message_ids_in(mail, address, password, folder)
        except (OSError, imaplib.IMAP4.error):
            if attempt == 4:
                raise
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


def _message_ids_in(
    mail: MailStackEndpoints, address: str, password: str, folder: str
) -> Counter[str]:
    with imaplib.IMAP4_SSL(
        mail.host, mail.imap_port, ssl_context=client_ssl_context(mail.ca_file), timeout=30
    ) as imap:
        imap.login(address, password)
        status, data = imap.select(folder, readonly=True)
        assert status == "OK", data
        if int(data[0] or 0) == 0:
            return Counter()
        status, fetched = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        assert status == "OK", fetched
    parser = BytesHeaderParser()
    found: Counter[str] = Counter()
    for part in fetched:
        if isinstance(part, tuple):
            found[str(parser.parsebytes(part[1]).get("Message-ID", "")).strip()] += 1
    return found
