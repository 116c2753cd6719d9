"""mail-worker use cases, framework-free."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from types import MappingProxyType

from pydantic import BaseModel, ValidationError

from mailbridge.mail_worker.checks import elapsed_ms, failed_test, timed
from mailbridge.mail_worker.domain import mime
from mailbridge.mail_worker.domain.cursor import Cursor, advanced, first_uid_to_fetch
from mailbridge.mail_worker.domain.parse import parse_or_none
from mailbridge.mail_worker.handlers_api import test_api_connection
from mailbridge.mail_worker.ports import (
    ClaimedElsewhereError,
    CredentialsSource,
    CursorStore,
    InboxFetcher,
    LedgerEntry,
    LedgerState,
    MailApi,
    MailboxReader,
    OutcomeUnknownError,
    PollLimits,
    SendLedger,
    SendPolicy,
    SendRefusedError,
    SentFolder,
    SubmissionChecker,
    Submitter,
)
from mailbridge.shared.clock import Clock
from mailbridge.shared.content import ContentStore, inflated
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import (
    AuthorizeSend,
    ConnectionTested,
    Credentials,
    Event,
    MessageReceived,
    MessageSendFailed,
    MessageSent,
    PollMailbox,
    Provider,
    SendMessage,
    SendOutcome,
    TestConnection,
)

log = logging.getLogger(__name__)
NO_APIS: Mapping[Provider, MailApi] = MappingProxyType({})


def is_expired(command: TestConnection, clock: Clock) -> bool:
    """Nobody waits for a test whose deadline passed: running it would only spend a login."""
    return command.expires_at is not None and command.expires_at < clock.now()


async def test_connection(
    command: TestConnection,
    *,
    credentials: CredentialsSource,
    mailbox: MailboxReader,
    submission: SubmissionChecker,
    apis: Mapping[Provider, MailApi] = NO_APIS,  # noqa: PT028 (a use case, not a pytest test)
) -> ConnectionTested:
    """An account of a provider in ``apis`` is tested through that provider's API; any other by
    IMAP login + inbox counts and SMTP EHLO + AUTH. One result either way."""
    started = time.perf_counter()
    try:
        account = await credentials.get(command.agent_id)
    except MailbridgeError as exc:
        return failed_test(command, exc.info(), started)
    api = None if account.xoauth2 else apis.get(account.provider)
    if api is not None:
        return await test_api_connection(command, account, api, started)
    return await _test_imap_connection(command, account, mailbox, submission, started)


async def _test_imap_connection(
    command: TestConnection,
    account: Credentials,
    mailbox: MailboxReader,
    submission: SubmissionChecker,
    started: float,
) -> ConnectionTested:
    """IMAP and SMTP in parallel."""
    (counts, imap_check), (_, smtp_check) = await asyncio.gather(
        timed(mailbox.inbox_counts(account)), timed(submission.check_auth(account))
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
        latency_ms=elapsed_ms(started),
        error=error,
    )


async def send_message(
    command: SendMessage,
    *,
    credentials: CredentialsSource,
    submitter: Submitter,
    sent_folder: SentFolder,
    ledger: SendLedger,
    policy: SendPolicy,
    content: ContentStore,
    clock: Clock,
) -> list[Event]:
    """Send once per command_id, as far as SMTP allows.

    A command seen before answers from the ledger and is never resent: ``sent`` republishes its
    result; ``data_started`` (a crash or lost connection after the data began) is ``unknown``.
    The ledger is read while the send is prepared and authorized (a redelivery is rare, the round
    trip is not); nothing goes to the SMTP server before it answered.
    """
    seen = asyncio.ensure_future(ledger.get(command.command_id))
    try:
        account, outgoing = await _prepared(command, credentials, policy, content, clock)
    except MailbridgeError:
        if (entry := await seen) is not None:  # sent before: its outcome, not this refusal
            return [_from_ledger(command, entry)]
        raise
    except BaseException:
        seen.cancel()
        raise
    if (entry := await seen) is not None:
        return [_from_ledger(command, entry)]
    started = LedgerEntry(LedgerState.DATA_STARTED, outgoing.message_id)
    try:
        accepted = await submitter.submit(
            account, outgoing, lambda: _claim(ledger, command.command_id, started)
        )
    except ClaimedElsewhereError:
        entry = await ledger.get(command.command_id)
        return [_from_ledger(command, entry)] if entry else [_unknown(command)]
    except OutcomeUnknownError:
        return [_unknown(command)]
    sent = LedgerEntry(LedgerState.SENT, outgoing.message_id, tuple(accepted))
    await asyncio.gather(
        ledger.put(command.command_id, sent), _keep_a_copy(sent_folder, account, outgoing)
    )  # the event is published once both are done: the ledger says sent before anyone hears it
    return [_sent(command, sent)]


async def _prepared(
    command: SendMessage,
    credentials: CredentialsSource,
    policy: SendPolicy,
    content: ContentStore,
    clock: Clock,
) -> tuple[Credentials, mime.Outgoing]:
    """The account and the message (its content read back from the store), authorized by policy."""
    account, complete = await asyncio.gather(
        credentials.get(command.agent_id), inflated(command, content)
    )
    outgoing = mime.build(complete, sender=account.email, now=clock.now())
    await _authorize(policy, command, account, outgoing)
    return account, outgoing


async def _claim(ledger: SendLedger, command_id: str, started: LedgerEntry) -> None:
    """Right before DATA, and atomically: two deliveries in flight at once never both send."""
    if not await ledger.claim(command_id, started):
        raise ClaimedElsewhereError(command_id)


async def _authorize(
    policy: SendPolicy, command: SendMessage, account: Credentials, outgoing: mime.Outgoing
) -> None:
    """Asked before every send with the envelope itself: what policy checks is what RCPT TO gets."""
    request = AuthorizeSend(
        agent_id=command.agent_id,
        command_id=command.command_id,
        sender=account.email,
        recipients=outgoing.recipients,
        org_id=account.org_id,
        client_org_id=account.client_org_id,
    )
    decision = await policy.authorize(request)
    if not decision.allowed:
        raise SendRefusedError.explained(decision.error or ErrorInfo.of(ErrorCode.INTERNAL))


def undecodable_send(body: bytes, problem: ValidationError) -> MessageSendFailed | None:
    """``failed`` with ``invalid_input`` for a send command that names its agent and command id
    but is otherwise not a ``SendMessage``; None when it does not even say whose it is."""
    try:
        ids = _CommandIds.model_validate_json(body)
    except ValidationError:
        return None
    detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in problem.errors())
    return MessageSendFailed(
        agent_id=ids.agent_id,
        command_id=ids.command_id,
        outcome=SendOutcome.FAILED,
        error=ErrorInfo.of(ErrorCode.INVALID_INPUT, f"Not a send command: {detail[:500]}"),
    )


class _CommandIds(BaseModel):
    agent_id: str
    command_id: str


def send_failed(command: SendMessage, error: MailbridgeError) -> MessageSendFailed:
    """``blocked`` when policy refused it (nothing was sent, no quota was used), else ``failed``."""
    blocked = isinstance(error, SendRefusedError)
    return MessageSendFailed(
        agent_id=command.agent_id,
        command_id=command.command_id,
        outcome=SendOutcome.BLOCKED if blocked else SendOutcome.FAILED,
        error=error.info(),
    )


async def _keep_a_copy(
    sent_folder: SentFolder, account: Credentials, outgoing: mime.Outgoing
) -> None:
    """The message is sent either way; a missing Sent copy is logged, never resent for."""
    try:
        await sent_folder.append(account, outgoing.as_bytes())
    except MailbridgeError as exc:
        log.warning("no copy in Sent for %s: %s", outgoing.message_id, exc.code)


def _from_ledger(command: SendMessage, entry: LedgerEntry) -> Event:
    if entry.state is LedgerState.SENT:
        return _sent(command, entry)
    return _unknown(command)


def _sent(command: SendMessage, entry: LedgerEntry) -> MessageSent:
    return MessageSent(
        agent_id=command.agent_id,
        command_id=command.command_id,
        message_id=entry.message_id,
        accepted_recipients=list(entry.accepted),
    )


def _unknown(command: SendMessage) -> MessageSendFailed:
    error = ErrorInfo.of(
        ErrorCode.PROVIDER_UNAVAILABLE,
        "The message data was sent but the server's answer was lost; it is not resent.",
    )
    return MessageSendFailed(
        agent_id=command.agent_id,
        command_id=command.command_id,
        outcome=SendOutcome.UNKNOWN,
        error=error,
    )


async def poll_mailbox(
    command: PollMailbox,
    *,
    credentials: CredentialsSource,
    inbox: InboxFetcher,
    cursors: CursorStore,
    limits: PollLimits,
) -> tuple[list[MessageReceived], Cursor]:
    """New messages since the mailbox's cursor, as events, and the cursor to store after them."""
    account = await credentials.get(command.agent_id)
    cursor = await cursors.get(command.agent_id)

    def first_uid(uidvalidity: int, uidnext: int) -> int:
        return first_uid_to_fetch(cursor, uidvalidity, uidnext, limits.backlog)

    batch = await inbox.fetch_new(account, first_uid, limits.batch, limits.max_message_bytes)
    parsed = (
        parse_or_none(raw, agent_id=command.agent_id, uid=uid, uidvalidity=batch.uidvalidity)
        for uid, raw in batch.messages
    )  # a message that cannot be read is logged and passed by, never retried forever
    events = [event for event in parsed if event is not None]
    uids = [uid for uid, _ in batch.messages]
    return events, advanced(cursor, batch.uidvalidity, uids, batch.first_uid)
