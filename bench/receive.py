"""Benchmark: receiving with IMAP IDLE in a thousand mailboxes, one mail-worker, against polling.

``uv run python bench/receive.py [--mailboxes 1000] [--rate 10] [--duration 60] [--json]``

Starts an embedded nats-server and PostgreSQL, the local mail stack (Dovecot's process limit
raised for N sessions in IDLE) and the real config-api, policy and ONE mail-worker, with the
product's poll interval (60 s, also the watched mailboxes' quiet spell). Then:

1. **watch-up**: N mailboxes, each an agent with an IMAP email config, connected by a connection
   test each (20 at a time); the time from the last test's ``ok`` to all N watched: the worker's
   ``mailbridge_watch_mailboxes`` gauge at N, and every mailbox's session in IDLE as Dovecot's
   process titles show (the target's figure: a mailbox is watched once its server would push);
2. **IDLE**: the worker's CPU over ``--duration`` s without mail (the baseline); then ``--rate``
   messages a second for ``--duration`` s, each stored into a random mailbox by Dovecot itself
   (``doveadm save``): the latency from each store to its ``message.received`` event
   (p50/p95/p99), the worker's CPU per message received in a window as long as the baseline
   (raw, and net of the baseline), and its memory per watched mailbox. Both windows are whole
   poll intervals, so each holds every mailbox's periodic reads the same number of times;
3. **polling** (unless ``--skip-polling``): the worker restarted with IDLE off
   (``MAILBRIDGE_IMAP_IDLE=false``), the same over ``--polling-duration`` s, the baseline scaled
   to the polls each window handled.

Each baseline begins once the worker has taken the commands queued for it (the polls sent while
it logged in to every mailbox, or while it restarted).

Dovecot learns of new mail through inotify, an instance per session in IDLE: the machine-wide
``fs.inotify.max_user_instances`` (128 by default) is raised for the run, then put back.

A measurement, not a test: PASS or MISS per target, exit 0 either way (1 when it could not
measure, 130 on Ctrl-C or SIGTERM). Progress on stderr, the services' log in a file of the run's
temporary directory (``--verbose``: on stderr); everything is stopped and removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import nats
from harness import (  # bench/harness.py, beside this script
    WORKER,
    Mailbox,
    MailSystem,
    bounded,
    code_under_test,
    cpu_seconds,
    create_mailboxes,
    ignore_signals,
    machine_busy_s,
    operator_api,
    rss_bytes,
    say,
    scratch_dir,
    services_log,
    start_mail_system,
    stoppable,
)
from nats.aio.client import Client
from nats.aio.msg import Msg

from mailbridge.devstack.dovecot import PROCESS_LIMIT
from mailbridge.devstack.mailstack import MailStack
from mailbridge.shared.messages import MessageReceived
from mailbridge.shared.streams import MAIL_CMD

WATCHED_WITHIN_S = 60.0  # the targets
P95_S = 2.0
CPU_PER_MESSAGE_MS = 5.0
PRODUCT_POLL_INTERVAL_S = 60.0  # config-api's default MAILBRIDGE_POLL_INTERVAL_SECONDS
WATCH_BUDGET = 1000  # MailWorkerSettings.watch_max_mailboxes: more are polled, not watched
TEST_CONCURRENCY = 20  # connection tests in flight: each is a login to IMAP and to SMTP
GAUGE_EVERY_S = 0.2  # an HTTP scrape: cheap
IDLE_EVERY_S = 1.0  # a pass over /proc: about 0.1 s of CPU with 2,000 Dovecot processes
DELIVERY_THREADS = 8  # doveadm saves in flight, so a slow one does not hold the pace
CONSUMER = "mail-worker"  # MailWorkerSettings.consumer_durable: the worker's commands
CATCH_UP_S = 30.0  # the longest wait for the worker to take the commands queued for it
DRAIN_AFTER_POLL_S = 20.0  # a poll's lateness past its interval: config-api's 5 s tick, queueing
BUSY_MACHINE = 0.9  # share of all cores busy in a window that makes its figures doubtful
IDLE_OFF = {"MAILBRIDGE_IMAP_IDLE": "false"}
SERIES = {
    "watched": "mailbridge_watch_mailboxes",
    "pushed": "mailbridge_watch_received_messages_total",
    "reconnects": "mailbridge_watch_reconnects_total",
    "polls": 'mailbridge_worker_commands_total{command="poll",result="ack"}',
}
CORES = os.cpu_count() or 1


class CouldNotMeasure(RuntimeError):
    """The system did not get where a figure could be taken (a test failed, a worker died)."""


# --- watch-up --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchUp:
    tests_s: float  # from the first connection test's start to the last one's ok
    gauge_full_s: float | None  # from the last ok to the worker's gauge at N (None: never)
    all_idle_s: float | None  # from the last ok to every mailbox's session in IDLE (None: never)
    most_idle: int  # mailboxes in IDLE at the end of the wait
    dovecot_processes: int
    worker_rss_before_mb: float  # before the first test: nothing watched


async def watch_up(
    mail: MailSystem, metrics: WorkerMetrics, boxes: list[Mailbox], timeout: float
) -> WatchUp:
    """Connect every mailbox, then wait until the worker watches them all."""
    rss_before = rss_bytes(mail.worker_pid)
    say(f"connecting {len(boxes)} mailboxes ({TEST_CONCURRENCY} connection tests at a time)")
    first, last = await connect_all(mail, boxes)
    say(f"all connected in {last - first:.1f} s; waiting until all {len(boxes)} are watched")
    probe = WatchProbe(mail, metrics, {box.address for box in boxes})
    deadline = last + timeout
    gauge_at, idle_at = await asyncio.gather(
        first_time(probe.gauge_full, GAUGE_EVERY_S, deadline),
        first_time(probe.all_idle, IDLE_EVERY_S, deadline),
    )
    return WatchUp(
        tests_s=round(last - first, 2),
        gauge_full_s=None if gauge_at is None else round(gauge_at - last, 2),
        all_idle_s=None if idle_at is None else round(idle_at - last, 2),
        most_idle=probe.most_idle,
        dovecot_processes=len(mail.mail_stack.process_ids()),
        worker_rss_before_mb=_mb(rss_before),
    )


async def connect_all(mail: MailSystem, boxes: list[Mailbox]) -> tuple[float, float]:
    """A connection test of each mailbox: when the first began and when the last answered ok
    (its status then ``connected``, which offers it to be watched)."""
    async with operator_api(mail.system) as api:
        began = time.monotonic()
        errors = await bounded(TEST_CONCURRENCY, (_tested(api, box) for box in boxes))
        answered = time.monotonic()
    failed = [error for error in errors if error is not None]
    if failed:
        raise CouldNotMeasure(f"{len(failed)} connection tests failed, the first: {failed[0]}")
    return began, answered


async def _tested(api: httpx.AsyncClient, box: Mailbox) -> str | None:
    """None when the test passed, else what went wrong."""
    try:
        answer = await api.post(f"/bridge/agents/{box.agent_id}/email-config/test")
    except httpx.HTTPError as exc:
        return f"{box.agent_id}: {type(exc).__name__} {exc}"
    if answer.status_code == 200 and answer.json().get("ok"):
        return None
    return f"{box.agent_id}: {answer.status_code} {answer.text[:300]}"


class WatchProbe:
    """Whether all the mailboxes are watched, as the worker and as Dovecot see it."""

    def __init__(self, mail: MailSystem, metrics: WorkerMetrics, addresses: set[str]) -> None:
        self._mail, self._metrics, self._addresses = mail, metrics, addresses
        self.most_idle = 0

    async def gauge_full(self) -> bool:
        return (await self._metrics.read())["watched"] >= len(self._addresses)

    async def all_idle(self) -> bool:
        idle = await asyncio.to_thread(self._mail.mail_stack.idle_users)
        self.most_idle = len(idle & self._addresses)
        return self.most_idle == len(self._addresses)


async def first_time(
    reached: Callable[[], Awaitable[bool]], every: float, deadline: float
) -> float | None:
    """When ``reached`` first answered True (monotonic), asked every ``every`` s until the
    deadline; None if it never did."""
    while True:
        if await reached():
            return time.monotonic()
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(every)


class WorkerMetrics:
    """The worker's /metrics as a scraper reads them, on one client (a new client per scrape,
    five a second, would cost this process more CPU than the scrapes)."""

    def __init__(self, mail: MailSystem, http: httpx.AsyncClient) -> None:
        self._mail, self._http = mail, http

    async def read(self) -> dict[str, float]:
        """The value of each of ``SERIES``, by its name there (0 when absent), from one scrape."""
        answer = await self._http.get(self._mail.worker_metrics_url)
        answer.raise_for_status()
        lines = (line for line in answer.text.splitlines() if line and not line.startswith("#"))
        values = dict(line.rsplit(" ", 1) for line in lines)
        return {name: float(values.get(series, 0.0)) for name, series in SERIES.items()}


# --- one receiving run -----------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    agent_id: str
    subject: str  # unique: how its event is told from the others
    scheduled_at: float  # monotonic, as the steady pace wants it
    began_at: float
    stored_at: float  # doveadm save returned: the message is in the mailbox


class Arrivals:
    """When each ``message.received`` event came, by its subject (the first of any repeats)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self._news = asyncio.Event()

    async def heard(self, msg: Msg) -> None:
        now = time.monotonic()
        subject = MessageReceived.model_validate_json(msg.data).subject
        if subject is not None:
            self.at.setdefault(subject, now)
            self._news.set()

    async def until_all(self, subjects: Collection[str], timeout: float) -> None:
        """Until every subject was heard of, or ``timeout`` s passed."""
        deadline = time.monotonic() + timeout
        while any(subject not in self.at for subject in subjects):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._news.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._news.wait(), left)


