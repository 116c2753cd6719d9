"""The pure rules of failing polls: which codes stop receiving at once, and how the others are
paced (config_api/domain/poll_backoff.py, shared/errors.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbridge.config_api.domain import poll_backoff as polls
from mailbridge.mail_worker import handlers
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError, needs_new_credentials
from mailbridge.shared.messages import MailboxPollFailed, PollMailbox

MINUTE = timedelta(minutes=1)
POLICY = polls.BackoffPolicy(base=MINUTE, cap=15 * MINUTE, error_after=30 * MINUTE)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
USER_MUST_FIX = {
    ErrorCode.AUTH_FAILED,
    ErrorCode.BASIC_AUTH_DISABLED,
    ErrorCode.SMTP_AUTH_DISABLED,
    ErrorCode.OAUTH_TOKEN_REVOKED,
    ErrorCode.OAUTH_NOT_AUTHORIZED,
    ErrorCode.OAUTH_SCOPE_MISSING,
}
PASSES_BY_ITSELF = {
    ErrorCode.TIMEOUT,
    ErrorCode.CONNECTION_REFUSED,
    ErrorCode.DNS_FAILED,
    ErrorCode.TLS_FAILED,
    ErrorCode.PROVIDER_THROTTLED,
    ErrorCode.PROVIDER_UNAVAILABLE,
}


def failure(code: ErrorCode, issued: datetime = T0) -> MailboxPollFailed:
    poll = PollMailbox(agent_id="a1", issued_at=issued)
    return handlers.poll_failed(poll, MailbridgeError(code))


@pytest.mark.parametrize(
    ("failures", "minutes"), [(1, 1), (2, 2), (3, 4), (4, 8), (5, 15), (6, 15), (1000, 15)]
)
def test_each_failure_in_a_row_doubles_the_wait_up_to_the_cap(failures: int, minutes: int) -> None:
    assert POLICY.delay(failures) == minutes * MINUTE


@given(st.integers(min_value=1, max_value=10_000))
def test_the_wait_never_shrinks_and_never_passes_the_cap(failures: int) -> None:
    assert POLICY.base <= POLICY.delay(failures) <= POLICY.delay(failures + 1) <= POLICY.cap


@given(st.sampled_from(ErrorCode))
def test_a_failed_poll_is_an_auth_failure_exactly_when_only_new_credentials_mend_it(
    code: ErrorCode,
) -> None:
    event = failure(code)

    assert event.auth is needs_new_credentials(code)
    assert (event.error.code, event.error.hint) == (code, ErrorInfo.of(code).hint)
    if code in USER_MUST_FIX:
        assert event.auth
    if code in PASSES_BY_ITSELF:
        assert not event.auth


@given(st.sampled_from(ErrorCode), st.integers(min_value=0, max_value=50))
def test_an_auth_failure_shows_at_once_and_leaves_no_backoff_whatever_came_before(
    code: ErrorCode, earlier_failures: int
) -> None:
    state, now = polls.restarted(T0 - MINUTE), T0
    for n in range(earlier_failures):
        state = polls.after_failure(state, failure(ErrorCode.TIMEOUT, T0 + n * MINUTE), now, POLICY)
    event = failure(code, T0 + earlier_failures * MINUTE)

    after = polls.after_failure(state, event, now, POLICY)
    shown = polls.error_after_failure(after, event, now, POLICY)

    if event.auth:
        assert after.backoff is None and shown is not None
        assert (shown.code, shown.source, shown.hint) == (code, "poll", ErrorInfo.of(code).hint)
    else:
        assert after.backoff is not None and after.backoff.failures == earlier_failures + 1


def test_failures_that_pass_by_themselves_show_only_once_they_have_lasted_error_after() -> None:
    state = polls.restarted(T0 - MINUTE)
    shown_at: list[int] = []
    for minute in range(0, 40, 5):
        now = T0 + minute * MINUTE
        event = failure(ErrorCode.TIMEOUT, now)
        state = polls.after_failure(state, event, now, POLICY)
        if polls.error_after_failure(state, event, now, POLICY) is not None:
            shown_at.append(minute)

    assert shown_at == [30, 35]
    assert state.backoff is not None and state.backoff.failing_since == T0


def test_a_poll_issued_before_receiving_restarted_or_already_counted_says_nothing() -> None:
    state = polls.restarted(T0)
    assert not polls.counts(state, T0 - timedelta(seconds=1))  # before the test: stale
    counted = polls.after_failure(state, failure(ErrorCode.TIMEOUT, T0 + MINUTE), T0, POLICY)
    assert not polls.counts(counted, T0 + MINUTE)  # the same poll again: a redelivery
    assert polls.counts(counted, T0 + 2 * MINUTE)
