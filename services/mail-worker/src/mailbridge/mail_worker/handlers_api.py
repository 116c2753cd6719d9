"""The connection test of a mailbox reached through its provider's API (Gmail, Graph): an access
token from the oauth-broker, then the address it signs in as and the inbox counts."""

from __future__ import annotations

from mailbridge.mail_worker.checks import elapsed_ms, failed_test, timed
from mailbridge.mail_worker.ports import MailApi, ProbedMailbox
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import CheckResult, ConnectionTested, Credentials, TestConnection


async def test_api_connection(
    command: TestConnection, account: Credentials, api: MailApi, started: float
) -> ConnectionTested:
    """``api`` and ``mailbox`` checks; no token (not authorized, revoked) ends the test at once."""
    try:
        token = await api.tokens.access_token(command.agent_id)
    except MailbridgeError as exc:
        return failed_test(command, exc.info(), started)
    probed, api_check = await timed(api.probe.probe(token))
    if probed is None:
        return _tested(command, {"api": api_check}, started)
    mailbox_check = _same_mailbox(account.email, probed.email)
    return _tested(command, {"api": api_check, "mailbox": mailbox_check}, started, probed)


def _same_mailbox(expected: str, signed_in: str) -> CheckResult:
    """The token must be the configured mailbox's, whatever the case of either address."""
    if signed_in.casefold() == expected.casefold():
        return CheckResult(ok=True, latency_ms=0, detail=signed_in)
    error = ErrorInfo.of(ErrorCode.MAILBOX_MISMATCH).saying(
        f"Signed in as {signed_in}, expected {expected}.",
        f"Re-authorize signed in as {expected}, or change the configured address.",
    )
    return CheckResult(ok=False, latency_ms=0, error=error)


def _tested(
    command: TestConnection,
    checks: dict[str, CheckResult],
    started: float,
    probed: ProbedMailbox | None = None,
) -> ConnectionTested:
    """The first failed check's error; the address and counts only of a confirmed mailbox."""
    error = next((check.error for check in checks.values() if check.error), None)
    confirmed = probed if error is None else None
    return ConnectionTested(
        agent_id=command.agent_id,
        command_id=command.command_id,
        ok=error is None,
        email=confirmed.email if confirmed else None,
        inbox_total=confirmed.counts.total if confirmed else None,
        unread=confirmed.counts.unread if confirmed else None,
        checks=checks,
        latency_ms=elapsed_ms(started),
        error=error,
    )
