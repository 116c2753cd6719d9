"""The mailbox status (SPEC §3), changed by test results and by failures the mail plane reports
(polls among them: ``domain/poll_backoff.py`` says how they are paced and when they show).

Each change is a pure decision run by ``ConfigRepository.update_status`` under a row lock, in
the transaction that also writes its events to the outbox."""

from __future__ import annotations

from datetime import datetime

from mailbridge.config_api.domain import poll_backoff as polls
from mailbridge.config_api.domain import status as transitions
from mailbridge.config_api.domain.email_config import (
    StatusRecord,
    StoredConfig,
)
from mailbridge.config_api.domain.status import MailboxEvent
from mailbridge.config_api.ports import (
    ConfigRepository,
)
from mailbridge.shared.clock import Clock
from mailbridge.shared.messages import (
    ConnectionTested,
    Event,
    LastError,
    MailboxPolled,
    MailboxPollFailed,
    MailboxStatus,
    StatusChanged,
)

StatusOutcome = tuple[StatusRecord, list[Event]] | None


async def record_test_result(
    result: ConnectionTested, *, repo: ConfigRepository, clock: Clock
) -> None:
    """Apply a test result to the status once, however many times it is delivered."""
    now = clock.now()

    def decide(config: StoredConfig | None, status: StatusRecord) -> StatusOutcome:
        if config is None or _already_recorded(status, result.command_id):
            return None
        new_status = StatusRecord(
            status=transitions.status_after_test(result),
            last_error=transitions.last_error_after_test(result, now),
            last_test=_summary_of(result),
            poll=polls.restarted(now),  # a test resumes receiving at once, at the normal pace
        )
        return new_status, status_events(result.agent_id, status, new_status)

    await repo.update_status(result.agent_id, decide)


async def record_mailbox_event(
    event: MailboxEvent, *, repo: ConfigRepository, clock: Clock
) -> None:
    """An OAuth refresh failure, a revoked grant, or a send refused for its credentials: error."""
    error = transitions.error_after_event(event, clock.now())

    def decide(config: StoredConfig | None, status: StatusRecord) -> StatusOutcome:
        if config is None or error is None or _same_error(status, error):
            return None
        new_status = status.model_copy(update={"status": MailboxStatus.ERROR, "last_error": error})
        return new_status, status_events(event.agent_id, status, new_status)

    await repo.update_status(event.agent_id, decide)


async def record_poll_failure(
    event: MailboxPollFailed, *, repo: ConfigRepository, clock: Clock, policy: polls.BackoffPolicy
) -> None:
    """One more failed poll: backed off, and shown as the Last Error when it is the credentials'
    fault or has lasted too long. A stale or redelivered failure changes nothing."""
    now = clock.now()

    def decide(config: StoredConfig | None, status: StatusRecord) -> StatusOutcome:
        if config is None or not _poll_counts(status, event.poll_issued_at):
            return None
        poll = polls.after_failure(status.poll, event, now, policy)
        error = polls.error_after_failure(poll, event, now, policy)
        new_status = status.model_copy(update={"poll": poll})
        if error is not None and not _same_error(status, error):
            new_status = new_status.model_copy(
                update={"status": MailboxStatus.ERROR, "last_error": error}
            )
        return new_status, status_events(event.agent_id, status, new_status)

    await repo.update_status(event.agent_id, decide)


async def record_poll_success(event: MailboxPolled, *, repo: ConfigRepository) -> None:
    """A poll in backoff read the mailbox: the normal pace again, and connected again when only
    failing polls had made it an error."""

    def decide(config: StoredConfig | None, status: StatusRecord) -> StatusOutcome:
        in_backoff = status.poll.backoff is not None
        if config is None or not in_backoff or not _poll_counts(status, event.poll_issued_at):
            return None
        new_status = status.model_copy(
            update={"poll": status.poll.model_copy(update={"backoff": None})}
        )
        if polls.in_transient_poll_error(status.status, status.last_error, status.poll):
            new_status = new_status.model_copy(
                update={"status": MailboxStatus.CONNECTED, "last_error": None}
            )
        return new_status, status_events(event.agent_id, status, new_status)

    await repo.update_status(event.agent_id, decide)


def _poll_counts(status: StatusRecord, poll_issued_at: datetime) -> bool:
    """Only a poll of a mailbox the scheduler polls, issued since receiving last restarted."""
    polled = polls.is_polled(status.status, status.last_error, status.poll)
    return polled and polls.counts(status.poll, poll_issued_at)


def _same_error(status: StatusRecord, error: LastError) -> bool:
    """Already in error for the same reason: a redelivered event changes nothing."""
    shown = status.last_error
    return shown is not None and (shown.code, shown.source) == (error.code, error.source)


def _already_recorded(status: StatusRecord, command_id: str) -> bool:
    return status.last_test is not None and status.last_test.get("command_id") == command_id


def _summary_of(result: ConnectionTested) -> dict[str, object]:
    return result.model_dump(mode="json", exclude={"event_id"})


def status_events(agent_id: str, before: StatusRecord, after: StatusRecord) -> list[Event]:
    if before.status == after.status and before.last_error == after.last_error:
        return []
    return [
        StatusChanged(
            agent_id=agent_id,
            status=after.status,
            previous=before.status,
            last_error=after.last_error,
        )
    ]