@dataclass(frozen=True)
class Window:
    """CPU and wall time across a stretch, of the worker and of the whole machine."""

    started_at: float  # monotonic
    ended_at: float
    worker_cpu_s: float
    machine_busy_s: float

    def scaled(self, factor: float) -> Window:
        """The worker's CPU here times ``factor`` (the machine's is left as measured)."""
        return replace(self, worker_cpu_s=self.worker_cpu_s * factor)

    @property
    def wall_s(self) -> float:
        return self.ended_at - self.started_at

    @property
    def worker_share(self) -> float:
        """The worker's CPU in % of one core."""
        return 100 * self.worker_cpu_s / self.wall_s

    @property
    def machine_share(self) -> float:
        """The machine's busy CPU in % of all its cores."""
        return 100 * self.machine_busy_s / self.wall_s / CORES


async def window_of(pid: int, seconds: float) -> Window:
    """The next ``seconds`` s."""
    started, worker, machine = time.monotonic(), cpu_seconds(pid), machine_busy_s()
    await asyncio.sleep(seconds)
    ended = time.monotonic()
    return Window(started, ended, cpu_seconds(pid) - worker, machine_busy_s() - machine)


def whole_periods(seconds: float, period: float) -> float:
    """``seconds`` rounded up to whole periods: a window that long holds the same number of
    the worker's periodic reads (the watches' quiet-spell reads, the polls) of every mailbox,
    wherever it starts, so two such windows compare."""
    return math.ceil(seconds / period - 1e-9) * period


