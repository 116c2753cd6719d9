"""NatsKvPacing on a real nats-server: two replicas, each on its own connection, share one
mailbox's pacing through the bucket. Times are the real clock; each assertion is a lower bound
that holds however late the event loop runs (a call enters at or after the start it was given),
and waits end on events (a call seen waiting, a holder let go), never on a sleep that hopes.

Limits are shrunk so a test takes a second: Graph-like rules, four calls in flight and sends
paced at ten a second after the first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import nats
import pytest

from mailbridge.mail_worker.adapters.pacing import NatsKvPacing, PacingLimits
from mailbridge.mail_worker.domain.pacing import Budget, ProviderRules
from mailbridge.mail_worker.ports import ApiCall
from mailbridge.shared.errors import ErrorCode, RetryableError
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import Provider

GRAPH = Provider.MICROSOFT
SENDS = Budget("sends", limit=11, window=1.0, burst=1, costs={"send": 1})  # one each 0.1 s
SPACING = 0.1
CLOCK_SLACK = 0.005  # asyncio may wake a timer this much before time.time() says it is due


def limits(*budgets: Budget, concurrency: int = 4, lease: float = 30.0) -> PacingLimits:
    rules = {GRAPH: ProviderRules(budgets, concurrency)}
    return PacingLimits(rules, max_wait_seconds=5.0, lease_seconds=lease, poll_seconds=0.02)


@dataclass
class Waits:
    """A replica's sleeps, counted, so a test can wait until a call has been seen waiting."""

    count: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def sleep(self, seconds: float) -> None:
        self.count += 1
        self.changed.set()
        await asyncio.sleep(seconds)

    async def at_least(self, count: int) -> None:
        while self.count < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), timeout=10)


@dataclass
class Replicas:
    nats_url: str
    stack: AsyncExitStack
    bucket: str = field(default_factory=lambda: f"PACING_{new_id('t')}".replace("-", "_"))

    async def replica(
        self, pacing: PacingLimits, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> NatsKvPacing:
        """A worker of its own: its own NATS connection, the shared bucket."""
        client = await nats.connect(self.nats_url)
        self.stack.push_async_callback(client.close)
        replica = NatsKvPacing(pacing, name=self.bucket, sleep=sleep)
        await replica.start(client.jetstream())
        return replica

    async def pair(self, pacing: PacingLimits) -> tuple[NatsKvPacing, NatsKvPacing]:
        return await self.replica(pacing), await self.replica(pacing)


@pytest.fixture
async def replicas(nats_url: str) -> AsyncIterator[Replicas]:
    async with AsyncExitStack() as stack:
        yield Replicas(nats_url, stack)


AGENT = "agent:pacing@example.test"  # characters a KV key does not allow


async def entered_at(pacing: NatsKvPacing, kind: ApiCall = ApiCall.SEND) -> float:
    async with pacing.call(AGENT, GRAPH, kind):
        return time.time()


async def test_a_hold_off_on_one_replica_makes_the_other_wait_at_least_that_long(
    replicas: Replicas,
) -> None:
    first, second = await replicas.pair(limits())
    asked = time.time()
    await first.hold_off(AGENT, 0.6)
    await second.hold_off(AGENT, 0.1)  # a shorter Retry-After does not shorten it

    assert await entered_at(second) >= asked + 0.6 - CLOCK_SLACK


async def test_a_hold_off_longer_than_a_delivery_may_wait_is_retried_with_its_seconds(
    replicas: Replicas,
) -> None:
    first, second = await replicas.pair(limits())
    await first.hold_off(AGENT, 120.0)

    with pytest.raises(RetryableError) as refused:
        await entered_at(second)

    assert refused.value.code is ErrorCode.PROVIDER_THROTTLED
    assert 115.0 < (refused.value.retry_after_seconds or 0) <= 120.0


@dataclass
class Holder:
    """A call that stays in flight until let go."""

    inside: asyncio.Event = field(default_factory=asyncio.Event)
    let_go: asyncio.Event = field(default_factory=asyncio.Event)

    async def hold(self, pacing: NatsKvPacing, flight: list[int]) -> None:
        async with pacing.call(AGENT, GRAPH, ApiCall.READ):
            flight.append(1)
            assert len(flight) <= 4
            self.inside.set()
            await self.let_go.wait()
            flight.pop()


async def test_four_calls_in_flight_across_both_replicas_and_a_fifth_waits_for_a_release(
    replicas: Replicas,
) -> None:
    waits = Waits()
    first, second = await replicas.replica(limits()), await replicas.replica(limits(), waits.sleep)
    flight: list[int] = []
    holders = [Holder() for _ in range(5)]
    tasks = [
        asyncio.create_task(h.hold((first, second)[n % 2], flight))
        for n, h in enumerate(holders[:4])
    ]
    await asyncio.wait_for(asyncio.gather(*(h.inside.wait() for h in holders[:4])), timeout=10)

    tasks.append(asyncio.create_task(holders[4].hold(second, flight)))
    await waits.at_least(3)  # the fifth has found every slot taken, again and again
    assert not holders[4].inside.is_set()

    holders[0].let_go.set()  # a call on the first replica ends
    await asyncio.wait_for(holders[4].inside.wait(), timeout=10)
    for holder in holders:
        holder.let_go.set()
    await asyncio.gather(*tasks)


async def test_a_burst_of_sends_from_both_replicas_is_spread_out_not_refused(
    replicas: Replicas,
) -> None:
    first, second = await replicas.pair(limits(SENDS))
    asked = time.time()

    entered = sorted(await asyncio.gather(*(entered_at((first, second)[n % 2]) for n in range(8))))

    for n, at in enumerate(entered):  # the n-th start is n spacings after the first at least
        assert at >= asked + n * SPACING - CLOCK_SLACK, (n, at - asked)


async def test_reads_are_not_held_back_by_a_send_backlog(replicas: Replicas) -> None:
    first, second = await replicas.pair(limits(SENDS))
    sends = asyncio.gather(*(entered_at(first) for _ in range(6)))
    asked = time.time()

    read = await entered_at(second, ApiCall.READ)

    assert read - asked < 4 * SPACING  # well before the backlog of sends has gone
    await sends


async def test_a_crashed_replicas_lease_expires_and_frees_its_slot(replicas: Replicas) -> None:
    one_slot = limits(concurrency=1, lease=0.5)
    crashed, survivor = await replicas.replica(one_slot), await replicas.replica(one_slot)
    asked = time.time()
    in_flight = crashed.call(AGENT, GRAPH, ApiCall.SEND)
    await in_flight.__aenter__()  # admitted, and then the replica dies: never released

    assert await entered_at(survivor) >= asked + 0.5 - CLOCK_SLACK
    await in_flight.__aexit__(None, None, None)


async def test_a_call_waiting_for_its_turn_honours_a_hold_off_set_meanwhile_elsewhere(
    replicas: Replicas,
) -> None:
    """The second send sleeps until its start (half a second); the other replica's Retry-After
    arrives during that sleep; the send wakes, sees it, and waits it out."""
    slow = Budget("sends", limit=3, window=1.0, burst=1, costs={"send": 1})  # one each 0.5 s
    waits = Waits()
    sender, other = (
        await replicas.replica(limits(slow), waits.sleep),
        await replicas.replica(limits(slow)),
    )
    sends = asyncio.gather(entered_at(sender), entered_at(sender))
    await waits.at_least(1)  # the second send is asleep until its turn
    held = time.time()
    await other.hold_off(AGENT, 0.8)

    first, second = sorted(await sends)

    assert first < held <= second - 0.8 + CLOCK_SLACK
