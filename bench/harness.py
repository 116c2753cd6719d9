"""What the benchmarks share: the system they start, the mailboxes they connect through config-api,
a process's CPU time and memory as Linux's /proc counts them, and their manners (progress on
stderr, a clean stop on Ctrl-C and SIGTERM, the code they measured).

``send.py`` and ``receive.py`` start the same things the same way (``start_mail_system``): an
embedded nats-server and PostgreSQL, the local mail stack (Postfix in front of Dovecot), and the
real services with ONE mail-worker, from ``mailbridge.devstack.system.running_system``, as
``make run`` and the e2e tests start them. Each one is stopped when the caller's ExitStack unwinds.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Collection, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TextIO, TypeVar

import httpx

from mailbridge.devstack.dovecot import PROCESS_LIMIT
from mailbridge.devstack.environment import POLL_INTERVAL_SECONDS, Infrastructure
from mailbridge.devstack.mailstack import MailStack, MailStackEndpoints
from mailbridge.devstack.nats import EmbeddedNats
from mailbridge.devstack.postgres import EmbeddedPostgres
from mailbridge.devstack.system import RunningSystem, running_system
from mailbridge.shared.crypto import generate_key_spec

WORKER = "mail-worker"  # its name in devstack.environment.services()
PASSWORD = "bench-password"  # every benchmark mailbox's
API_CONCURRENCY = 20  # config-api calls in flight while seeding: quick, and no burst of a thousand

T = TypeVar("T")


# --- manners ---------------------------------------------------------------------------------


def say(message: str) -> None:
    """Progress, on stderr: stdout is the report's (``--json`` pipes it)."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def stoppable() -> None:
    """Ctrl-C and SIGTERM both raise KeyboardInterrupt, so the ExitStack stops what was started;
    even when started where SIGINT is ignored (a background job of a script)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _as_ctrl_c)


def ignore_signals() -> None:
    """For the shutdown: a second Ctrl-C must not cut it short and leave servers behind."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _as_ctrl_c(signum: int, frame: FrameType | None) -> None:
    """SIGTERM takes Ctrl-C's path (asyncio cancels the measurement, then everything stops)."""
    signal.raise_signal(signal.SIGINT)


def scratch_dir(exits: ExitStack, prefix: str) -> Path:
    """A fresh ``tempfile.mkdtemp()`` directory for every server's data, removed when ``exits``
    unwinds (after the servers it stops later, since it is pushed first). Under /tmp: the mail
    servers' unprivileged users must traverse every parent."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    exits.callback(shutil.rmtree, path, ignore_errors=True)
    return path


def services_log(exits: ExitStack, data: Path, *, verbose: bool) -> TextIO:
    """Where the services' lines go: stderr with ``verbose``, else a file in ``data`` (closed by
    ``exits``) whose last lines are shown if the run fails (not on Ctrl-C)."""
    if verbose:
        return sys.stderr
    path = data / "services.log"
    log = exits.enter_context(path.open("w"))
    exits.push(_show_log_on_failure(path))
    return log


def _show_log_on_failure(path: Path) -> Callable[..., None]:
    def show(kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None and not issubclass(kind, KeyboardInterrupt) and path.exists():
            tail = path.read_text(errors="replace").splitlines()[-40:]
            say("the services' last log lines:\n" + "\n".join(tail))

    return show


def code_under_test() -> dict[str, Any]:
    """The commit measured, and whether the services' code differed from it."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "services", "libs")
    return {"commit": git("rev-parse", "--short", "HEAD") or "unknown", "dirty": bool(changed)}


# --- the system ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mailbox:
    agent_id: str
    address: str


@dataclass(frozen=True)
class MailSystem:
    """NATS, PostgreSQL, the mail stack and the services, running."""

    mail_stack: MailStack
    system: RunningSystem

    @property
    def nats_url(self) -> str:
        return self.system.nats_url

    @property
    def worker_pid(self) -> int:
        return self.system.supervisor.pids()[WORKER]

    @property
    def worker_metrics_url(self) -> str:
        """The worker's Prometheus metrics, on its health port beside /readyz."""
        spec = next(s for s in self.system.supervisor.services if s.name == WORKER)
        assert spec.ready_url is not None, "the mail-worker has a health port"
        return spec.ready_url.replace("/readyz", "/metrics")


def start_mail_system(
    exits: ExitStack,
    data: Path,
    *,
    services: Collection[str],
    sink: TextIO,
    poll_interval: float = POLL_INTERVAL_SECONDS,
    process_limit: int = PROCESS_LIMIT,
    verbose_proctitle: bool = False,
) -> MailSystem:
    """Everything a mail benchmark measures against, under ``data``, stopped by ``exits``.

    ``poll_interval``: config-api's, and the watched mailboxes' quiet spell (``services()``);
    ``process_limit`` and ``verbose_proctitle``: the mail stack's Dovecot (see ``MailStack``)."""
    nats_url = exits.enter_context(EmbeddedNats(data / "nats")).url
    postgres = exits.enter_context(EmbeddedPostgres(data / "postgres"))
    mail = MailStack(
        data / "mail", process_limit=process_limit, verbose_proctitle=verbose_proctitle
    )
    exits.enter_context(mail)
    infra = Infrastructure(
        nats_url, postgres.dsn, generate_key_spec("bench"), mail.endpoints.ca_file, "WARNING"
    )
    system = exits.enter_context(
        running_system(infra, only=services, sink=sink, poll_interval=poll_interval)
    )
    return MailSystem(mail, system)


