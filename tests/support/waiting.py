"""One way for a test to wait for what the system does asynchronously.

A test waits for a state with ``eventually``: a probe asked until its answer is truthy, and a
failure that says what never came and what the probe last saw. A wait that proves an absence (a
duplicate that must not arrive) is a fixed time instead, named where it is used with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | bool | None]],
    *,
    what: str,
    timeout: float = 30.0,
    every: float = 0.1,
    wake: asyncio.Event | None = None,
) -> T:
    """The probe's first truthy answer, asked every ``every`` seconds (and at once whenever
    ``wake`` is set, for state that an event callback changes); fails after ``timeout`` seconds
    with ``what`` and the probe's last answer. A probe still running then is cancelled."""
    answer: T | bool | None = None
    try:
        async with asyncio.timeout(timeout) as deadline:
            while not (answer := await probe()):
                await _pause(every, wake)
    except TimeoutError:
        if not deadline.expired():
            raise  # the probe's own timeout, not ours
        raise AssertionError(f"{what}: not within {timeout:g} s; last answer {answer!r}") from None
    return cast(T, answer)


async def _pause(every: float, wake: asyncio.Event | None) -> None:
    if wake is None:
        await asyncio.sleep(every)
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(every):
            await wake.wait()
    wake.clear()  # the probe runs next: whatever set it is seen then
