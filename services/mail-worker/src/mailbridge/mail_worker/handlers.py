"""mail-worker use cases, framework-free."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from pydantic import BaseModel, ValidationError

from mailbridge.mail_worker.checks import elapsed_ms, failed_test, timed
from mailbridge.mail_worker.domain import mime
from mailbridge.mail_worker.domain.cursor import ApiCursor, Cursor, advanced, first_uid_to_fetch
from mailbridge.mail_worker.domain.parse import parse_or_none
from mailbridge.mail_worker.domain.screening import ScreeningContext
from mailbridge.mail_worker.handlers_api import ApiSubmitter, poll_api_mailbox, test_api_connection
from mailbridge.mail_worker.ports import (
    ClaimedElsewhereError,
    ContactBook,
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
    SendRoute,
    SentFolder,
    SentSearch,
    SubmissionChecker,
    Submitter,
)
from mailbridge.shared.clock import Clock
from mailbridge.shared.content import ContentStore, inflated, offloaded
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError, needs_new_credentials
from mailbridge.shared.messages import (
    AuthorizeSend,
    ConnectionTested,
    Credentials,
    Event,
    MailboxPolled,
    MailboxPollFailed,
    MessageHeld,
    MessageReceived,
    MessageSendFailed,
    MessageSent,
    PollMailbox,
    Provider,
    SendHold,
    SendMessage,
    SendOutcome,
    TestConnection,
)
from mailbridge.shared.presets import files_sent_mail

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
    api = api_of(account, apis)
    if api is not None:
        return await test_api_connection(command, account, api.mailbox(command.agent_id), started)
    return await _test_imap_connection(command, account, mailbox, submission, started)


def api_of(account: Credentials, apis: Mapping[Provider, MailApi]) -> MailApi | None:
    """The provider API an account's mail goes through; None: IMAP and SMTP (an IMAP account,
    or a Google or Microsoft one that logs in there with XOAUTH2)."""
    return None if account.xoauth2 else apis.get(account.provider)


def send_route(
    agent_id: str,
    account: Credentials,
    *,
    apis: Mapping[Provider, MailApi],
    submitter: Submitter,
    sent_folder: SentFolder,
    sent_search: SentSearch,
) -> SendRoute:
    """SMTP with a copy APPENDed to Sent, or the provider's API, which files the copy itself and
    whose sent mail can be searched for a send whose answer was lost; SMTP to a server that files
    what it sends (Gmail's) gets no second copy, and is searched over IMAP like an API."""
    api = api_of(account, apis)
    if api is None and account.smtp is not None and files_sent_mail(account.smtp.host):
        return SendRoute(submitter, None, functools.partial(sent_search.find_sent, account))
    if api is None:
        return SendRoute(submitter, sent_folder)
    mailbox = api.mailbox(agent_id)
    return SendRoute(ApiSubmitter(mailbox), None, mailbox.find_sent)


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


SendRouter = Callable[[str, Credentials], SendRoute]
RESOLVE_DELAYS_SECONDS = (0.5, 2.0, 5.0)
"""After a send whose answer was lost, how long to wait before each look at the sent mail: a
provider may file the message a moment after it took it."""


async def send_message(
    command: SendMessage,
    *,
    credentials: CredentialsSource,
    route: SendRouter,
    ledger: SendLedger,
    policy: SendPolicy,
    content: ContentStore,
    clock: Clock,
) -> list[Event]:
    """Send once per command_id, as far as the transport allows.

    A command seen before answers from the ledger and is never resent: ``sent`` republishes its
    result; ``data_started`` (a crash or lost answer after the message began to go out) is
    ``unknown``, unless the message is found among the account's sent mail, where the transport
    can search it: then it is ``sent``. A definite refusal after the claim releases it, so the
    retry sends. The ledger is read while the send is prepared and authorized (a redelivery is
    rare, the round trip is not); nothing goes to the server before it answered. A send policy
    holds for approval is ``held``: its content moves to the content store, for when it is
    approved and queued again.
    """
    seen = asyncio.ensure_future(ledger.get(command.command_id))
    try:
        account, outgoing = await _prepared(command, credentials, policy, content, clock)
    except (MailbridgeError, _HeldError) as exc:
        if (entry := await seen) is not None:  # sent before: its outcome, not this verdict
            return [_from_ledger(command, entry)]
        if isinstance(exc, _HeldError):
            return [await _held(command, exc.hold, content)]
        raise
    except BaseException:
        seen.cancel()
        raise
    way = route(command.agent_id, account)
    if (entry := await seen) is not None:
        return [await _settled_before(command, entry, way, ledger, outgoing)]
    return [await _submitted(command, account, outgoing, way, ledger)]


async def _submitted(
    command: SendMessage,
    account: Credentials,
    outgoing: mime.Outgoing,
    way: SendRoute,
    ledger: SendLedger,
) -> Event:
    claim = _Claim(
        ledger, command.command_id, LedgerEntry(LedgerState.DATA_STARTED, outgoing.message_id)
    )
    try:
        accepted = await way.submitter.submit(account, outgoing, claim)
    except ClaimedElsewhereError:
        entry = await ledger.get(command.command_id)
        return _from_ledger(command, entry) if entry else _unknown(command)
    except OutcomeUnknownError:
        return await _resolved(command, outgoing, way, ledger, RESOLVE_DELAYS_SECONDS)
    except MailbridgeError:
        await claim.release()  # refused outright: nothing went out
        raise
    sent = LedgerEntry(LedgerState.SENT, outgoing.message_id, tuple(accepted))
    await asyncio.gather(
        ledger.put(command.command_id, sent), _keep_a_copy(way.sent_folder, account, outgoing)
    )  # the event is published once both are done: the ledger says sent before anyone hears it
    return _sent(command, sent)


async def _settled_before(
    command: SendMessage,
    entry: LedgerEntry,
    way: SendRoute,
    ledger: SendLedger,
    outgoing: mime.Outgoing,
) -> Event:
    if entry.state is LedgerState.SENT:
        return _sent(command, entry)
    return await _resolved(command, outgoing, way, ledger, (0.0,))


async def _resolved(
    command: SendMessage,
    outgoing: mime.Outgoing,
    way: SendRoute,
    ledger: SendLedger,
    delays: tuple[float, ...],
) -> Event:
    """``unknown``, unless the message turns up among the sent mail: then it was sent, and the
    ledger says so before anyone hears it."""
    if way.find_sent is None:
        return _unknown(command)
    for delay in delays:
        await asyncio.sleep(delay)
        if await _found(way.find_sent, outgoing.message_id):
            sent = LedgerEntry(LedgerState.SENT, outgoing.message_id, tuple(outgoing.recipients))
            await ledger.put(command.command_id, sent)
            return _sent(command, sent)
    return _unknown(command)


async def _found(find_sent: Callable[[str], Awaitable[bool]], message_id: str) -> bool:
    try:
        return await find_sent(message_id)
    except MailbridgeError as exc:  # not knowing stays unknown
        log.warning("could not look for %s among sent mail: %s", message_id, exc.code)
        return False


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


class _Claim:
    """Called right before the message goes out (SMTP DATA, the API's request body), and
    atomic: two deliveries in flight at once never both send."""

    def __init__(self, ledger: SendLedger, command_id: str, started: LedgerEntry) -> None:
        self._ledger, self._command_id, self._started = ledger, command_id, started
        self._held = False

    async def __call__(self) -> None:
        if not await self._ledger.claim(self._command_id, self._started):
            raise ClaimedElsewhereError(self._command_id)
        self._held = True

    async def release(self) -> None:
        if self._held:
            await self._ledger.release(self._command_id)


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
        approval=account.approval,
    )
    decision = await policy.authorize(request)
    if decision.hold is not None and not decision.allowed:
        raise _HeldError(decision.hold)
    if not decision.allowed:
        raise SendRefusedError.explained(decision.error or ErrorInfo.of(ErrorCode.INTERNAL))


