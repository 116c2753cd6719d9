"""What every policy ``SendQuota`` promises: count, decide and record as one step, once per
command, and a released send gives its unit back."""

from __future__ import annotations

import asyncio

from mailbridge.policy.domain.restrictions import WindowCounts
from mailbridge.policy.ports import QuotaDecision, SendQuota
from mailbridge.shared.errors import ErrorCode, ErrorInfo
from mailbridge.shared.ids import new_id

FULL = ErrorInfo.of(ErrorCode.SEND_LIMIT_REACHED, "The limit is reached.")


def allow(seen: list[WindowCounts]) -> QuotaDecision:
    """Allows every send, keeping the counts it was shown."""

    def decide(used: WindowCounts) -> ErrorInfo | None:
        seen.append(used)
        return None

    return decide


def at_most(limit: int) -> QuotaDecision:
    return lambda used: FULL if used.hour >= limit else None


class SendQuotaContract:
    """Not collected itself: a subclass names the implementation with ``make``."""

    async def make(self) -> SendQuota:
        raise NotImplementedError

    async def test_an_allowed_send_holds_a_reservation(self) -> None:
        quota = await self.make()
        reservation = await quota.reserve(new_id("agent"), new_id("cmd"), lambda used: None)
        assert reservation.reservation_id is not None and reservation.refusal is None

    async def test_each_decision_sees_the_sends_reserved_before_it(self) -> None:
        quota, agent_id = await self.make(), new_id("agent")
        seen: list[WindowCounts] = []
        for _ in range(3):
            await quota.reserve(agent_id, new_id("cmd"), allow(seen))
        assert seen == [WindowCounts(0, 0), WindowCounts(1, 1), WindowCounts(2, 2)]

    async def test_a_refused_send_holds_nothing_and_is_not_counted(self) -> None:
        quota, agent_id = await self.make(), new_id("agent")
        seen: list[WindowCounts] = []
        refused = await quota.reserve(agent_id, new_id("cmd"), lambda used: FULL)
        assert (refused.reservation_id, refused.refusal) == (None, FULL)
        await quota.reserve(agent_id, new_id("cmd"), allow(seen))
        assert seen == [WindowCounts(0, 0)]

    async def test_a_redelivered_command_keeps_its_reservation_without_a_new_decision(
        self,
    ) -> None:
        quota, agent_id, command_id = await self.make(), new_id("agent"), new_id("cmd")
        seen: list[WindowCounts] = []
        first = await quota.reserve(agent_id, command_id, allow(seen))
        again = await quota.reserve(agent_id, command_id, allow(seen))
        assert again == first
        assert seen == [WindowCounts(0, 0)]  # asked once: counted once

    async def test_a_released_send_gives_its_unit_back_once(self) -> None:
        quota, agent_id, command_id = await self.make(), new_id("agent"), new_id("cmd")
        seen: list[WindowCounts] = []
        await quota.reserve(agent_id, command_id, lambda used: None)
        assert await quota.release(agent_id, command_id) is True
        assert await quota.release(agent_id, command_id) is False
        await quota.reserve(agent_id, new_id("cmd"), allow(seen))
        assert seen == [WindowCounts(0, 0)]

    async def test_releasing_a_command_never_reserved_answers_false(self) -> None:
        quota = await self.make()
        assert await quota.release(new_id("agent"), new_id("cmd")) is False

    async def test_a_released_command_reserves_anew_and_counts_again(self) -> None:
        quota, agent_id, command_id = await self.make(), new_id("agent"), new_id("cmd")
        seen: list[WindowCounts] = []
        first = await quota.reserve(agent_id, command_id, lambda used: None)
        await quota.release(agent_id, command_id)
        again = await quota.reserve(agent_id, command_id, allow(seen))
        assert again.reservation_id is not None and again.reservation_id != first.reservation_id
        assert seen == [WindowCounts(0, 0)]
        await quota.reserve(agent_id, new_id("cmd"), allow(seen))
        assert seen[-1] == WindowCounts(1, 1)

    async def test_each_agent_has_its_own_count(self) -> None:
        quota, mine, theirs = await self.make(), new_id("agent"), new_id("agent")
        seen: list[WindowCounts] = []
        await quota.reserve(mine, new_id("cmd"), lambda used: None)
        await quota.reserve(theirs, new_id("cmd"), allow(seen))
        assert seen == [WindowCounts(0, 0)]

    async def test_thirty_concurrent_sends_with_a_limit_of_ten_reserve_exactly_ten(self) -> None:
        quota, agent_id = await self.make(), new_id("agent")
        answers = await asyncio.gather(
            *(quota.reserve(agent_id, new_id("cmd"), at_most(10)) for _ in range(30))
        )
        assert sum(a.reservation_id is not None for a in answers) == 10
        assert [a.refusal for a in answers if a.reservation_id is None] == [FULL] * 20
