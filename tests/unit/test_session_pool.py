from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr

from mailbridge.mail_worker.adapters.sessions import (
    HostBudget,
    SessionKey,
    SessionPool,
    account_key,
)
from mailbridge.shared.messages import Credentials, ServerEndpoint

SERVER = ServerEndpoint(host="smtp.example.com", port=587, security="starttls")


def key(name: str = "k", host: str = "mail.example.com") -> SessionKey:
    return SessionKey(host, 993, name, "digest")


class Sessions:
    """Numbered fake sessions; records which were opened, closed, and which still answer."""

    def __init__(self) -> None:
        self.opened: list[int] = []
        self.closed: list[int] = []
        self.dead: set[int] = set()

    async def open(self) -> int:
        self.opened.append(len(self.opened) + 1)
        return self.opened[-1]

    async def alive(self, session: int) -> bool:
        return session not in self.dead

    async def close(self, session: int) -> None:
        self.closed.append(session)


def pool(sessions: Sessions, idle_seconds: float = 30.0, max_idle: int = 64) -> SessionPool[int]:
    return SessionPool(
        alive=sessions.alive,
        close=sessions.close,
        idle_seconds=idle_seconds,
        max_idle=max_idle,
        check_after_seconds=0.0,  # always ask, so the liveness rules show
    )


async def use(p: SessionPool[int], sessions: Sessions, account: str = "k") -> int:
    async with p.lease(key(account), sessions.open) as session:
        return session


async def test_a_burst_for_one_account_logs_in_once() -> None:
    sessions = Sessions()
    p = pool(sessions)
    assert [await use(p, sessions) for _ in range(5)] == [1] * 5
    assert sessions.opened == [1]


async def test_a_session_that_no_longer_answers_is_replaced() -> None:
    sessions = Sessions()
    p = pool(sessions)
    await use(p, sessions)
    sessions.dead.add(1)
    assert await use(p, sessions) == 2
    assert sessions.closed == [1]


async def test_a_session_whose_use_failed_is_closed_not_reused() -> None:
    sessions = Sessions()
    p = pool(sessions)
    with pytest.raises(RuntimeError):
        async with p.lease(key(), sessions.open):
            raise RuntimeError("the SMTP conversation broke")
    assert sessions.closed == [1]
    assert await use(p, sessions) == 2


async def test_idle_sessions_expire_and_the_pool_is_bounded() -> None:
    sessions = Sessions()
    expiring = pool(sessions, idle_seconds=0.0)
    await use(expiring, sessions, "a")
    assert await use(expiring, sessions, "a") == 2  # the first had idled out
    bounded = pool(sessions, max_idle=1)
    await use(bounded, sessions, "x")
    await use(bounded, sessions, "y")  # returning it evicts x's session
    assert 3 in sessions.closed


def test_changed_credentials_never_share_a_session() -> None:
    old = Credentials(provider="imap", email="a@example.com", password=SecretStr("old"))
    new = old.model_copy(update={"password": SecretStr("new")})
    assert account_key(old, SERVER) != account_key(new, SERVER)
    assert "old" not in repr(account_key(old, SERVER))


async def test_a_session_used_a_moment_ago_is_reused_without_asking() -> None:
    sessions = Sessions()
    trusting = SessionPool(alive=sessions.alive, close=sessions.close, check_after_seconds=60.0)
    await use(trusting, sessions)
    sessions.dead.add(1)  # it would fail a NOOP, but the burst does not ask
    assert await use(trusting, sessions) == 1


async def test_concurrent_leases_of_one_account_never_collide_and_are_bounded() -> None:
    sessions = Sessions()
    in_use, most = 0, 0
    bounded = SessionPool(alive=sessions.alive, close=sessions.close, max_per_account=3)

    async def work() -> None:
        nonlocal in_use, most
        async with bounded.lease(key(), sessions.open):
            in_use += 1
            most = max(most, in_use)
            await asyncio.sleep(0)
            in_use -= 1

    await asyncio.gather(*(work() for _ in range(50)))
    assert most == 3
    assert len(sessions.opened) <= 3


async def test_one_workers_pools_never_hold_more_sessions_to_a_host_than_its_budget() -> None:
    """IMAP and SMTP pools share the budget: 40 accounts at once, never more than 5 sessions open
    to the host (opened and not yet closed), and a host of its own is not held up by it."""
    sessions = Sessions()
    budget = HostBudget(limit=5)
    imap, smtp = (
        SessionPool(alive=sessions.alive, close=sessions.close, budget=budget) for _ in range(2)
    )
    most = 0

    async def work(p: SessionPool[int], account: str, host: str = "mail.example.com") -> None:
        nonlocal most
        async with p.lease(key(account, host), sessions.open):
            open_to_host = len(sessions.opened) - len(sessions.closed)
            most = max(most, open_to_host)
            await asyncio.sleep(0)

    await asyncio.gather(
        *(work(imap if n % 2 else smtp, f"user{n}") for n in range(40)),
        work(imap, "elsewhere", host="other.example.com"),
    )
    assert most <= 5 + 1  # five to the busy host, and the one to other.example.com
    assert len(sessions.opened) - len(sessions.closed) <= 5 + 1


async def test_an_idle_session_of_another_account_makes_room_under_the_budget() -> None:
    sessions = Sessions()
    p = SessionPool(alive=sessions.alive, close=sessions.close, budget=HostBudget(limit=1))
    assert await use(p, sessions, "a") == 1  # stays idle in the pool
    assert await use(p, sessions, "b") == 2  # at the limit: a's idle session is closed first
    assert sessions.closed == [1]


async def test_at_the_budget_a_lease_waits_for_a_session_to_close() -> None:
    sessions = Sessions()
    budget = HostBudget(limit=1)
    p = SessionPool(alive=sessions.alive, close=sessions.close, budget=budget, max_idle=0)
    holding = asyncio.Event()
    done = asyncio.Event()

    async def hold() -> None:
        async with p.lease(key("a"), sessions.open):
            holding.set()
            await done.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    waiter = asyncio.create_task(use(p, sessions, "b"))
    await asyncio.sleep(0.01)
    assert not waiter.done() and sessions.opened == [1]  # waits: nothing idle to close
    done.set()
    assert await waiter == 2
    await holder
    assert sessions.closed[0] == 1  # the first was closed before the second was opened
