"""The parts of a connection test's result: each check timed, its failure kept as its error."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TypeVar

from mailbridge.shared.errors import ErrorInfo, MailbridgeError
from mailbridge.shared.messages import CheckResult, ConnectionTested, TestConnection

T = TypeVar("T")


async def timed(work: Awaitable[T]) -> tuple[T | None, CheckResult]:
    """What ``work`` answers, or None when it failed, and the check that says which."""
    started = time.perf_counter()
    try:
        value = await work
    except MailbridgeError as exc:
        return None, CheckResult(ok=False, latency_ms=elapsed_ms(started), error=exc.info())
    return value, CheckResult(ok=True, latency_ms=elapsed_ms(started))


def failed_test(command: TestConnection, error: ErrorInfo, started: float) -> ConnectionTested:
    """A test that ended before any check could run."""
    return ConnectionTested(
        agent_id=command.agent_id,
        command_id=command.command_id,
        ok=False,
        latency_ms=elapsed_ms(started),
        error=error,
    )


def elapsed_ms(started: float) -> int:
    """Milliseconds since ``started`` (a ``time.perf_counter()``)."""
    return int((time.perf_counter() - started) * 1000)
