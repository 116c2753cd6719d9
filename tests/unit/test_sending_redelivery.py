"""The ledger is read while a send is prepared and authorized, not before: a redelivery still
answers from it, whatever the preparation says, and nothing reaches SMTP before it answered."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr

from mailbridge.mail_worker import handlers
from mailbridge.mail_worker.ports import LedgerEntry, LedgerState
from mailbridge.shared.errors import ErrorCode, ErrorInfo, PermanentError
from mailbridge.shared.messages import (
    Credentials,
    Event,
    MessageSendFailed,
    MessageSent,
    SendMessage,
    SendOutcome,
)
from tests.unit.fakes import (
    FakeCredentials,
    FakePolicy,
    FakeSentFolder,
    FakeSubmitter,
    FixedClock,
    MemoryLedger,
)

ACCOUNT = Credentials(provider="imap", email="agent@example.com", password=SecretStr("pw"))
REFUSED = ErrorInfo.of(ErrorCode.SEND_LIMIT_REACHED)


def command() -> SendMessage:
    return SendMessage(agent_id="a1", command_id="cmd_redelivered", to=["ada@example.com"])


async def send(
    ledger: MemoryLedger, submitter: FakeSubmitter, policy: FakePolicy | None = None
) -> list[Event]:
    return await handlers.send_message(
        command(), credentials=FakeCredentials(ACCOUNT), submitter=submitter,
        sent_folder=FakeSentFolder(), ledger=ledger, policy=policy or FakePolicy(),
        clock=FixedClock(),
    )  # fmt: skip


async def test_a_sent_command_refused_on_redelivery_is_still_sent_not_blocked() -> None:
    ledger = MemoryLedger()
    first = await send(ledger, FakeSubmitter())

    again = await send(ledger, FakeSubmitter(), FakePolicy(REFUSED))  # the quota filled since

    assert isinstance(first[0], MessageSent) and isinstance(again[0], MessageSent)
    assert again[0].message_id == first[0].message_id


async def test_a_started_command_refused_on_redelivery_stays_unknown() -> None:
    ledger = MemoryLedger()
    ledger.entries["cmd_redelivered"] = LedgerEntry(LedgerState.DATA_STARTED, "<m@example.com>")
    submitter = FakeSubmitter()

    events = await send(ledger, submitter, FakePolicy(REFUSED))

    assert isinstance(events[0], MessageSendFailed)
    assert events[0].outcome is SendOutcome.UNKNOWN
    assert submitter.submitted == []


async def test_a_refusal_without_a_ledger_entry_is_the_outcome() -> None:
    ledger = MemoryLedger()
    with pytest.raises(PermanentError) as refused:
        await send(ledger, FakeSubmitter(), FakePolicy(REFUSED))
    assert refused.value.code is ErrorCode.SEND_LIMIT_REACHED
    assert ledger.entries == {}


class SlowLedger(MemoryLedger):
    """Answers ``get`` only when released, so the test sees what happens meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def get(self, command_id: str) -> LedgerEntry | None:
        await self.release.wait()
        return await super().get(command_id)


async def test_nothing_reaches_smtp_before_the_ledger_answered() -> None:
    ledger, submitter, policy = SlowLedger(), FakeSubmitter(), FakePolicy()
    sending = asyncio.create_task(send(ledger, submitter, policy))
    await asyncio.sleep(0.01)

    assert len(policy.asked) == 1  # prepared and authorized while the ledger is read
    assert submitter.submitted == []
    ledger.release.set()
    assert isinstance((await sending)[0], MessageSent)
    assert len(submitter.submitted) == 1
