"""Reading a mailbox on demand: the answers to ``rpc.mail.messages.list|get|seen``.

Each answer is a reply, a refusal included (``error`` in the taxonomy: a ref or cursor this API
never gave out, a folder or message that is not there, a login the server refused), so a caller
never waits out a timeout for a "no". IMAP mailboxes are read here; a mailbox read through the
Gmail API or Graph is refused with ``invalid_input`` until those transports implement
``MailBrowser``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass

from mailbridge.mail_worker.domain.message_ref import (
    MessageRef,
    PageCursor,
    message_ref,
    page_cursor,
)
from mailbridge.mail_worker.domain.parse import parse_or_none
from mailbridge.mail_worker.domain.screening import NOT_SCREENED, ScreeningContext
from mailbridge.mail_worker.handlers import api_of, screening_of, with_first_contact
from mailbridge.mail_worker.ports import (
    ContactBook,
    CredentialsSource,
    FetchedItem,
    MailApi,
    MailBrowser,
    PollLimits,
)
from mailbridge.shared.errors import ErrorCode, MailbridgeError
from mailbridge.shared.messages import (
    Credentials,
    FetchedMessage,
    GetMessage,
    ListMessages,
    MarkedSeen,
    MarkSeen,
    MessageList,
    MessageReceived,
    MessageSummary,
    Provider,
)


@dataclass(frozen=True)
class ReadPorts:
    credentials: CredentialsSource
    browser: MailBrowser
    apis: Mapping[Provider, MailApi]
    contacts: ContactBook


async def list_messages(
    request: ListMessages,
    ports: ReadPorts,
) -> MessageList:
    answer = MessageList(agent_id=request.agent_id, folder=request.folder)
    try:
        account = await _imap_account(request.agent_id, ports)
        cursor = page_cursor(request.cursor) if request.cursor else None
        page = await ports.browser.list_page(account, request.folder, cursor, request.limit)
    except MailbridgeError as exc:
        return answer.model_copy(update={"error": exc.info()})
    listed = [MessageRef(request.folder, page.uidvalidity, item.uid) for item in page.messages]
    oldest = listed[-1] if listed and page.more else None
    return answer.model_copy(
        update={
            "messages": [
                _summary(request.agent_id, ref, item)
                for ref, item in zip(listed, page.messages, strict=True)
            ],
            "next_cursor": PageCursor(oldest.uidvalidity, oldest.uid).encoded() if oldest else None,
        }
    )


async def get_message(
    request: GetMessage,
    ports: ReadPorts,
    limits: PollLimits,
    raw_max_bytes: int,
) -> FetchedMessage:
    answer = FetchedMessage(agent_id=request.agent_id, message_ref=request.message_ref)
    try:
        account = await _imap_account(request.agent_id, ports)
        ref = message_ref(request.message_ref)
        item = await _stored(ports.browser, account, ref, limits.max_message_bytes)
        raw_cap = min(raw_max_bytes, limits.max_message_bytes)  # beyond: the header alone was read
        if request.raw and item.size > raw_cap:
            raise _too_large_for_raw(item.size, raw_cap)
    except MailbridgeError as exc:
        return answer.model_copy(update={"error": exc.info()})
    return answer.model_copy(
        update={
            "message": await _with_contacts(
                request.agent_id,
                _parsed(request.agent_id, ref, item.literal, screening_of(account, limits)),
                ports.contacts,
            ),
            "seen": item.seen,
            "raw_base64": base64.b64encode(item.literal).decode() if request.raw else None,
        }
    )


async def mark_seen(
    request: MarkSeen,
    ports: ReadPorts,
) -> MarkedSeen:
    answer = MarkedSeen(agent_id=request.agent_id, message_ref=request.message_ref)
    try:
        account = await _imap_account(request.agent_id, ports)
        if not await ports.browser.mark_seen(account, message_ref(request.message_ref)):
            raise _gone()
    except MailbridgeError as exc:
        return answer.model_copy(update={"error": exc.info()})
    return answer


async def _imap_account(agent_id: str, ports: ReadPorts) -> Credentials:
    account = await ports.credentials.get(agent_id)
    if api_of(account, ports.apis) is not None or account.imap is None:
        raise MailbridgeError(
            ErrorCode.INVALID_INPUT,
            "This mailbox is read through the provider's API, which cannot be read on demand yet;"
            " its new mail arrives as message.received events.",
        )
    return account


async def _stored(
    browser: MailBrowser, account: Credentials, ref: MessageRef, max_bytes: int
) -> FetchedItem:
    item = await browser.read(account, ref, max_bytes)
    if item is None:
        raise _gone()
    return item


def _summary(agent_id: str, ref: MessageRef, item: FetchedItem) -> MessageSummary:
    header = _parsed(agent_id, ref, item.literal + b"\r\n")
    envelope = (
        header.model_dump(include={"message_id", "from_", "to", "cc", "subject", "date"})
        if header is not None
        else {}
    )
    return MessageSummary(
        message_ref=ref.encoded(), uid=item.uid, seen=item.seen, size=item.size, **envelope
    )


def _parsed(
    agent_id: str, ref: MessageRef, raw: bytes, screening: ScreeningContext = NOT_SCREENED
) -> MessageReceived | None:
    """The message as ``message.received`` has it, screened as a received one is (a listed
    header block is not: its few fields hold no Authentication-Results)."""
    parsed = parse_or_none(
        raw, agent_id=agent_id, uid=ref.uid, uidvalidity=ref.uidvalidity,
        screening_context=screening,
    )  # fmt: skip
    return parsed.model_copy(update={"mailbox": ref.folder}) if parsed is not None else None


async def _with_contacts(
    agent_id: str, message: MessageReceived | None, contacts: ContactBook
) -> MessageReceived | None:
    if message is None:
        return None
    return (await with_first_contact(agent_id, [message], contacts))[0]


def _gone() -> MailbridgeError:
    return MailbridgeError(
        ErrorCode.NOT_FOUND, "No such message now (deleted, moved, or the folder renumbered)."
    )


def _too_large_for_raw(size: int, cap: int) -> MailbridgeError:
    return MailbridgeError(
        ErrorCode.MESSAGE_TOO_LARGE,
        f"The message is {size} bytes; raw reads stop at {cap} bytes. Read it parsed instead.",
    )
