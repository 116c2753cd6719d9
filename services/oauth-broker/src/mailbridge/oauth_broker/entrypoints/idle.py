"""The loop that keeps idle grants alive before the providers' inactivity limits."""

from __future__ import annotations

import asyncio
import logging

from mailbridge.oauth_broker.handlers.tokens import TokenDeps, refresh_idle
from mailbridge.shared.background import BackgroundLoop

log = logging.getLogger(__name__)
TICK_SECONDS = 3600.0


class IdleRefresher(BackgroundLoop):
    name = "idle-grant-refresher"

    def __init__(self, deps: TokenDeps, tick_seconds: float = TICK_SECONDS) -> None:
        self._deps, self._tick = deps, tick_seconds

    async def run(self) -> None:
        while True:
            try:
                await refresh_idle(self._deps)
            except Exception:  # one bad round must not end the loop
                log.exception("refreshing idle grants failed")
            await asyncio.sleep(self._tick)