class _HeldError(Exception):
    """Policy holds the send for a person's approval: nothing is sent, nothing failed."""

    def __init__(self, hold: SendHold) -> None:
        super().__init__(hold.reason.value)
        self.hold = hold


async def _held(command: SendMessage, hold: SendHold, content: ContentStore) -> MessageHeld:
    """The held send as it will be queued again, its content (however small) in the store, so
    no message body travels in the event."""
    kept = await offloaded(command, content, inline_limit=0)
    return MessageHeld(
        agent_id=command.agent_id, command_id=command.command_id, hold=hold, command=kept
    )


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
    sent_folder: SentFolder | None, account: Credentials, outgoing: mime.Outgoing
) -> None:
    """The message is sent either way; a missing Sent copy is logged, never resent for."""
    if sent_folder is None:
        return
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
    apis: Mapping[Provider, MailApi] = NO_APIS,
) -> tuple[list[MessageReceived], Cursor | ApiCursor]:
    """New messages since the mailbox's cursor, as events, and the cursor to store after them."""
    account = await credentials.get(command.agent_id)
    api = api_of(account, apis)
    if api is not None:
        api_cursor = await cursors.get_api(command.agent_id)
        mailbox = api.mailbox(command.agent_id)
        screening = screening_of(account, limits)
        return await poll_api_mailbox(command.agent_id, mailbox, api_cursor, limits, screening)
    cursor = await cursors.get(command.agent_id)
    read = await read_imap_inbox(command.agent_id, account, inbox, cursor, limits)
    return read.events, read.cursor


