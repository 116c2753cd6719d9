"""The mailbox status state machine of SPEC §3, as pure functions.

not_connected ──save imap──▶ configured ──test ok──▶ connected
not_connected ──save oauth─▶ awaiting_authorization ──authorized + test ok──▶ connected
any ──test fails / refresh fails / auth error──▶ error (with last_error)
any ──delete──▶ not_connected
"""

from __future__ import annotations

from datetime import datetime

from mailbridge.shared.messages import ConnectionTested, LastError, MailboxStatus, Provider

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