@dataclass(frozen=True)
class Plan:
    """One receiving run: ``rate`` messages a second for ``duration`` s; ``period``: the poll
    interval (and the watches' quiet spell); ``drain``: how long the last message may take."""

    label: str
    rate: float
    duration: float
    period: float
    drain: float
    # The baseline is polls, handled as fast as one worker can (their count varies from window
    # to window): scaled to the polls the window handled.
    baseline_per_poll: bool = False


async def receive_run(
    mail: MailSystem, metrics: WorkerMetrics, boxes: list[Mailbox], plan: Plan
) -> dict[str, Any]:
    """The worker idle over ``duration`` s (in whole periods), then deliveries with the worker's
    CPU over the same length of time, then the wait for every event."""
    label, rate, duration = plan.label, plan.rate, plan.duration
    arrivals = Arrivals()
    span = whole_periods(duration, plan.period)
    bus = await nats.connect(mail.nats_url)
    try:
        await bus.subscribe(MessageReceived.subscription(), cb=arrivals.heard)
        pid = mail.worker_pid
        backlog = await caught_up(bus, CATCH_UP_S)
        say(f"{label}: the worker's idle CPU over {span:g} s")
        marks = [await metrics.read()]
        baseline = await window_of(pid, span)
        rss = rss_bytes(pid)
        marks.append(await metrics.read())
        say(f"{label}: {rate:g} messages/s for {duration:g} s into random mailboxes")
        delivering = asyncio.create_task(
            deliver_steadily(mail.mail_stack, boxes, label, rate, duration)
        )
        window = await window_of(pid, span)
        marks.append(await metrics.read())
        behind = await commands_waiting(bus)
        deliveries = await delivering
        await arrivals.until_all([d.subject for d in deliveries], plan.drain)
        marks.append(await metrics.read())
    finally:
        await bus.close()
    counters = _counted(marks)
    polls = counters["polls_in_window"] / max(counters["polls_in_baseline"], 1.0)
    idle = baseline.scaled(polls) if plan.baseline_per_poll else baseline
    figures = run_figures(deliveries, arrivals, idle, window, rss, counters)
    figures["commands_waiting"] = {"at_start": backlog, "at_end": behind}
    if plan.baseline_per_poll:
        per_poll = baseline.worker_cpu_s / max(counters["polls_in_baseline"], 1.0)
        figures["worker_cpu_ms_per_poll"] = _ms(per_poll)
    return figures


