"""How a mailbox's failing polls are paced, and when they turn the badge to error: pure rules.

A poll that fails for its credentials (``MailboxPollFailed.auth``) turns the badge to ``error`` at
once: polling a mailbox whose password stopped working only locks the account. Any other failure
may pass by itself, so the mailbox stays ``connected`` and its next poll waits longer after each
failure in a row (``base``, then twice that, four times… up to ``cap``); only when failures have
lasted ``error_after`` does the badge turn ``error`` (source ``poll``). Such a mailbox is still
polled at the backed-off pace, and its first success makes it ``connected`` again. A connection
test starts afresh (a save leaves the mailbox unpolled until one passes): polls issued before it
say nothing of the credentials it checked, and are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict

from mailbridge.shared.messages import LastError, MailboxPollFailed, MailboxStatus

POLL_SOURCE = "poll"


@dataclass(frozen=True)
class BackoffPolicy:
    base: timedelta
    cap: timedelta
    error_after: timedelta

    def delay(self, failures: int) -> timedelta:
        """The wait after ``failures`` (≥ 1) failures in a row: base · 2^(failures-1), capped."""
        doublings = min(failures - 1, 32)  # beyond 2^32 · base every delay is the cap anyway
        return min(self.cap, self.base * (1 << doublings))


class PollBackoff(BaseModel):
    """A mailbox's failing polls: how many in a row, since when, and when the next may go."""

    model_config = ConfigDict(frozen=True)

    failures: int
    failing_since: AwareDatetime
    retry_at: AwareDatetime
    last_failed_poll: AwareDatetime  # the latest counted failure's poll: older ones are stale


class PollState(BaseModel):
    """What the status row keeps of receiving: when it last started afresh, and its backoff."""

    model_config = ConfigDict(frozen=True)

    restarted_at: AwareDatetime | None = None
    backoff: PollBackoff | None = None


def restarted(at: datetime) -> PollState:
    """Receiving starts afresh (a save or a test): no backoff, and older polls are stale."""
    return PollState(restarted_at=at)


def counts(state: PollState, poll_issued_at: datetime) -> bool:
    """A poll's outcome counts only if it was issued after receiving restarted and after the
    last failure counted (a redelivered or late event changes nothing)."""
    latest = [t for t in (state.restarted_at, _last_failed(state)) if t is not None]
    return all(poll_issued_at > t for t in latest)


def _last_failed(state: PollState) -> datetime | None:
    return state.backoff.last_failed_poll if state.backoff else None


def after_failure(
    state: PollState, event: MailboxPollFailed, now: datetime, policy: BackoffPolicy
) -> PollState:
    """The backoff one more failure in a row leaves (an auth failure leaves none: the mailbox
    is not polled again until its credentials change)."""
    if event.auth:
        return state.model_copy(update={"backoff": None})
    previous = state.backoff
    failures = previous.failures + 1 if previous else 1
    backoff = PollBackoff(
        failures=failures,
        failing_since=previous.failing_since if previous else now,
        retry_at=now + policy.delay(failures),
        last_failed_poll=event.poll_issued_at,
    )
    return state.model_copy(update={"backoff": backoff})


def error_after_failure(
    state: PollState, event: MailboxPollFailed, now: datetime, policy: BackoffPolicy
) -> LastError | None:
    """The Last Error the failure shows: at once for credentials, else once failures have lasted
    ``error_after``; None while the badge should stay as it is."""
    lasting = state.backoff is not None and now - state.backoff.failing_since >= policy.error_after
    if event.auth or lasting:
        return LastError.from_info(event.error, at=now, source=POLL_SOURCE)
    return None


def is_polled(status: MailboxStatus, last_error: LastError | None, state: PollState) -> bool:
    """The scheduler polls connected mailboxes, and those in error from polls that may pass by
    themselves (still in backoff: an auth failure leaves none), so they recover on their own."""
    return status is MailboxStatus.CONNECTED or in_transient_poll_error(status, last_error, state)


def stopped_receiving(last_error: LastError | None) -> bool:
    """The badge is an error that polls showed: new credentials should be tested at once."""
    return last_error is not None and last_error.source == POLL_SOURCE


def in_transient_poll_error(
    status: MailboxStatus, last_error: LastError | None, state: PollState
) -> bool:
    from_polls = stopped_receiving(last_error)
    return status is MailboxStatus.ERROR and from_polls and state.backoff is not None
