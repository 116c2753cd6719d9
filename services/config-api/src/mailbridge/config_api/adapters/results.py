"""PendingTestResults: matches ``ConnectionTested`` events to the HTTP requests awaiting them.

Every config-api replica subscribes (without a queue group) to all test results, so whichever
replica holds the waiting request sees its answer. ``expect`` is called before the command is
published, so a fast worker cannot answer before anyone listens.
"""

from __future__ import annotations

import asyncio
import contextlib

from mailbridge.shared.messages import ConnectionTested


class PendingTestResults:
    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[ConnectionTested]] = {}

    def expect(self, command_id: str) -> None:
        self._waiting[command_id] = asyncio.get_running_loop().create_future()

    async def wait(self, command_id: str, timeout: float) -> ConnectionTested | None:
        future = self._waiting[command_id]
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(command_id, None)

    def deliver(self, result: ConnectionTested) -> None:
        future = self._waiting.get(result.command_id)
        if future is not None and not future.done():
            with contextlib.suppress(asyncio.InvalidStateError):
                future.set_result(result)