async def caught_up(bus: Client, timeout: float) -> int:
    """Wait until the worker has taken every command published so far (the polls that queued
    while it logged in to every mailbox, or was restarted), so the baseline is the steady state;
    answers how many still waited when the wait ended (0: caught up)."""
    deadline = time.monotonic() + timeout
    while True:
        waiting = await commands_waiting(bus)
        if not waiting or time.monotonic() >= deadline:
            return waiting
        await asyncio.sleep(0.5)


async def commands_waiting(bus: Client) -> int:
    """Commands published to the worker's durable consumer and not delivered to it yet."""
    info = await bus.jetstream().consumer_info(MAIL_CMD.name, CONSUMER)
    return int(info.num_pending or 0)


def _counted(marks: list[dict[str, float]]) -> dict[str, float]:
    """From the worker's series at the baseline's start, the window's start and end, and the
    run's end: the polls each window handled, and what the watches did while mail came."""
    start, window, window_end, end = marks
    return {
        "polls_in_baseline": window["polls"] - start["polls"],
        "polls_in_window": window_end["polls"] - window["polls"],
        "pushed": end["pushed"] - window["pushed"],
        "reconnects": end["reconnects"] - window["reconnects"],
    }


async def deliver_steadily(
    stack: MailStack, boxes: list[Mailbox], label: str, rate: float, duration: float
) -> list[Delivery]:
    """``rate`` messages a second for ``duration`` s, each into a random mailbox, stored by
    Dovecot itself (lighter on two cores than an SMTP submission, and stored when it returns)."""
    chooser = random.Random(label)  # an even spread, not a secret
    run = secrets.token_hex(3)
    loop = asyncio.get_running_loop()
    pending = []
    with ThreadPoolExecutor(DELIVERY_THREADS, thread_name_prefix="deliver") as threads:
        start = time.monotonic()
        for number in range(round(rate * duration)):
            scheduled = start + number / rate
            await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
            box, subject = chooser.choice(boxes), f"bench {label} {run} {number}"
            pending.append(loop.run_in_executor(threads, _store, stack, box, subject, scheduled))
        return list(await asyncio.gather(*pending))


def _store(stack: MailStack, box: Mailbox, subject: str, scheduled: float) -> Delivery:
    began = time.monotonic()
    stack.seed_message(box.address, subject=subject, body="benchmark")
    return Delivery(box.agent_id, subject, scheduled, began, time.monotonic())


