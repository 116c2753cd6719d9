"""The services as processes on a given infrastructure, ready, with an operator key.

The one starter behind ``make run`` (``stack.py``), the end-to-end tests and the benchmarks, so
they all start the services alike: a free HTTP port, ``services()``, the ``Supervisor``, the wait
until every service is ready (or an error with the last lines of their log), the operator key
from config-api's own command, and everything stopped on exit.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Collection, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from mailbridge.devstack.environment import (
    HOST,
    POLL_INTERVAL_SECONDS,
    TEST_TIMEOUT_SECONDS,
    Infrastructure,
    create_api_key,
    services,
)
from mailbridge.devstack.processes import free_port
from mailbridge.devstack.supervisor import ServiceProcess, Supervisor

CONFIG_API = "config-api"  # serves the HTTP API and makes the keys: every system has it
READY_WITHIN_SECONDS = 60.0
TAIL_LINES = 40

Arrange = Callable[[list[ServiceProcess]], list[ServiceProcess]]


@dataclass(frozen=True)
class RunningSystem:
    base_url: str
    supervisor: Supervisor
    infra: Infrastructure
    operator_key: str
    log: Path | TextIO  # where the services' lines go; a path or a StringIO can be read back

    @property
    def nats_url(self) -> str:
        return self.infra.nats_url

    @property
    def database_url(self) -> str:
        return self.infra.database_url

    def new_api_key(self, *scope: str) -> str:
        """Another key through config-api's own command: ``"--operator"`` or ``"--org", ORG``."""
        return create_api_key(_config_api(self.supervisor.services), *scope)

    def log_text(self) -> str:
        """The services' log so far; empty when it went to a stream such as stdout."""
        return _read_back(self.log)

    def log_tail(self, lines: int = TAIL_LINES) -> str:
        return _last_lines(self.log_text(), lines)


@contextmanager
def running_system(
    infra: Infrastructure,
    *,
    only: Collection[str] | None = None,
    arrange: Arrange | None = None,
    http_port: int | None = None,
    test_timeout: float = TEST_TIMEOUT_SECONDS,
    poll_interval: float = POLL_INTERVAL_SECONDS,
    sink: TextIO | Path | None = None,
    ready_within: float = READY_WITHIN_SECONDS,
) -> Iterator[RunningSystem]:
    """The services on ``infra``, ready, with an operator key; all stopped on exit.

    ``only``: the services to run (all four by default; config-api always among them).
    ``arrange``: a change to their process list before anything starts, e.g. mail-worker
    replicas with an ack wait of their own. ``http_port``: config-api's (a free one by default).
    ``test_timeout`` and ``poll_interval``: as ``services()`` takes them. ``sink``: where the
    services' log lines go: stdout by default, a stream, or a file path (written anew).
    """
    port = free_port() if http_port is None else http_port
    every = services(infra, http_port=port, test_timeout=test_timeout, poll_interval=poll_interval)
    processes = _chosen(every, only)
    if arrange is not None:
        processes = arrange(processes)
    with ExitStack() as stack:
        log: Path | TextIO = sys.stdout if sink is None else sink
        writer = stack.enter_context(log.open("w")) if isinstance(log, Path) else log
        supervisor = stack.enter_context(Supervisor(processes, sink=writer))
        key = _when_ready(supervisor, ready_within, log)
        yield RunningSystem(f"http://{HOST}:{port}", supervisor, infra, key, log)


def _chosen(processes: list[ServiceProcess], only: Collection[str] | None) -> list[ServiceProcess]:
    if only is None:
        return processes
    if unknown := set(only) - {p.name for p in processes}:
        raise ValueError(f"no such services: {sorted(unknown)}")
    if CONFIG_API not in only:
        raise ValueError(f"{CONFIG_API} must run: it serves the API and makes the operator key")
    return [p for p in processes if p.name in only]


def _when_ready(supervisor: Supervisor, timeout: float, log: Path | TextIO) -> str:
    """The operator key, once every service is ready; else their last log lines in the error."""
    try:
        supervisor.wait_ready(timeout=timeout)
    except RuntimeError as exc:
        tail = _last_lines(_read_back(log), TAIL_LINES)
        shown = f"\n--- the services' last log lines ---\n{tail}" if tail else ""
        raise RuntimeError(f"{exc}{shown}") from exc
    return create_api_key(_config_api(supervisor.services), "--operator")


def _read_back(log: Path | TextIO) -> str:
    if isinstance(log, Path):
        return log.read_text(errors="replace") if log.exists() else ""
    if isinstance(log, io.StringIO):
        return log.getvalue()
    return ""  # stdout or another stream: the lines are already where they were written


def _last_lines(text: str, count: int) -> str:
    return "\n".join(text.splitlines()[-count:])


def _config_api(processes: list[ServiceProcess]) -> ServiceProcess:
    return next(p for p in processes if p.name == CONFIG_API)