@dataclass(frozen=True)
class InboxRead:
    events: list[MessageReceived]
    cursor: Cursor  # to store once the events are published
    more_waiting: bool  # read again at once: a batch limit, or mail that came meanwhile


async def read_imap_inbox(
    agent_id: str,
    account: Credentials,
    inbox: InboxFetcher,
    cursor: Cursor | None,
    limits: PollLimits,
) -> InboxRead:
    """The messages of INBOX past the mailbox's ``cursor``, by a poll or by a session in IDLE."""

    def first_uid(uidvalidity: int, uidnext: int) -> int:
        return first_uid_to_fetch(cursor, uidvalidity, uidnext, limits.backlog)

    batch = await inbox.fetch_new(account, first_uid, limits.batch, limits.max_message_bytes)
    screening = screening_of(account, limits)
    parsed = (  # a message that cannot be read is logged and passed by, never retried forever
        parse_or_none(
            raw, agent_id=agent_id, uid=uid, uidvalidity=batch.uidvalidity,
            screening_context=screening,
        )
        for uid, raw in batch.messages
    )  # fmt: skip
    events = [event for event in parsed if event is not None]
    uids = [uid for uid, _ in batch.messages]
    moved = advanced(cursor, batch.uidvalidity, uids, batch.first_uid)
    return InboxRead(events, moved, batch.more_waiting)


async def with_first_contact(
    agent_id: str, events: Sequence[MessageReceived], contacts: ContactBook
) -> list[MessageReceived]:
    """Each event's ``screening.first_contact``: whether its From is someone the agent never
    wrote to nor heard from before this read (one question for the whole read); left null when
    the From is no address or that cannot be told now."""
    senders = list(dict.fromkeys(e.from_ for e in events if e.from_ and e.screening))
    known = await contacts.known(agent_id, senders) if senders else None
    if known is None:
        return list(events)
    return [_first_contact_marked(event, known) for event in events]


def _first_contact_marked(event: MessageReceived, known: set[str]) -> MessageReceived:
    if event.from_ is None or event.screening is None:
        return event
    screening = event.screening.model_copy(update={"first_contact": event.from_ not in known})
    return event.model_copy(update={"screening": screening})


def screening_of(account: Credentials, limits: PollLimits) -> ScreeningContext:
    """A mailbox's messages are compared with its own domain, and believe the trusted server."""
    return ScreeningContext.of(limits.trusted_authserv_id, account.email)


def poll_failed(command: PollMailbox, error: MailbridgeError) -> MailboxPollFailed:
    """What config-api needs to pace the mailbox's polls, or to show that its credentials broke."""
    return MailboxPollFailed(
        agent_id=command.agent_id,
        command_id=command.command_id,
        poll_issued_at=command.issued_at,
        error=error.info(),
        auth=needs_new_credentials(error.code),
    )


def polled(command: PollMailbox) -> list[MailboxPolled]:
    """The success a poll in backoff was asked to report; nothing for an ordinary poll."""
    if not command.report_success:
        return []
    ids = {"agent_id": command.agent_id, "command_id": command.command_id}
    return [MailboxPolled(**ids, poll_issued_at=command.issued_at)]
