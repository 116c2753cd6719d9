"""The mailbox status state machine of SPEC §3, as pure functions.

not_connected ──save imap──▶ configured ──test ok──▶ connected
not_connected ──save oauth─▶ awaiting_authorization ──authorized + test ok──▶ connected
any ──test fails / refresh fails / auth error──▶ error (with last_error)
any ──delete──▶ not_connected
"""

from __future__ import annotations

from datetime import datetime

from mailbridge.shared.errors import ErrorCode, ErrorInfo, needs_new_credentials
from mailbridge.shared.messages import (
    ConnectionTested,
    GrantRefreshFailed,
    GrantRevoked,
    LastError,
    MailboxStatus,
    MessageSendFailed,
    Provider,
)

TEST_SOURCE = "connection_test"


def status_after_save(provider: Provider) -> MailboxStatus:
    if provider is Provider.IMAP:
        return MailboxStatus.CONFIGURED
    return MailboxStatus.AWAITING_AUTHORIZATION


def status_after_test(result: ConnectionTested) -> MailboxStatus:
    return MailboxStatus.CONNECTED if result.ok else MailboxStatus.ERROR


def last_error_after_test(result: ConnectionTested, at: datetime) -> LastError | None:
    """A failed test sets the banner; a passing one clears it."""
    if result.ok or result.error is None:
        return None
    return LastError.from_info(result.error, at=at, source=TEST_SOURCE)


MailboxEvent = GrantRefreshFailed | GrantRevoked | MessageSendFailed


def error_after_event(event: MailboxEvent, at: datetime) -> LastError | None:
    """The Last Error an event sets, or None when it says nothing about the credentials."""
    if isinstance(event, GrantRefreshFailed):
        return LastError.from_info(event.error, at=at, source="oauth_refresh")
    if isinstance(event, GrantRevoked):
        revoked = ErrorInfo.of(ErrorCode.OAUTH_TOKEN_REVOKED)
        return LastError.from_info(revoked, at=at, source="oauth")
    if needs_new_credentials(event.error.code):
        return LastError.from_info(event.error, at=at, source="send")
    return None
