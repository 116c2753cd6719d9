from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import SecretStr

from mailbridge.mail_worker import handlers
from mailbridge.mail_worker.domain.classify import (
    classify_imap_login_failure,
    classify_smtp_auth_failure,
    refusal,
)
from mailbridge.mail_worker.ports import InboxCounts
from mailbridge.shared.errors import ErrorCode, PermanentError, RetryableError
from mailbridge.shared.messages import Credentials, TestConnection
from tests.fakes.clock import FixedClock
from tests.fakes.mail_worker import FakeCredentials, FakeMailbox, FakeSubmission

ACCOUNT = Credentials(provider="imap", email="me@example.com", password=SecretStr("pw"))


async def test_a_healthy_mailbox_reports_counts_address_and_both_checks() -> None:
    result = await handlers.test_connection(
        TestConnection(agent_id="a1"),
        credentials=FakeCredentials(ACCOUNT),
        mailbox=FakeMailbox(InboxCounts(total=3, unread=2)),
        submission=FakeSubmission(),
    )
    assert (result.ok, result.email, result.inbox_total, result.unread) == (
        True,
        "me@example.com",
        3,
        2,
    )
    assert set(result.checks) == {"imap", "smtp"}
    assert result.error is None


async def test_an_smtp_refusal_fails_the_test_even_when_imap_works() -> None:
    result = await handlers.test_connection(
        TestConnection(agent_id="a1"),
        credentials=FakeCredentials(ACCOUNT),
        mailbox=FakeMailbox(InboxCounts(total=1, unread=0)),
        submission=FakeSubmission(PermanentError(ErrorCode.SMTP_AUTH_DISABLED)),
    )
    assert not result.ok
    assert result.error is not None
    assert result.error.code is ErrorCode.SMTP_AUTH_DISABLED
    assert result.checks["imap"].ok
    assert not result.checks["smtp"].ok
    assert result.email is None


async def test_missing_credentials_fail_the_test_without_touching_the_servers() -> None:
    submission = FakeSubmission()
    result = await handlers.test_connection(
        TestConnection(agent_id="a1"),
        credentials=FakeCredentials(PermanentError(ErrorCode.NOT_CONFIGURED)),
        mailbox=FakeMailbox(RetryableError(ErrorCode.TIMEOUT)),
        submission=submission,
    )
    assert not result.ok
    assert result.error is not None
    assert result.error.code is ErrorCode.NOT_CONFIGURED
    assert submission.checked == []


def test_a_test_past_its_deadline_is_expired() -> None:
    clock = FixedClock()
    stale = TestConnection(agent_id="a1", expires_at=clock.now() - timedelta(seconds=1))
    fresh = TestConnection(agent_id="a1", expires_at=clock.now() + timedelta(seconds=1))
    assert handlers.is_expired(stale, clock)
    assert not handlers.is_expired(fresh, clock)


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (
            535,
            "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled",
            ErrorCode.SMTP_AUTH_DISABLED,
        ),
        (535, "5.7.8 Error: authentication failed", ErrorCode.AUTH_FAILED),
        (550, "5.7.30 Basic authentication is not supported", ErrorCode.BASIC_AUTH_DISABLED),
        (454, "4.7.0 Temporary authentication failure", ErrorCode.PROVIDER_UNAVAILABLE),
    ],
)
def test_smtp_auth_refusals_map_to_the_taxonomy(code: int, text: str, expected: ErrorCode) -> None:
    assert classify_smtp_auth_failure(code, text) is expected


def test_imap_refusals_map_to_the_taxonomy() -> None:
    assert (
        classify_imap_login_failure("[AUTHENTICATIONFAILED] Authentication failed.")
        is ErrorCode.AUTH_FAILED
    )
    assert (
        classify_imap_login_failure("LOGIN failed. BasicAuthBlocked")
        is ErrorCode.BASIC_AUTH_DISABLED
    )


def test_a_connection_limit_at_login_is_retried_not_reported_as_a_bad_password() -> None:
    text = "[LIMIT] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)"
    assert classify_imap_login_failure(text) is ErrorCode.PROVIDER_THROTTLED
    assert isinstance(refusal(ErrorCode.PROVIDER_THROTTLED, "busy"), RetryableError)
    assert isinstance(refusal(ErrorCode.AUTH_FAILED, "wrong"), PermanentError)