def run_figures(
    deliveries: list[Delivery],
    arrivals: Arrivals,
    baseline: Window,
    window: Window,
    rss: int,
    counters: dict[str, float],
) -> dict[str, Any]:
    latencies = sorted(
        arrivals.at[d.subject] - d.stored_at for d in deliveries if d.subject in arrivals.at
    )
    received = len(latencies)
    in_window = sum(1 for at in arrivals.at.values() if window.started_at <= at <= window.ended_at)
    spent = window.wall_s if not deliveries else deliveries[-1].stored_at - deliveries[0].began_at
    return {
        "delivered": len(deliveries),
        "delivered_per_s": round(len(deliveries) / spent, 2) if spent > 0 else None,
        "latest_start_s": round(
            max((d.began_at - d.scheduled_at for d in deliveries), default=0.0), 3
        ),
        "store_ms_p50": _ms(statistics.median(d.stored_at - d.began_at for d in deliveries)),
        "received": received,
        "missing": len(deliveries) - received,
        "latency_s": _percentiles(latencies),
        "received_in_cpu_window": in_window,
        "worker_cpu_ms_per_message": _cpu_per_message(baseline, window, in_window),
        "worker_cpu_percent_of_a_core": {
            "baseline": round(baseline.worker_share, 1),
            "receiving": round(window.worker_share, 1),
        },
        "machine_busy_percent": {
            "baseline": round(baseline.machine_share, 1),
            "receiving": round(window.machine_share, 1),
        },
        "window_s": round(window.wall_s, 1),
        "worker_rss_mb": _mb(rss),
        "worker_counters": counters,
    }


def _percentiles(latencies: list[float]) -> dict[str, float | None]:
    if len(latencies) < 2:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], 3),
        "p95": round(cuts[94], 3),
        "p99": round(cuts[98], 3),
        "max": round(latencies[-1], 3),
    }


def _cpu_per_message(baseline: Window, window: Window, received: int) -> dict[str, float | None]:
    """Raw: the worker's CPU in the window per message received in it; net: less its CPU in the
    baseline (a window as long), which watches and polls cost mail or no mail."""
    if received == 0:
        return {"raw": None, "net": None}
    return {
        "raw": _ms(window.worker_cpu_s / received),
        "net": _ms((window.worker_cpu_s - baseline.worker_cpu_s) / received),
    }


# --- the whole benchmark ---------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as exits:
        try:
            data = scratch_dir(exits, "mailbridge-receive-")
            host_limits = raise_host_limits(exits, args.mailboxes)
            say("starting nats-server, PostgreSQL, the mail stack, config-api, policy, mail-worker")
            mail = start_mail_system(
                exits,
                data,
                services={"config-api", "policy", WORKER},
                sink=services_log(exits, data, verbose=args.verbose),
                poll_interval=args.poll_interval,
                process_limit=dovecot_process_limit(args.mailboxes),
                verbose_proctitle=True,
            )
            figures = asyncio.run(measure(mail, args))
            figures["settings"]["host_limits"] = host_limits
            figures["warnings"] += _short_limits(host_limits, args.mailboxes)
            return figures
        finally:
            ignore_signals()  # a second Ctrl-C must not cut the shutdown short
            say("stopping everything")


async def measure(mail: MailSystem, args: argparse.Namespace) -> dict[str, Any]:
    say(f"creating {args.mailboxes} mailboxes and their agents")
    boxes = await create_mailboxes(mail, args.mailboxes)
    async with httpx.AsyncClient(timeout=10) as http:
        metrics = WorkerMetrics(mail, http)
        up = await watch_up(mail, metrics, boxes, args.watch_timeout)
        say(f"watched: the gauge at N {up.gauge_full_s} s after, all in IDLE {up.all_idle_s} s")
        watching = await receive_run(mail, metrics, boxes, _plan("idle", args.duration, args))
        polling = None
        if not args.skip_polling:
            stopped_in = await asyncio.to_thread(restart_without_idle, mail)
            say(f"the worker watching {len(boxes)} stopped in {stopped_in:.1f} s; now polling")
            plan = _plan("polling", args.polling_duration, args)
            polling = {
                **await receive_run(mail, metrics, boxes, plan),
                "worker_stop_s": round(stopped_in, 1),
            }
    return report(args, up, watching, polling)


