"""config-api's handling of failed and recovered polls, on fakes: the badge a user sees, and the
backoff the scheduler reads (config_api/handlers/mailbox_status.py)."""

from __future__ import annotations

from datetime import timedelta

from mailbridge.config_api.domain import poll_backoff as polls
from mailbridge.config_api.domain.email_config import StatusRecord
from mailbridge.config_api.handlers import email_config, mailbox_status
from mailbridge.mail_worker import handlers
from mailbridge.shared.errors import ErrorCode, MailbridgeError
from mailbridge.shared.messages import (
    ConnectionTested,
    MailboxStatus,
    PollMailbox,
    StatusChanged,
    TestConnection,
)
from tests.factories import OPERATOR, SEALER
from tests.fakes.clock import FixedClock
from tests.fakes.config_api import FakeConfigRepository, RecordingPublisher
from tests.unit.test_config_api_handlers import POLICY, imap_body, saved_agent

MINUTE = timedelta(minutes=1)
BACKOFF = polls.BackoffPolicy(base=MINUTE, cap=15 * MINUTE, error_after=30 * MINUTE)


class Mailbox:
    """One connected IMAP agent on fakes, whose polls fail or pass at the clock's time."""

    def __init__(self) -> None:
        self.repo, self.clock = FakeConfigRepository(), FixedClock()
        self.agent_id = "a1"

    async def connected(self) -> Mailbox:
        await saved_agent(self.repo, self.agent_id)
        await self.tested(ok=True)
        return self

    async def tested(self, *, ok: bool) -> None:
        result = ConnectionTested(agent_id=self.agent_id, command_id=f"t-{self.now}", ok=ok)
        await mailbox_status.record_test_result(result, repo=self.repo, clock=self.clock)

    def later(self, delta: timedelta = MINUTE) -> PollMailbox:
        """A minute on; the poll the scheduler issues then."""
        self.clock.current += delta
        return PollMailbox(agent_id=self.agent_id, issued_at=self.clock.current)

    async def fails(self, code: ErrorCode, poll: PollMailbox | None = None) -> None:
        event = handlers.poll_failed(poll or self.later(), MailbridgeError(code))
        await mailbox_status.record_poll_failure(
            event, repo=self.repo, clock=self.clock, policy=BACKOFF
        )

    async def passes(self, poll: PollMailbox | None = None) -> None:
        asked = (poll or self.later()).model_copy(update={"report_success": True})
        for event in handlers.polled(asked):
            await mailbox_status.record_poll_success(event, repo=self.repo)

    @property
    def now(self) -> str:
        return self.clock.current.isoformat()

    @property
    def status(self) -> StatusRecord:
        return self.repo.statuses[self.agent_id]


async def test_a_password_refused_while_polling_shows_error_with_its_hint_and_stops_polls() -> None:
    mailbox = await (Mailbox()).connected()

    await mailbox.fails(ErrorCode.AUTH_FAILED)

    status = mailbox.status
    assert status.status is MailboxStatus.ERROR
    assert status.last_error is not None
    assert (status.last_error.code, status.last_error.source) == ("auth_failed", "poll")
    assert status.last_error.hint.startswith("Regenerate the app password")
    assert not polls.is_polled(status.status, status.last_error, status.poll)
    assert [e.status for e in mailbox.repo.outbox if isinstance(e, StatusChanged)][-1] == "error"


async def test_timeouts_back_off_without_touching_the_badge_until_they_last_half_an_hour() -> None:
    mailbox = await (Mailbox()).connected()

    await mailbox.fails(ErrorCode.TIMEOUT)
    await mailbox.fails(ErrorCode.TIMEOUT)

    backoff = mailbox.status.poll.backoff
    assert mailbox.status.status is MailboxStatus.CONNECTED
    assert backoff is not None and backoff.failures == 2
    assert backoff.retry_at == mailbox.clock.current + 2 * MINUTE

    await mailbox.fails(ErrorCode.TIMEOUT, mailbox.later(29 * MINUTE))  # 30 min since the first
    status = mailbox.status
    assert status.status is MailboxStatus.ERROR
    assert status.last_error is not None
    assert (status.last_error.code, status.last_error.source) == ("timeout", "poll")
    assert polls.is_polled(status.status, status.last_error, status.poll)  # still, at the cap


async def test_a_poll_that_passes_again_ends_the_backoff_and_the_error_it_showed() -> None:
    mailbox = await (Mailbox()).connected()
    await mailbox.fails(ErrorCode.PROVIDER_UNAVAILABLE)
    await mailbox.fails(ErrorCode.PROVIDER_UNAVAILABLE, mailbox.later(31 * MINUTE))
    assert mailbox.status.status is MailboxStatus.ERROR

    await mailbox.passes()

    status = mailbox.status
    assert (status.status, status.last_error, status.poll.backoff) == (
        MailboxStatus.CONNECTED,
        None,
        None,
    )


async def test_a_failure_delivered_twice_counts_once() -> None:
    mailbox = await (Mailbox()).connected()
    poll = mailbox.later()

    await mailbox.fails(ErrorCode.TIMEOUT, poll)
    await mailbox.fails(ErrorCode.TIMEOUT, poll)

    backoff = mailbox.status.poll.backoff
    assert backoff is not None and backoff.failures == 1


async def test_a_passing_test_resumes_receiving_and_late_failures_of_older_polls_are_ignored() -> (
    None
):
    mailbox = await (Mailbox()).connected()
    await mailbox.fails(ErrorCode.AUTH_FAILED)
    in_flight = mailbox.later()  # issued before the user fixed the password and tested

    mailbox.later()
    await mailbox.tested(ok=True)
    await mailbox.fails(ErrorCode.AUTH_FAILED, in_flight)

    status = mailbox.status
    assert (status.status, status.last_error, status.poll.backoff) == (
        MailboxStatus.CONNECTED,
        None,
        None,
    )


async def test_a_success_from_before_the_latest_failure_does_not_end_the_backoff() -> None:
    mailbox = await (Mailbox()).connected()
    earlier = mailbox.later()
    await mailbox.fails(ErrorCode.TIMEOUT)

    await mailbox.passes(earlier)

    assert mailbox.status.poll.backoff is not None


async def test_saving_a_new_password_after_polls_stopped_tests_it_at_once() -> None:
    mailbox = await (Mailbox()).connected()
    await mailbox.fails(ErrorCode.AUTH_FAILED)
    commands = RecordingPublisher()

    view = await email_config.save_email_config(
        mailbox.agent_id, imap_body("new-pw"), repo=mailbox.repo, sealer=SEALER,
        principal=OPERATOR, policy=POLICY, commands=commands,
    )  # fmt: skip

    assert view.status is MailboxStatus.CONFIGURED
    assert mailbox.status.poll.backoff is None
    assert [type(c) for c in commands.published] == [TestConnection]


async def test_saving_a_connected_mailbox_asks_for_no_test() -> None:
    mailbox = await (Mailbox()).connected()
    commands = RecordingPublisher()

    await email_config.save_email_config(
        mailbox.agent_id, imap_body("new-pw"), repo=mailbox.repo, sealer=SEALER,
        principal=OPERATOR, policy=POLICY, commands=commands,
    )  # fmt: skip

    assert commands.published == []
