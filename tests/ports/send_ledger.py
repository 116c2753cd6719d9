"""What every mail-worker ``SendLedger`` promises: a claim is create-if-absent, a put overwrites."""

from __future__ import annotations

import asyncio

from mailbridge.mail_worker.ports import LedgerEntry, LedgerState, SendLedger
from mailbridge.shared.ids import new_id

STARTED = LedgerEntry(LedgerState.DATA_STARTED, "<m1@mailbridge>")
SENT = LedgerEntry(LedgerState.SENT, "<m1@mailbridge>", ("ada@x.example", "bob@y.example"))


class SendLedgerContract:
    """Not collected itself: a subclass names the implementation with ``make``."""

    async def make(self) -> SendLedger:
        raise NotImplementedError

    async def test_a_command_never_recorded_reads_as_none(self) -> None:
        ledger = await self.make()
        assert await ledger.get(new_id("cmd")) is None

    async def test_the_first_claim_records_its_entry(self) -> None:
        ledger, command_id = await self.make(), new_id("cmd")
        assert await ledger.claim(command_id, STARTED) is True
        assert await ledger.get(command_id) == STARTED

    async def test_a_second_claim_is_refused_and_the_first_entry_stays(self) -> None:
        ledger, command_id = await self.make(), new_id("cmd")
        await ledger.claim(command_id, STARTED)
        assert await ledger.claim(command_id, SENT) is False
        assert await ledger.get(command_id) == STARTED

    async def test_of_concurrent_claims_exactly_one_wins(self) -> None:
        ledger, command_id = await self.make(), new_id("cmd")
        entries = [LedgerEntry(LedgerState.DATA_STARTED, f"<m{n}@mailbridge>") for n in range(8)]
        won = await asyncio.gather(*(ledger.claim(command_id, entry) for entry in entries))
        assert won.count(True) == 1
        assert await ledger.get(command_id) == entries[won.index(True)]

    async def test_a_put_overwrites_a_claimed_entry_with_its_recipients(self) -> None:
        ledger, command_id = await self.make(), new_id("cmd")
        await ledger.claim(command_id, STARTED)
        await ledger.put(command_id, SENT)
        assert await ledger.get(command_id) == SENT

    async def test_an_entry_put_without_a_claim_makes_the_next_claim_lose(self) -> None:
        ledger, command_id = await self.make(), new_id("cmd")
        await ledger.put(command_id, SENT)
        assert await ledger.claim(command_id, STARTED) is False
        assert await ledger.get(command_id) == SENT

    async def test_each_command_has_its_own_entry(self) -> None:
        ledger, first, second = await self.make(), new_id("cmd"), new_id("cmd")
        await ledger.claim(first, STARTED)
        assert await ledger.claim(second, SENT) is True
        assert (await ledger.get(first), await ledger.get(second)) == (STARTED, SENT)

    async def test_a_released_claim_can_be_claimed_again(self) -> None:
        ledger, command_id = await self.make(), new_id("cmd")
        await ledger.claim(command_id, STARTED)
        await ledger.release(command_id)
        assert await ledger.get(command_id) is None
        assert await ledger.claim(command_id, STARTED) is True
        assert await ledger.get(command_id) == STARTED