def _plan(label: str, duration: float, args: argparse.Namespace) -> Plan:
    drain = args.poll_interval + DRAIN_AFTER_POLL_S
    polled = label == "polling"
    return Plan(label, args.rate, duration, args.poll_interval, drain, baseline_per_poll=polled)


def restart_without_idle(mail: MailSystem) -> float:
    """The mail-worker again with IDLE off (polls read every mailbox); answers how long the one
    watching every mailbox took to stop (it releases each lease and logs each session out)."""
    supervisor = mail.system.supervisor
    began = time.monotonic()
    supervisor.stop_service(WORKER)
    stopped_in = time.monotonic() - began
    supervisor.restart_service(WORKER, IDLE_OFF)  # stopped already: this starts it
    supervisor.wait_ready(timeout=60)
    return stopped_in


def dovecot_process_limit(mailboxes: int) -> int:
    """Room for the tests' sessions as before, plus one per watch: each TLS session holds an
    imap-login process (its TLS proxy) and an imap process, and the limit is per service."""
    return PROCESS_LIMIT + mailboxes


# --- the host's limits -----------------------------------------------------------------------

INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")


def raise_host_limits(exits: ExitStack, mailboxes: int) -> dict[str, int]:
    """What a session in IDLE per mailbox needs of the host, raised for this run where short;
    answers the limits in effect."""
    needed = dovecot_process_limit(mailboxes)
    return {
        "open_files": _raise_open_files(4 * needed),
        "inotify_instances": _raise_inotify_instances(exits, needed),
    }


