from __future__ import annotations

import asyncio
from email import message_from_bytes

import pytest

from mailbridge.mail_worker import handlers
from mailbridge.mail_worker.domain import mime
from mailbridge.mail_worker.ports import (
    LedgerEntry,
    LedgerState,
    OutcomeUnknownError,
    SendRefusedError,
)
from mailbridge.shared.errors import ErrorCode, ErrorInfo, PermanentError, RetryableError
from mailbridge.shared.messages import (
    Attachment,
    MessageSendFailed,
    MessageSent,
    SendMessage,
    SendOutcome,
)
from tests.factories import ACCOUNT, send
from tests.fakes.clock import FixedClock
from tests.fakes.mail_worker import (
    FakePolicy,
    FakeSentFolder,
    FakeSubmitter,
    MemoryLedger,
)


def command(**fields: object) -> SendMessage:
    return SendMessage(
        agent_id="a1", **{"to": ["Ada <ada@example.com>"], "subject": "Hi", "text": "x", **fields}
    )  # type: ignore[arg-type]


def test_the_message_id_is_stable_per_command() -> None:
    first = mime.build(
        command(command_id="cmd_1"), sender="agent@example.com", now=FixedClock().now()
    )
    again = mime.build(
        command(command_id="cmd_1"), sender="agent@example.com", now=FixedClock().now()
    )
    assert first.message_id == again.message_id == "<cmd_1@example.com>"


def test_bcc_reaches_the_envelope_but_no_header() -> None:
    built = mime.build(
        command(bcc=["hidden@example.com"]), sender="agent@example.com", now=FixedClock().now()
    )
    assert "hidden@example.com" in built.recipients
    assert b"hidden@example.com" not in built.as_bytes()


def test_html_and_attachments_make_a_multipart_message() -> None:
    attachment = Attachment(filename="a.txt", content_type="text/plain", content_base64="aGVsbG8=")
    built = mime.build(
        command(html="<p>x</p>", attachments=[attachment]),
        sender="a@example.com",
        now=FixedClock().now(),
    )
    parsed = message_from_bytes(built.as_bytes())
    assert parsed.get_content_type() == "multipart/mixed"
    assert [part.get_filename() for part in parsed.walk() if part.get_filename()] == ["a.txt"]


@pytest.mark.parametrize("field", ["subject", "in_reply_to"])
def test_a_header_with_a_line_break_is_refused_before_connecting(field: str) -> None:
    with pytest.raises(PermanentError):
        mime.build(
            command(**{field: "x\r\nBcc: evil@example.com"}),
            sender="a@example.com",
            now=FixedClock().now(),
        )


async def test_a_redelivered_sent_command_is_not_sent_again() -> None:
    ledger, submitter = MemoryLedger(), FakeSubmitter()
    cmd = command()
    first = await send(cmd, submitter, ledger)
    again = await send(cmd, submitter, ledger)
    assert len(submitter.submitted) == 1
    assert isinstance(first[0], MessageSent)
    assert again[0].message_id == first[0].message_id


async def test_a_connection_lost_during_data_is_unknown_and_never_resent() -> None:
    ledger = MemoryLedger()
    cmd = command()
    lost = await send(cmd, FakeSubmitter(after_data=OutcomeUnknownError()), ledger)
    retried_submitter = FakeSubmitter()
    retried = await send(cmd, retried_submitter, ledger)
    assert isinstance(lost[0], MessageSendFailed) and lost[0].outcome == "unknown"
    assert isinstance(retried[0], MessageSendFailed) and retried[0].outcome == "unknown"
    assert retried_submitter.submitted == []


async def test_a_failure_before_data_leaves_the_command_free_to_retry() -> None:
    ledger = MemoryLedger()
    cmd = command()
    with pytest.raises(RetryableError):
        await send(cmd, FakeSubmitter(before_data=RetryableError(ErrorCode.TIMEOUT)), ledger)
    assert ledger.entries == {}
    assert isinstance((await send(cmd, FakeSubmitter(), ledger))[0], MessageSent)


async def test_a_failed_sent_copy_does_not_fail_the_send() -> None:
    ledger = MemoryLedger()
    events = await send(
        command(), FakeSubmitter(), ledger, FakeSentFolder(RetryableError(ErrorCode.TIMEOUT))
    )
    assert isinstance(events[0], MessageSent)
    assert next(iter(ledger.entries.values())).state is LedgerState.SENT


