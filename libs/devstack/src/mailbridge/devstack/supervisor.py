"""Runs mailbridge's services as child processes, with prefixed logs and a clean shutdown.

Each child gets its own session (so a terminal's Ctrl-C reaches only the supervisor, which then
stops the children in reverse order with SIGTERM, and SIGKILL for any that linger).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TextIO

import httpx

from mailbridge.devstack.processes import stop_process


@dataclass(frozen=True)
class ServiceProcess:
    name: str
    module: str
    env: dict[str, str]
    ready_url: str | None = None


@dataclass
class Supervisor:
    services: list[ServiceProcess]
    sink: TextIO = field(default_factory=lambda: sys.stdout)
    _children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for service in self.services:
            self.start_service(service.name)

    def start_service(self, name: str) -> None:
        service = self._spec(name)
        child = subprocess.Popen(
            [sys.executable, "-m", service.module],
            env={**os.environ, **service.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._children[name] = child
        threading.Thread(target=self._forward, args=(name, child), daemon=True).start()

    def stop_service(self, name: str, *, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; answers the exit status (None: not running)."""
        child = self._children.pop(name, None)
        return None if child is None else stop_process(child, timeout=timeout)

    def restart_service(self, name: str, env: Mapping[str, str]) -> None:
        """Stop the service and start it again with ``env`` over its settings (kept for later
        restarts): one run of a benchmark with a setting changed, the rest of the system up."""
        spec = self._spec(name)
        self.stop_service(name)
        self.services[self.services.index(spec)] = replace(spec, env={**spec.env, **env})
        self.start_service(name)

    def stop(self) -> None:
        for service in reversed(self.services):
            self.stop_service(service.name)

    def pids(self) -> dict[str, int]:
        return {name: child.pid for name, child in self._children.items()}

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until every service's readiness URL answers 200; fail if a child exits."""
        deadline = time.monotonic() + timeout
        pending = [s for s in self.services if s.ready_url and s.name in self._children]
        while pending:
            self._fail_if_exited()
            pending = [s for s in pending if not _answers_ok(s.ready_url)]
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout:.0f}s: {[s.name for s in pending]}")
            time.sleep(0.1) if pending else None

    def _fail_if_exited(self) -> None:
        for name, child in self._children.items():
            if child.poll() is not None:
                raise RuntimeError(f"{name} exited with {child.returncode} (see its log lines)")

    def _spec(self, name: str) -> ServiceProcess:
        return next(s for s in self.services if s.name == name)

    def _forward(self, name: str, child: subprocess.Popen[bytes]) -> None:
        assert child.stdout is not None
        width = max(len(s.name) for s in self.services)
        for raw in child.stdout:
            line = raw.decode(errors="replace").rstrip()
            with self._lock:
                self.sink.write(f"{name:<{width}} | {line}\n")
                self.sink.flush()

    def __enter__(self) -> Supervisor:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _answers_ok(url: str | None) -> bool:
    if url is None:
        return True
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
