"""Sending and polling a Google or Microsoft mailbox through its API, on fakes of the ports: the
same ledger as SMTP, a lost answer resolved from the sent mail, a refusal that frees the retry,
and polls that deliver each message once across a resync."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from mailbridge.mail_worker import handlers
from mailbridge.mail_worker.domain.cursor import ApiCursor
from mailbridge.mail_worker.ports import (
    ApiMessage,
    LedgerState,
    OutcomeUnknownError,
    PollLimits,
    ProbedMailbox,
)
from mailbridge.shared.errors import ErrorCode, RetryableError
from mailbridge.shared.messages import (
    Credentials,
    MessageSendFailed,
    MessageSent,
    PollMailbox,
    Provider,
    SendMessage,
    SendOutcome,
    ServerEndpoint,
)
from tests.fakes.clock import FixedClock
from tests.fakes.mail_worker import (
    FakeCredentials,
    FakeMailApi,
    FakeMailbox,
    FakePolicy,
    FakeProviderMailbox,
    FakeSentFolder,
    FakeSubmitter,
    MemoryContentStore,
    MemoryCursorStore,
    MemoryLedger,
)

GOOGLE = Credentials(provider="google", email="agent@example.com")
LIMITS = PollLimits(backlog=2, batch=3, max_message_bytes=1_000_000)


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "RESOLVE_DELAYS_SECONDS", (0.0, 0.0))


class Google:
    """A Google agent whose mail goes through a fake Gmail; the SMTP fakes beside it."""

    def __init__(self) -> None:
        self.box = FakeProviderMailbox(ProbedMailbox("agent@example.com", None))  # type: ignore[arg-type]
        self.ledger = MemoryLedger()
        self.smtp, self.sent_folder = FakeSubmitter(), FakeSentFolder()
        self.cursors = MemoryCursorStore()

    async def send(self, command: SendMessage) -> list[object]:
        def route(agent_id: str, account: Credentials) -> handlers.SendRoute:
            return handlers.send_route(
                agent_id, account, apis={Provider.GOOGLE: FakeMailApi(self.box)},
                submitter=self.smtp, sent_folder=self.sent_folder, sent_search=self.sent_folder,
            )  # fmt: skip

        events = await handlers.send_message(
            command, credentials=FakeCredentials(GOOGLE), route=route, ledger=self.ledger,
            policy=FakePolicy(), content=MemoryContentStore(), clock=FixedClock(),
        )  # fmt: skip
        return list(events)

    async def poll(self) -> list[str]:
        events, cursor = await handlers.poll_mailbox(
            PollMailbox(agent_id="a1"), credentials=FakeCredentials(GOOGLE),
            inbox=FakeMailbox(None), cursors=self.cursors,  # type: ignore[arg-type]
            limits=LIMITS, apis={Provider.GOOGLE: FakeMailApi(self.box)},
        )  # fmt: skip
        await self.cursors.put("a1", cursor)
        return [event.subject or "" for event in events]

    def arrives(self, subject: str, at: float) -> None:
        raw = f"Message-ID: <{subject}@x>\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()
        self.box.inbox.append(ApiMessage(f"id-{subject}", raw, at))


def send_command() -> SendMessage:
    return SendMessage(agent_id="a1", command_id="cmd_1", to=["ada@example.com"], subject="Hi")


async def test_an_api_send_goes_through_the_api_and_leaves_smtp_and_sent_alone() -> None:
    google = Google()
    [event] = await google.send(send_command())
    assert isinstance(event, MessageSent) and event.message_id == "<cmd_1@example.com>"
    assert [o.message_id for o in google.box.sent] == ["<cmd_1@example.com>"]
    assert google.smtp.submitted == [] and google.sent_folder.copies == []
    assert google.ledger.entries["cmd_1"].state is LedgerState.SENT


async def test_a_lost_answer_found_among_the_sent_mail_is_sent_not_unknown() -> None:
    google = Google()
    google.box.send_error = OutcomeUnknownError("no answer")
    [event] = await google.send(send_command())
    assert isinstance(event, MessageSent)
    assert google.ledger.entries["cmd_1"].state is LedgerState.SENT
    [again] = await google.send(send_command())  # redelivered: answered from the ledger
    assert isinstance(again, MessageSent) and len(google.box.sent) == 1


async def test_a_lost_answer_not_in_the_sent_mail_stays_unknown_and_is_never_resent() -> None:
    google = Google()
    google.box.send_error = OutcomeUnknownError("no answer")
    google.box.find_sent = _never_found  # type: ignore[method-assign]
    [event] = await google.send(send_command())
    assert isinstance(event, MessageSendFailed) and event.outcome is SendOutcome.UNKNOWN
    google.box.send_error = None
    [again] = await google.send(send_command())
    assert isinstance(again, MessageSendFailed) and again.outcome is SendOutcome.UNKNOWN
    assert len(google.box.sent) == 1


async def _never_found(message_id: str) -> bool:
    return False


async def test_a_refusal_after_the_claim_frees_the_retry_to_send() -> None:
    google = Google()
    google.box.send_error = RetryableError(ErrorCode.PROVIDER_THROTTLED, "429")
    with pytest.raises(RetryableError):
        await google.send(send_command())
    assert "cmd_1" not in google.ledger.entries
    google.box.send_error = None
    [event] = await google.send(send_command())
    assert isinstance(event, MessageSent) and len(google.box.sent) == 1


async def test_a_first_poll_delivers_the_backlog_then_each_new_message_once() -> None:
    google = Google()
    for n, subject in enumerate(["old1", "old2", "old3"]):
        google.arrives(subject, at=100.0 + n)
    assert await google.poll() == ["old2", "old3"]  # backlog 2
    google.arrives("new1", at=200.0)
    assert await google.poll() == ["new1"]
    assert await google.poll() == []


async def test_an_expired_position_resyncs_from_the_newest_arrival_without_repeats() -> None:
    google = Google()
    google.arrives("a", at=100.0)
    google.arrives("b", at=100.0)
    assert await google.poll() == ["a", "b"]
    google.arrives("c", at=100.0)  # arrived in the same second as the last ones seen
    google.arrives("d", at=150.0)
    google.box.expired = True
    assert await google.poll() == ["c", "d"]
    cursor = google.cursors.cursors["a1"]
    assert isinstance(cursor, ApiCursor) and cursor.newest == 150.0


async def test_api_events_are_deduplicated_by_the_providers_id() -> None:
    google = Google()
    google.arrives("a", at=100.0)
    events, _ = await handlers.poll_mailbox(
        PollMailbox(agent_id="a1"), credentials=FakeCredentials(GOOGLE),
        inbox=FakeMailbox(None), cursors=google.cursors,  # type: ignore[arg-type]
        limits=LIMITS, apis={Provider.GOOGLE: FakeMailApi(google.box)},
    )  # fmt: skip
    [event] = events
    assert event.provider_message_id == "id-a" and event.uidvalidity == 0
    assert event.dedupe_id() == "recv-a1-api-id-a"


class GmailSmtp(Google):
    """An app-password account on Gmail's SMTP server, which files what it sends in Sent."""

    def __init__(self, host: str = "smtp.gmail.com") -> None:
        super().__init__()
        self.account = Credentials(
            provider="imap", email="agent@example.com", password=SecretStr("pw"),
            smtp=ServerEndpoint(host=host, port=587, security="starttls"),
        )  # fmt: skip

    async def send(self, command: SendMessage) -> list[object]:
        def route(agent_id: str, account: Credentials) -> handlers.SendRoute:
            return handlers.send_route(
                agent_id, account, apis={}, submitter=self.smtp,
                sent_folder=self.sent_folder, sent_search=self.sent_folder,
            )  # fmt: skip

        events = await handlers.send_message(
            command, credentials=FakeCredentials(self.account), route=route, ledger=self.ledger,
            policy=FakePolicy(), content=MemoryContentStore(), clock=FixedClock(),
        )  # fmt: skip
        return list(events)


async def test_gmails_smtp_gets_no_second_sent_copy_and_a_lost_answer_is_found_there() -> None:
    gmail = GmailSmtp()
    [event] = await gmail.send(send_command())
    assert isinstance(event, MessageSent) and gmail.sent_folder.copies == []

    lost = GmailSmtp()
    lost.smtp.after_data = OutcomeUnknownError("the connection ended during DATA")
    lost.sent_folder.filed.add("<cmd_1@example.com>")  # Gmail filed it before the answer was lost
    [resolved] = await lost.send(send_command())
    assert isinstance(resolved, MessageSent)
    assert lost.ledger.entries["cmd_1"].state is LedgerState.SENT


async def test_any_other_smtp_server_gets_its_copy_and_a_lost_answer_stays_unknown() -> None:
    other = GmailSmtp("smtp.fastmail.com")
    [event] = await other.send(send_command())
    assert isinstance(event, MessageSent) and len(other.sent_folder.copies) == 1

    lost = GmailSmtp("smtp.fastmail.com")
    lost.smtp.after_data = OutcomeUnknownError("the connection ended during DATA")
    [unknown] = await lost.send(send_command())
    assert isinstance(unknown, MessageSendFailed) and unknown.outcome is SendOutcome.UNKNOWN