def test_a_reply_subject_gets_one_re() -> None:
    assert mime.reply_subject("Order") == "Re: Order"
    assert mime.reply_subject("RE: Order") == "RE: Order"
    assert LedgerEntry(LedgerState.SENT, "<m>").accepted == ()


async def test_a_second_delivery_in_flight_at_once_does_not_send_again() -> None:
    ledger, cmd = MemoryLedger(), command()
    first = await send(cmd, FakeSubmitter(), ledger)  # finished: the ledger says sent
    del ledger.entries[cmd.command_id]  # as if the second delivery had read the ledger before it
    ledger.entries[cmd.command_id] = LedgerEntry(LedgerState.SENT, first[0].message_id)
    late = FakeSubmitter()
    original_get = ledger.get

    async def stale_get(command_id: str) -> LedgerEntry | None:  # the read happened earlier
        ledger.get = original_get  # type: ignore[method-assign]
        return None

    ledger.get = stale_get  # type: ignore[method-assign]
    events = await send(cmd, late, ledger)
    assert late.submitted == []
    assert isinstance(events[0], MessageSent)


async def test_policy_is_asked_with_the_envelope_the_mta_will_get() -> None:
    policy, submitter = FakePolicy(), FakeSubmitter()
    cmd = command(to=['"ok@allowed.com" <Evil@X.IO.>'], cc=["a@allowed.com; b@allowed.com"])
    await send(cmd, submitter, MemoryLedger(), policy=policy)
    envelope = ["Evil@x.io", "a@allowed.com", "b@allowed.com"]
    assert policy.asked[0].recipients == envelope == submitter.submitted[0].recipients
    assert policy.asked[0].sender == ACCOUNT.email


async def test_a_refused_send_is_blocked_and_nothing_is_submitted() -> None:
    refusal = ErrorInfo.of(ErrorCode.RECIPIENT_NOT_ALLOWED, "evil@x.io is not allowed.")
    submitter, ledger = FakeSubmitter(), MemoryLedger()
    with pytest.raises(SendRefusedError) as refused:
        await send(command(), submitter, ledger, policy=FakePolicy(refusal))
    event = handlers.send_failed(command(), refused.value)
    assert (event.outcome, event.error) == (SendOutcome.BLOCKED, refusal)
    assert submitter.submitted == [] and ledger.entries == {}


def test_an_unparseable_recipient_is_refused_before_connecting() -> None:
    with pytest.raises(PermanentError) as refused:
        mime.build(command(to=["a@b@c"]), sender="agent@example.com", now=FixedClock().now())
    assert refused.value.code is ErrorCode.INVALID_INPUT


# The ledger is read while a send is prepared and authorized, not before: a redelivery still
# answers from it, whatever the preparation says, and nothing reaches SMTP before it answered.

LIMIT_REACHED = ErrorInfo.of(ErrorCode.SEND_LIMIT_REACHED)


async def test_a_sent_command_refused_on_redelivery_is_still_sent_not_blocked() -> None:
    ledger, cmd = MemoryLedger(), command(command_id="cmd_again")
    first = await send(cmd, FakeSubmitter(), ledger)
    again = await send(cmd, FakeSubmitter(), ledger, policy=FakePolicy(LIMIT_REACHED))
    assert isinstance(first[0], MessageSent) and isinstance(again[0], MessageSent)
    assert again[0].message_id == first[0].message_id


async def test_a_started_command_refused_on_redelivery_stays_unknown() -> None:
    ledger, submitter, cmd = MemoryLedger(), FakeSubmitter(), command(command_id="cmd_started")
    ledger.entries[cmd.command_id] = LedgerEntry(LedgerState.DATA_STARTED, "<m@example.com>")
    events = await send(cmd, submitter, ledger, policy=FakePolicy(LIMIT_REACHED))
    assert isinstance(events[0], MessageSendFailed) and events[0].outcome is SendOutcome.UNKNOWN
    assert submitter.submitted == []


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
    sending = asyncio.create_task(send(command(), submitter, ledger, policy=policy))
    await asyncio.sleep(0.01)
    assert len(policy.asked) == 1  # prepared and authorized while the ledger is read
    assert submitter.submitted == []
    ledger.release.set()
    assert isinstance((await sending)[0], MessageSent)
    assert len(submitter.submitted) == 1
