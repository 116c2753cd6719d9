"""SessionPool: logged-in sessions kept per account for a short idle period.

A burst of sends (or polls) for one account reuses one login instead of logging in each time.
Sessions are keyed by server, user and a hash of the secret, so changed credentials never reuse an
old session; an idle session is checked (e.g. NOOP) before reuse, closed after ``idle_seconds``,
and at most ``max_idle`` are kept. A session idle for less than ``check_after_seconds`` is reused
without the check: a burst pays no extra round trip, and a dead one fails before any data.
A session whose use raised is closed, never returned.

Servers limit connections per client (Dovecot 10 per user and address, Gmail 15 per account;
processes per service), so a worker bounds them twice: ``max_per_account`` sessions of one
account at once, and a ``HostBudget`` shared by the IMAP and SMTP pools: at most so many open
sessions to one host, idle ones closed first to make room.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from mailbridge.shared.messages import Credentials, ServerEndpoint

S = TypeVar("S")


@dataclass(frozen=True)
class SessionKey:
    """One account at one server; the secret only as a hash, so a changed one is another key."""

    host: str
    port: int
    user: str
    secret_digest: str


def account_key(credentials: Credentials, server: ServerEndpoint) -> SessionKey:
    secret = credentials.password.get_secret_value() if credentials.password else ""
    digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
    return SessionKey(server.host, server.port, credentials.username or credentials.email, digest)


class _Evicting(Protocol):
    async def evict_idle(self, host: str) -> bool: ...


class HostBudget:
    """At most ``limit`` open sessions to one host, across every pool that shares this budget."""

    def __init__(self, limit: int = 64) -> None:
        self._limit = limit
        self._open: Counter[str] = Counter()
        self._pools: list[_Evicting] = []
        self._freed: list[asyncio.Future[None]] = []

    def serve(self, pool: _Evicting) -> None:
        self._pools.append(pool)

    async def reserve(self, host: str) -> None:
        """Room for one more session to ``host``: an idle one (of any account) is closed to make
        it, or else this waits until a session to that host closes or turns idle."""
        while self._open[host] >= self._limit:
            if not await self._evict_idle(host):
                freed = asyncio.get_running_loop().create_future()
                self._freed.append(freed)
                await freed
        self._open[host] += 1

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """One session to ``host`` outside any pool (a connection test's fresh login)."""
        await self.reserve(host)
        try:
            yield
        finally:
            self.release(host)

    def release(self, host: str) -> None:
        """A session to ``host`` closed."""
        self._open[host] -= 1
        self.wake()

    def wake(self) -> None:
        """A session closed or turned idle: whoever waits for room looks again."""
        waiting, self._freed = self._freed, []
        for freed in waiting:
            if not freed.done():
                freed.set_result(None)

    async def _evict_idle(self, host: str) -> bool:
        for pool in self._pools:
            if await pool.evict_idle(host):
                return True
        return False


@dataclass(frozen=True)
class SessionLimits:
    """How an adapter's pool keeps its sessions; one ``budget`` for all of a worker's pools."""

    budget: HostBudget
    max_per_account: int = 4
    idle_seconds: float = 30.0

    def pool(
        self, *, alive: Callable[[S], Awaitable[bool]], close: Callable[[S], Awaitable[None]]
    ) -> SessionPool[S]:
        return SessionPool(
            alive=alive,
            close=close,
            idle_seconds=self.idle_seconds,
            max_per_account=self.max_per_account,
            budget=self.budget,
        )


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
        budget: HostBudget | None = None,
    ) -> None:
        self._alive, self._close = alive, close
        self._idle_seconds, self._max_idle = idle_seconds, max_idle
        self._check_after = check_after_seconds
        self._max_per_account = max_per_account
        self._budget = budget if budget is not None else HostBudget()
        self._budget.serve(self)
        self._in_use: dict[SessionKey, asyncio.Semaphore] = {}
        self._idle: OrderedDict[tuple[SessionKey, int], tuple[float, S]] = OrderedDict()
        self._serial = 0

    @asynccontextmanager
    async def lease(
        self, key: SessionKey, open_session: Callable[[], Awaitable[S]]
    ) -> AsyncIterator[S]:
        """A session of this account; at most ``max_per_account`` at once, the rest wait."""
        async with self._in_use.setdefault(key, asyncio.Semaphore(self._max_per_account)):
            session = await self._take(key) or await self._open(key, open_session)
            try:
                yield session
            except BaseException:
                await self._discard(key, session)
                raise
            await self._give_back(key, session)

    async def close_all(self) -> None:
        while self._idle:
            (key, _), (_, session) = self._idle.popitem(last=False)
            await self._discard(key, session)

    async def evict_idle(self, host: str) -> bool:
        """Close the longest idle session to ``host``, if there is one (room for another)."""
        slot = next((s for s in self._idle if s[0].host == host), None)
        if slot is None:
            return False
        _, session = self._idle.pop(slot)
        await self._discard(slot[0], session)
        return True

    async def _open(self, key: SessionKey, open_session: Callable[[], Awaitable[S]]) -> S:
        await self._budget.reserve(key.host)
        try:
            return await open_session()
        except BaseException:
            self._budget.release(key.host)
            raise

    async def _discard(self, key: SessionKey, session: S) -> None:
        self._budget.release(key.host)
        await self._close(session)

    async def _take(self, key: SessionKey) -> S | None:
        await self._expire()
        while (slot := next((s for s in self._idle if s[0] == key), None)) is not None:
            idle_since, session = self._idle.pop(slot)  # taken before any await: ours alone
            if await self._still_usable(idle_since, session):
                return session
            await self._discard(key, session)
        return None

    async def _still_usable(self, idle_since: float, session: S) -> bool:
        """A session used a moment ago is trusted; one idle longer is asked (NOOP) first."""
        recent = time.monotonic() - idle_since < self._check_after
        return recent or await self._alive(session)

    async def _give_back(self, key: SessionKey, session: S) -> None:
        self._serial += 1
        self._idle[(key, self._serial)] = (time.monotonic(), session)
        while len(self._idle) > self._max_idle:
            (oldest_key, _), (_, oldest) = self._idle.popitem(last=False)
            await self._discard(oldest_key, oldest)
        self._budget.wake()

    async def _expire(self) -> None:
        deadline = time.monotonic() - self._idle_seconds
        expired = [slot for slot, (at, _) in self._idle.items() if at < deadline]
        for slot in expired:
            entry = self._idle.pop(slot, None)  # another task may have taken it meanwhile
            if entry is not None:
                await self._discard(slot[0], entry[1])
