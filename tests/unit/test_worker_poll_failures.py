"""The mail-worker's poll runner when a poll fails or a poll in backoff passes: what it publishes
for config-api, and that a failure is settled (termed), never retried with another bad login."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mailbridge.mail_worker.entrypoints.commands import run_poll
from mailbridge.mail_worker.ports import FetchedBatch, FirstUid
from mailbridge.shared.errors import ErrorCode, MailbridgeError, PermanentError, RetryableError
from mailbridge.shared.messages import (
    Credentials,
    MailboxPolled,
    MailboxPollFailed,
    MessageReceived,
    PollMailbox,
)
from tests.fakes.config_api import RecordingPublisher
from tests.unit.test_worker_subscribers import ForgettingCache, fake_container


class FakeInbox:
    """Answers every fetch with one new message, or raises ``error``."""

    def __init__(self, error: MailbridgeError | None = None) -> None:
        self.error = error

    async def fetch_new(
        self, credentials: Credentials, first_uid: FirstUid, limit: int, max_bytes: int
    ) -> FetchedBatch:
        if self.error is not None:
            raise self.error
        raw = b"From: a@example.com\r\nSubject: hi\r\nMessage-ID: <m1@x>\r\n\r\nhello\r\n"
        return FetchedBatch(uidvalidity=7, first_uid=first_uid(7, 2), messages=[(1, raw)])


async def polled(inbox: FakeInbox, command: PollMailbox) -> list[object]:
    container = replace(fake_container(ForgettingCache()), inbox=inbox)
    await run_poll(container, command.model_dump_json().encode(), False)
    publisher = container.publisher
    assert isinstance(publisher, RecordingPublisher)
    return list(publisher.published)


@pytest.mark.parametrize(
    ("error", "auth"),
    [
        (PermanentError(ErrorCode.AUTH_FAILED), True),
        (RetryableError(ErrorCode.TIMEOUT), False),
        (RetryableError(ErrorCode.PROVIDER_THROTTLED, retry_after_seconds=30), False),
    ],
)
async def test_a_failed_poll_is_reported_once_and_termed_not_retried(
    error: MailbridgeError, auth: bool
) -> None:
    container = replace(fake_container(ForgettingCache()), inbox=FakeInbox(error))
    command = PollMailbox(agent_id="a1")

    with pytest.raises(PermanentError):  # the edge terms it: no redelivery, no second login
        await run_poll(container, command.model_dump_json().encode(), False)

    publisher = container.publisher
    assert isinstance(publisher, RecordingPublisher)
    [failure] = publisher.published
    assert isinstance(failure, MailboxPollFailed)
    assert (failure.error.code, failure.auth) == (error.code, auth)
    assert (failure.command_id, failure.poll_issued_at) == (command.command_id, command.issued_at)
    kind = "auth" if auth else "transient"
    counted = container.metrics.registry.get_sample_value(
        "mailbridge_poll_backoff_failures_total", {"kind": kind}
    )
    assert counted == 1


async def test_a_poll_in_backoff_reports_its_success_after_the_messages() -> None:
    published = await polled(FakeInbox(), PollMailbox(agent_id="a1", report_success=True))

    assert [type(e) for e in published] == [MessageReceived, MailboxPolled]


async def test_an_ordinary_poll_reports_nothing_but_its_messages() -> None:
    published = await polled(FakeInbox(), PollMailbox(agent_id="a1"))

    assert [type(e) for e in published] == [MessageReceived]
