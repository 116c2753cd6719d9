"""SessionPool: logged-in sessions kept per account for a short idle period.

A burst of sends (or polls) for one account reuses one login instead of logging in each time.
Sessions are keyed by server, user and a hash of the secret, so changed credentials never reuse an
old session; an idle session is checked (e.g. NOOP) before reuse, closed after ``idle_seconds``,
and at most ``max_idle`` are kept. A session idle for less than ``check_after_seconds`` is reused
without the check: a burst pays no extra round trip, and a dead one fails before any data.
A session whose use raised is closed, never returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from mailbridge.shared.messages import Credentials, ServerEndpoint

S = TypeVar("S")


def account_key(credentials: Credentials, server: ServerEndpoint) -> str:
    secret = credentials.password.get_secret_value() if credentials.password else ""
    digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
    user = credentials.username or credentials.email
    return f"{server.host}:{server.port}|{user}|{digest}"


class SessionPool(Generic[S]):
    def __init__(
        self,
        *,
        alive: Callable[[S], Awaitable[bool]],
        close: Callable[[S], Awaitable[None]],
        idle_seconds: float = 30.0,
        max_idle: int = 64,
        check_after_seconds: float = 2.0,
        max_per_account: int = 4,
    ) -> None:
        self._alive, self._close = alive, close
        self._idle_seconds, self._max_idle = idle_seconds, max_idle
        self._check_after = check_after_seconds
        self._max_per_account = max_per_account
        self._in_use: dict[str, asyncio.Semaphore] = {}
        self._idle: OrderedDict[tuple[str, int], tuple[float, S]] = OrderedDict()
        self._serial = 0

    @asynccontextmanager
    async def lease(self, key: str, open_session: Callable[[], Awaitable[S]]) -> AsyncIterator[S]:
        """A session of this account; at most ``max_per_account`` at once (servers limit the
        connections of one user: Dovecot to 10, Gmail to 15), the rest wait their turn."""
        async with self._in_use.setdefault(key, asyncio.Semaphore(self._max_per_account)):
            session = await self._take(key) or await open_session()
            try:
                yield session
            except BaseException:
                await self._close(session)
                raise
            await self._give_back(key, session)

    async def close_all(self) -> None:
        while self._idle:
            _, (_, session) = self._idle.popitem(last=False)
            await self._close(session)

    async def _take(self, key: str) -> S | None:
        await self._expire()
        while (slot := next((s for s in self._idle if s[0] == key), None)) is not None:
            idle_since, session = self._idle.pop(slot)  # taken before any await: ours alone
            if await self._still_usable(idle_since, session):
                return session
            await self._close(session)
        return None

    async def _still_usable(self, idle_since: float, session: S) -> bool:
        """A session used a moment ago is trusted; one idle longer is asked (NOOP) first."""
        recent = time.monotonic() - idle_since < self._check_after
        return recent or await self._alive(session)

    async def _give_back(self, key: str, session: S) -> None:
        self._serial += 1
        self._idle[(key, self._serial)] = (time.monotonic(), session)
        while len(self._idle) > self._max_idle:
            _, (_, oldest) = self._idle.popitem(last=False)
            await self._close(oldest)

    async def _expire(self) -> None:
        deadline = time.monotonic() - self._idle_seconds
        expired = [self._idle.pop(s) for s, (at, _) in list(self._idle.items()) if at < deadline]
        for _, session in expired:
            await self._close(session)