def _raise_open_files(needed: int) -> int:
    """The worker holds a socket per watch and Dovecot's master a few descriptors per process:
    this process's soft limit, which the servers inherit, raised when short."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    say(f"open files: soft limit raised from {soft} to {raised}")
    return raised


def _raise_inotify_instances(exits: ExitStack, needed: int) -> int:
    """Dovecot hears of new mail for a session in IDLE through inotify: an instance per imap
    process, all of them the one mail user's, whose limit is 128 by default. Past it Dovecot logs
    "Inotify instance limit ... exceeded, disabling" and looks only every 30 s
    (mailbox_idle_check_interval), which a real provider does not: raised for the run (a
    machine-wide setting, so put back at the end)."""
    current = int(INOTIFY_INSTANCES.read_text())
    if current >= needed:
        return current
    try:
        INOTIFY_INSTANCES.write_text(str(needed))
    except OSError as exc:
        say(f"could not raise {INOTIFY_INSTANCES} from {current} to {needed}: {exc}")
        return current
    exits.callback(INOTIFY_INSTANCES.write_text, str(current))
    say(f"{INOTIFY_INSTANCES}: raised from {current} to {needed} for the run")
    return needed


# --- report ----------------------------------------------------------------------------------


def report(
    args: argparse.Namespace,
    up: WatchUp,
    watching: dict[str, Any],
    polling: dict[str, Any] | None,
) -> dict[str, Any]:
    memory_kb = (watching["worker_rss_mb"] - up.worker_rss_before_mb) * 1024 / args.mailboxes
    watch_up_figures = {
        **asdict(up),
        "worker_rss_watching_mb": watching["worker_rss_mb"],
        "worker_rss_per_mailbox_kb": round(memory_kb, 1),
    }
    return {
        "benchmark": "receiving: IMAP IDLE in N mailboxes with one mail-worker, against polling",
        "settings": {
            "mailboxes": args.mailboxes,
            "rate_per_s": args.rate,
            "duration_s": args.duration,
            "polling_duration_s": None if args.skip_polling else args.polling_duration,
            "poll_interval_s": args.poll_interval,
            "test_concurrency": TEST_CONCURRENCY,
            "dovecot_process_limit": dovecot_process_limit(args.mailboxes),
            "delivery": "doveadm save into a random mailbox; latency from its return to the event",
        },
        "machine": {"cores": CORES},
        "code": code_under_test(),
        "watch_up": watch_up_figures,
        "watching": watching,
        "polling": polling,
        "targets": verdicts(up, watching),
        "warnings": doubts(up, watching, polling),
    }


def verdicts(up: WatchUp, watching: dict[str, Any]) -> list[dict[str, Any]]:
    cpu = watching["worker_cpu_ms_per_message"]["net"]
    return [
        _verdict("all in IDLE, after the last connected", up.all_idle_s, WATCHED_WITHIN_S, "s"),
        _verdict("p95 latency, stored to received event", watching["latency_s"]["p95"], P95_S, "s"),
        _verdict("worker CPU per received message, net", cpu, CPU_PER_MESSAGE_MS, "ms"),
    ]


def _verdict(figure: str, value: float | None, target: float, unit: str) -> dict[str, Any]:
    passed = value is not None and value <= target
    return {"figure": figure, "value": value, "target": f"<= {target:g} {unit}",
            "verdict": "PASS" if passed else "MISS"}  # fmt: skip


def doubts(up: WatchUp, watching: dict[str, Any], polling: dict[str, Any] | None) -> list[str]:
    """What makes figures doubtful: mail never heard of, lost sessions, a saturated machine."""
    found = []
    if up.all_idle_s is None:
        found.append(f"only {up.most_idle} mailboxes were in IDLE when the wait ended")
    for name, run in (("IDLE", watching), ("polling", polling)):
        if run is None:
            continue
        if run["latest_start_s"] > 1.0:
            found.append(f"{name}: a delivery started {run['latest_start_s']} s late (not steady)")
        if run["missing"]:
            found.append(f"{name}: {run['missing']} messages had no received event in time")
        if run["machine_busy_percent"]["receiving"] > 100 * BUSY_MACHINE:
            busy = run["machine_busy_percent"]["receiving"]
            found.append(f"{name}: the machine was {busy}% busy while receiving (waits for a core)")
    before, during = (watching["worker_counters"][f"polls_in_{w}"] for w in ("baseline", "window"))
    if abs(before - during) > 0.1 * max(before, during):
        found.append(f"IDLE: {before:g} polls in the baseline, {during:g} in the window: the net"
                     " CPU counts the difference")  # fmt: skip
    if replaced := watching["worker_counters"]["reconnects"]:
        found.append(f"IDLE: {replaced:g} watch sessions were lost and replaced")
    return found


def _short_limits(limits: dict[str, int], mailboxes: int) -> list[str]:
    if limits["inotify_instances"] < dovecot_process_limit(mailboxes):
        return [
            f"fs.inotify.max_user_instances is {limits['inotify_instances']}: Dovecot looks for"
            " new mail only every 30 s in the sessions past it"
        ]
    return []


def render(r: dict[str, Any]) -> Iterator[str]:
    s, up = r["settings"], r["watch_up"]
    yield f"mailbridge {r['benchmark']}"
    yield (
        f"  {s['mailboxes']} mailboxes, {s['rate_per_s']:g} messages/s for {s['duration_s']:g} s"
        f" (polling: {s['polling_duration_s']} s), poll interval {s['poll_interval_s']:g} s;"
        f" code {r['code']['commit']}{' (dirty)' if r['code']['dirty'] else ''}"
    )
    yield f"  delivery: {s['delivery']}"
    yield ""
    yield (
        f"  watch-up: {s['mailboxes']} connection tests in {up['tests_s']} s; after the last ok,"
        f" the gauge at {s['mailboxes']} in {up['gauge_full_s']} s, all in IDLE in"
        f" {up['all_idle_s']} s ({up['dovecot_processes']} Dovecot processes)"
    )
    yield (
        f"  memory: worker RSS {up['worker_rss_before_mb']} MB before, "
        f"{up['worker_rss_watching_mb']} MB watching = {up['worker_rss_per_mailbox_kb']} KB per"
        " watched mailbox"
    )
    yield ""
    yield from _columns(r["watching"], r["polling"])
    yield ""
    for t in r["targets"]:
        yield f"  {t['figure']:<52} {t['value']!s:>8}  (target {t['target']})  {t['verdict']}"
    for warning in r["warnings"]:
        yield f"  warning: {warning}"


def _columns(watching: dict[str, Any], polling: dict[str, Any] | None) -> Iterator[str]:
    runs = [("IDLE", watching)] + ([("polling", polling)] if polling else [])
    rows: list[tuple[str, Callable[[dict[str, Any]], object]]] = [
        ("delivered (per s)", lambda f: f"{f['delivered']} ({f['delivered_per_s']})"),
        ("received / missing", lambda f: f"{f['received']} / {f['missing']}"),
        ("latency p50 s", lambda f: f["latency_s"]["p50"]),
        ("latency p95 s", lambda f: f["latency_s"]["p95"]),
        ("latency p99 s", lambda f: f["latency_s"]["p99"]),
        ("latency max s", lambda f: f["latency_s"]["max"]),
        ("worker CPU ms/message raw", lambda f: f["worker_cpu_ms_per_message"]["raw"]),
        ("worker CPU ms/message net", lambda f: f["worker_cpu_ms_per_message"]["net"]),
        ("worker CPU % of a core base/recv", lambda f: _pair(f["worker_cpu_percent_of_a_core"])),
        (f"machine busy % of {CORES} cores base/recv", lambda f: _pair(f["machine_busy_percent"])),
        ("polls handled base/recv", lambda f: _polls(f["worker_counters"])),
        ("messages read by watches", lambda f: f"{f['worker_counters']['pushed']:g}"),
        ("commands waiting start/end", lambda f: _pair(f["commands_waiting"])),
        ("worker CPU ms per poll", lambda f: f.get("worker_cpu_ms_per_poll", "")),
        ("worker RSS MB", lambda f: f["worker_rss_mb"]),
    ]
    yield "  " + f"{'':<38}" + "".join(f"{name:>14}" for name, _ in runs)
    for label, pick in rows:
        yield "  " + f"{label:<38}" + "".join(f"{pick(run)!s:>14}" for _, run in runs)


def _polls(counters: dict[str, float]) -> str:
    return f"{counters['polls_in_baseline']:g}/{counters['polls_in_window']:g}"


def _pair(pair: dict[str, Any]) -> str:
    first, second = pair.values()
    return f"{first}/{second}"


# --- entry -----------------------------------------------------------------------------------


def _mb(size: float) -> float:
    return round(size / 2**20, 1)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--mailboxes", type=int, default=1000, help="mailboxes connected")
    parser.add_argument("--rate", type=float, default=10.0, help="messages delivered per second")
    parser.add_argument(
        "--duration",
        type=float,
        default=60.0,
        help="seconds of delivery with IDLE (and of its idle baseline)",
    )
    parser.add_argument(
        "--polling-duration",
        type=float,
        default=120.0,
        help="seconds of delivery when polling (and of its idle baseline)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=PRODUCT_POLL_INTERVAL_S,
        help="config-api's poll interval, and the watches' quiet spell",
    )
    parser.add_argument(
        "--watch-timeout",
        type=float,
        default=180.0,
        help="seconds to wait for all mailboxes watched",
    )
    parser.add_argument("--skip-polling", action="store_true", help="no polling comparison")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--verbose", action="store_true", help="services' logs to stderr")
    args = parser.parse_args(argv)
    if not 1 <= args.mailboxes <= WATCH_BUDGET:
        parser.error(f"--mailboxes must be 1 to {WATCH_BUDGET}: one worker watches that many")
    if args.rate <= 0 or args.duration <= 0 or args.polling_duration <= 0:
        parser.error("--rate, --duration and --polling-duration must be > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stoppable()
    try:
        figures = run(args)
    except KeyboardInterrupt:
        say("interrupted; everything it started has been stopped")
        return 130
    except CouldNotMeasure as exc:
        say(f"could not measure: {exc}")
        return 1
    print(json.dumps(figures, indent=2) if args.json else "\n".join(render(figures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
