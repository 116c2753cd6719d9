"""mail-worker use cases, framework-free."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

from mailbridge.mail_worker.ports import CredentialsSource, MailboxReader, SubmissionChecker
from mailbridge.shared.clock import Clock
from mailbridge.shared.errors import ErrorInfo, MailbridgeError
from mailbridge.shared.messages import CheckResult, ConnectionTested, TestConnection

T = TypeVar("T")


def is_expired(command: TestConnection, clock: Clock) -> bool:
    """Nobody waits for a test whose deadline passed: running it would only spend a login."""
    return command.expires_at is not None and command.expires_at < clock.now()


async def test_connection(
    command: TestConnection,
    *,
    credentials: CredentialsSource,
    mailbox: MailboxReader,
    submission: SubmissionChecker,
) -> ConnectionTested:
    """IMAP login + inbox counts and SMTP EHLO + AUTH, in parallel; one result either way."""
    started = time.perf_counter()
    try:
        account = await credentials.get(command.agent_id)
    except MailbridgeError as exc:
        return _failed(command, exc.info(), _elapsed_ms(started))
    (counts, imap_check), (_, smtp_check) = await asyncio.gather(
        _timed(mailbox.inbox_counts(account)), _timed(submission.check_auth(account))
    )
    checks = {"imap": imap_check, "smtp": smtp_check}
    error = imap_check.error or smtp_check.error
    return ConnectionTested(
        agent_id=command.agent_id,
        command_id=command.command_id,
        ok=error is None,
        email=account.email if error is None else None,
        inbox_total=counts.total if counts else None,
        unread=counts.unread if counts else None,
        checks=checks,
        latency_ms=_elapsed_ms(started),
        error=error,
    )


async def _timed(work: Awaitable[T]) -> tuple[T | None, CheckResult]:
    started = time.perf_counter()
    try:
        value = await work
    except MailbridgeError as exc:
        return None, CheckResult(ok=False, latency_ms=_elapsed_ms(started), error=exc.info())
    return value, CheckResult(ok=True, latency_ms=_elapsed_ms(started))


def _failed(command: TestConnection, error: ErrorInfo, latency_ms: int) -> ConnectionTested:
    return ConnectionTested(
        agent_id=command.agent_id,
        command_id=command.command_id,
        ok=False,
        latency_ms=latency_ms,
        error=error,
    )


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