def operator_api(system: RunningSystem, timeout: float = 60.0) -> httpx.AsyncClient:
    """config-api with the operator key (a connection test waits for the worker's answer)."""
    headers = {"Authorization": f"Bearer {system.operator_key}"}
    return httpx.AsyncClient(base_url=system.base_url, headers=headers, timeout=timeout)


def imap_email_config(endpoints: MailStackEndpoints, address: str) -> dict[str, Any]:
    """A local-stack mailbox as an agent's email config: IMAP on TLS, SMTP with STARTTLS."""
    return {
        "provider": "imap", "email": address, "password": PASSWORD,
        "imap": {"host": endpoints.host, "port": endpoints.imap_port, "security": "ssl"},
        "smtp": {"host": endpoints.host, "port": endpoints.smtp_starttls_port,
                 "security": "starttls"},
    }  # fmt: skip


async def create_mailboxes(mail: MailSystem, count: int) -> list[Mailbox]:
    """``count`` Dovecot mailboxes ``bench{n}@``, each agent ``bench-{n}``'s, its email config
    saved through config-api (not tested yet: nothing connects to it until a test passes)."""
    boxes = [
        Mailbox(f"bench-{n}", mail.mail_stack.create_mailbox(f"bench{n}", PASSWORD))
        for n in range(count)
    ]
    async with operator_api(mail.system) as api:
        await bounded(API_CONCURRENCY, (_configure(api, mail, box) for box in boxes))
    return boxes


async def _configure(api: httpx.AsyncClient, mail: MailSystem, box: Mailbox) -> None:
    path = f"/bridge/agents/{box.agent_id}"
    (await api.put(path, json={"org_id": "bench"})).raise_for_status()
    config = imap_email_config(mail.mail_stack.endpoints, box.address)
    (await api.put(f"{path}/email-config", json=config)).raise_for_status()


async def bounded(limit: int, jobs: Iterable[Awaitable[T]]) -> list[T]:
    """Every job's result, in order, with at most ``limit`` of them running at once."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[T]) -> T:
        async with gate:
            return await job

    return await asyncio.gather(*(one(job) for job in jobs))


# --- a process's cost ------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_bytes(pid: int) -> int:
    """The process's resident memory now (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS")


def machine_busy_s() -> float:
    """Non-idle CPU seconds of the whole machine, all cores together."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / _TICK


# --- where the machine's time goes -----------------------------------------------------------

STACK_PARTS = {"nats-server": "nats-server", "postgres": "PostgreSQL", "dovecot": "Dovecot",
               "postfix": "Postfix"}  # fmt: skip  # a word of a root's command line → its name


@dataclass(frozen=True)
class _Process:
    parent: int
    command: str
    cpu_s: float  # its own and its reaped children's: the time moves to the parent on exit


def cpu_by_part(
    data: Path, services: dict[str, int], alone: dict[str, int] | None = None
) -> dict[str, float]:
    """CPU seconds so far of each part of the system: the services (by pid) and the servers run
    under ``data`` (nats-server, PostgreSQL, Dovecot, Postfix), each with every process under it;
    the processes in ``alone`` without theirs (the benchmark itself, parent of everything).

    A process's figure includes its reaped children's (/proc ``cutime``/``cstime``), and a part's
    is the sum over its live tree, so a short-lived child (an smtpd, a PostgreSQL backend) counts
    before and after it exits alike: two readings' difference is the part's CPU between them."""
    processes = _processes()
    children: dict[int, list[int]] = {}
    for pid, process in processes.items():
        children.setdefault(process.parent, []).append(pid)
    roots = dict(services)
    for pid, process in processes.items():
        parent = processes.get(process.parent)
        under_data = str(data) in process.command
        if under_data and (parent is None or str(data) not in parent.command):
            name = next((n for word, n in STACK_PARTS.items() if word in process.command), None)
            if name is not None:
                roots[name] = pid
    spent = {name: _tree_cpu(pid, processes, children) for name, pid in roots.items()}
    return spent | {name: cpu_seconds(pid) for name, pid in (alone or {}).items()}


def _tree_cpu(root: int, processes: dict[int, _Process], children: dict[int, list[int]]) -> float:
    total, waiting = 0.0, [root]
    while waiting:
        pid = waiting.pop()
        if pid in processes:
            total += processes[pid].cpu_s
        waiting.extend(children.get(pid, ()))
    return total


def _processes() -> dict[int, _Process]:
    found: dict[int, _Process] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rpartition(")")[2].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        cpu = sum(int(v) for v in stat[11:15]) / _TICK  # utime stime cutime cstime
        found[int(entry.name)] = _Process(int(stat[1]), command, cpu)
    return found


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Each part's CPU seconds between two ``cpu_by_part`` readings."""
    return {name: after[name] - before.get(name, 0.0) for name in after}
