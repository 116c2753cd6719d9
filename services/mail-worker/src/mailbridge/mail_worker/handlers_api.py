"""The use cases of a mailbox reached through its provider's API (Gmail, Graph).

- the connection test: the token's scopes, the address it signs in as and the inbox counts;
- sending: the API submits (the provider files the message in Sent itself) and a lost answer
  is resolved by looking for the message's Message-ID among the sent mail;
- polling: new inbox messages since the stored position, a resync from the newest arrival time
  when the provider forgot it, each message parsed as an IMAP one is.
"""

from __future__ import annotations

from mailbridge.mail_worker.checks import elapsed_ms, failed_test, timed
from mailbridge.mail_worker.domain.cursor import ApiCursor
from mailbridge.mail_worker.domain.mime import Outgoing
from mailbridge.mail_worker.domain.parse import api_uid, parse_or_none
from mailbridge.mail_worker.domain.screening import ScreeningContext
from mailbridge.mail_worker.ports import (
    CursorExpiredError,
    DataStarting,
    PollLimits,
    ProbedMailbox,
    ProviderMailbox,
    SyncedBatch,
)
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import (
    CheckResult,
    ConnectionTested,
    Credentials,
    MessageReceived,
    Provider,
    TestConnection,
)

SEND_SCOPES = {  # compared lowercased, Graph's resource prefix optional
    Provider.GOOGLE: frozenset(
        "https://www.googleapis.com/auth/" + s
        for s in ("gmail.send", "gmail.compose", "gmail.modify")
    )
    | {"https://mail.google.com/"},
    Provider.MICROSOFT: frozenset({"mail.send"}),
}
_GRAPH = "https://graph.microsoft.com/"
SEND_SCOPE_NAMES = {Provider.GOOGLE: "gmail.send", Provider.MICROSOFT: "Mail.Send"}


async def test_api_connection(
    command: TestConnection, account: Credentials, mailbox: ProviderMailbox, started: float
) -> ConnectionTested:
    """``api``, ``mailbox`` and ``send`` checks; no token (not authorized, revoked) ends the test
    at once."""
    try:
        scopes = await mailbox.granted_scopes()
    except MailbridgeError as exc:
        return failed_test(command, exc.info(), started)
    probed, api_check = await timed(mailbox.probe())
    if probed is None:
        return _tested(command, {"api": api_check}, started)
    checks = {
        "api": api_check,
        "mailbox": _same_mailbox(account.email, probed.email),
        "send": _may_send(account.provider, scopes),
    }
    return _tested(command, checks, started, probed)


def _same_mailbox(expected: str, signed_in: str) -> CheckResult:
    """The token must be the configured mailbox's, whatever the case of either address."""
    if signed_in.casefold() == expected.casefold():
        return CheckResult(ok=True, latency_ms=0, detail=signed_in)
    error = ErrorInfo.of(ErrorCode.MAILBOX_MISMATCH).saying(
        f"Signed in as {signed_in}, expected {expected}.",
        f"Re-authorize signed in as {expected}, or change the configured address.",
    )
    return CheckResult(ok=False, latency_ms=0, error=error)


def _may_send(provider: Provider, scopes: list[str]) -> CheckResult:
    """Reading works without the send scope; sending would fail later, so the test says so."""
    wanted = SEND_SCOPES.get(provider, frozenset())
    if wanted & {scope.lower().removeprefix(_GRAPH) for scope in scopes}:
        return CheckResult(ok=True, latency_ms=0, detail=SEND_SCOPE_NAMES[provider])
    name = SEND_SCOPE_NAMES.get(provider, "send")
    error = ErrorInfo.of(ErrorCode.OAUTH_SCOPE_MISSING).saying(
        f"The grant does not include {name}: the mailbox can be read but not sent from.",
        f"Re-authorize and allow sending mail ({name}).",
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


class ApiSubmitter:
    """A ``Submitter`` on a provider's API: every recipient is the API's to refuse, and it
    refuses the whole message or none of it."""

    def __init__(self, mailbox: ProviderMailbox) -> None:
        self._mailbox = mailbox

    async def submit(
        self, credentials: Credentials, outgoing: Outgoing, data_starting: DataStarting
    ) -> list[str]:
        await self._mailbox.send(outgoing, data_starting)
        return list(outgoing.recipients)


async def poll_api_mailbox(
    agent_id: str,
    mailbox: ProviderMailbox,
    cursor: ApiCursor | None,
    limits: PollLimits,
    screening: ScreeningContext,
) -> tuple[list[MessageReceived], ApiCursor]:
    """New inbox messages as events (each once: ids already delivered are passed by), screened
    in ``screening``'s terms, and the cursor to store after them."""
    batch = await _synced(mailbox, cursor, limits)
    known = cursor or ApiCursor(batch.position)
    fresh = [m for m in batch.messages if m.provider_id not in known.seen]
    events = [
        event
        for message in fresh
        if (event := parse_or_none(
            message.raw, agent_id=agent_id, uid=api_uid(message.provider_id), uidvalidity=0,
            provider_id=message.provider_id, screening_context=screening,
        )) is not None
    ]  # fmt: skip
    delivered = [(m.provider_id, m.received_at) for m in fresh]
    return events, known.after(batch.position, delivered)


async def _synced(
    mailbox: ProviderMailbox, cursor: ApiCursor | None, limits: PollLimits
) -> SyncedBatch:
    if cursor is None:
        return await mailbox.first_sync(limits)
    try:
        return await mailbox.sync(cursor.position, limits)
    except CursorExpiredError:
        return await mailbox.resync(cursor.newest, limits, cursor.seen)
