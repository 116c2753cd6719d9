"""Reading a mailbox on demand against the local Dovecot, through the worker's handlers and its
IMAP adapter: a folder listed newest first in pages, a message read parsed and raw, marked seen
(as Dovecot then reports), and refusals that name what is wrong."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest

from mailbridge.devstack.mailstack import MailStack, MailStackEndpoints
from mailbridge.mail_worker import handlers_read
from mailbridge.mail_worker.domain.message_ref import message_ref
from mailbridge.mail_worker.ports import PollLimits
from mailbridge.shared.errors import ErrorCode
from mailbridge.shared.messages import GetMessage, ListMessages, MarkSeen, MessageList
from tests.fakes.mail_worker import FakeContactBook, FakeCredentials
from tests.support.imap_account import LocalImapAccount

pytestmark = pytest.mark.integration

MAX_BYTES = 100_000
LIMITS = PollLimits(backlog=10, batch=10, max_message_bytes=MAX_BYTES)


@pytest.fixture
async def reading(
    mail_stack: MailStack, mail_endpoints: MailStackEndpoints
) -> AsyncIterator[tuple[LocalImapAccount, handlers_read.ReadPorts]]:
    mailbox = LocalImapAccount(mail_stack, mail_endpoints, "read", timeout=5.0)
    ports = handlers_read.ReadPorts(
        FakeCredentials(mailbox.account), mailbox.reader, {}, FakeContactBook()
    )
    yield mailbox, ports
    await mailbox.reader.close()


async def listed(ports: handlers_read.ReadPorts, **fields: object) -> MessageList:
    reply = await handlers_read.list_messages(ListMessages(agent_id="a1", **fields), ports)
    assert reply.error is None, reply.error
    return reply


async def test_a_folder_is_listed_newest_first_in_pages_without_marking_anything_seen(
    reading: tuple[LocalImapAccount, handlers_read.ReadPorts], mail_stack: MailStack
) -> None:
    mailbox, ports = reading
    for n in range(5):
        mail_stack.seed_message(mailbox.address, subject=f"number {n}", body=f"body {n}")

    first = await listed(ports, limit=2)
    second = await listed(ports, limit=2, cursor=first.next_cursor)
    last = await listed(ports, limit=2, cursor=second.next_cursor)

    subjects = [m.subject for page in (first, second, last) for m in page.messages]
    assert subjects == [f"number {n}" for n in (4, 3, 2, 1, 0)]
    assert last.next_cursor is None
    assert first.messages[0].from_ == "sender@example.com"
    assert first.messages[0].to == [mailbox.address]
    assert all(m.size > 0 and not m.seen for page in (first, second, last) for m in page.messages)
    assert mail_stack.seen_uids(mailbox.address) == set()


async def test_a_message_is_read_parsed_and_raw_then_marked_seen(
    reading: tuple[LocalImapAccount, handlers_read.ReadPorts], mail_stack: MailStack
) -> None:
    mailbox, ports = reading
    mail_stack.seed_message(mailbox.address, subject="read me", body="the body text")
    ref = (await listed(ports)).messages[0].message_ref

    got = await handlers_read.get_message(
        GetMessage(agent_id="a1", message_ref=ref, raw=True), ports,
        limits=LIMITS, raw_max_bytes=MAX_BYTES,
    )  # fmt: skip

    assert got.error is None and got.message is not None and got.message.text is not None
    assert (got.message.subject, got.message.text.strip()) == ("read me", "the body text")
    assert got.raw_base64 is not None
    assert b"Subject: read me" in base64.b64decode(got.raw_base64)
    assert mail_stack.seen_uids(mailbox.address) == set(), "reading uses PEEK"
    seen = await handlers_read.mark_seen(MarkSeen(agent_id="a1", message_ref=ref), ports)
    assert seen.error is None
    assert mail_stack.seen_uids(mailbox.address) == {message_ref(ref).uid}
    assert (await listed(ports)).messages[0].seen


async def test_a_folder_other_than_the_inbox_is_read_by_its_name(
    reading: tuple[LocalImapAccount, handlers_read.ReadPorts], mail_stack: MailStack
) -> None:
    mailbox, ports = reading
    mail_stack.seed_message(mailbox.address, subject="filed", body="x", folder="Archive")
    page = await listed(ports, folder="Archive")
    assert [m.subject for m in page.messages] == ["filed"]
    assert (await listed(ports)).messages == [], "INBOX is another folder"


async def test_refusals_name_what_is_wrong(
    reading: tuple[LocalImapAccount, handlers_read.ReadPorts], mail_stack: MailStack
) -> None:
    mailbox, ports = reading
    mail_stack.seed_message(mailbox.address, subject="big", body="x" * 5000)
    ref = (await listed(ports)).messages[0].message_ref
    uidvalidity, uid, folder = ref.split(".")

    def get(message_ref: str, raw: bool = False) -> GetMessage:
        return GetMessage(agent_id="a1", message_ref=message_ref, raw=raw)

    async def code_of(request: GetMessage) -> ErrorCode | None:
        reply = await handlers_read.get_message(request, ports, limits=LIMITS, raw_max_bytes=2048)
        return reply.error.code if reply.error else None

    assert await code_of(get(f"{uidvalidity}.{int(uid) + 1}.{folder}")) is ErrorCode.NOT_FOUND
    assert await code_of(get(f"{int(uidvalidity) + 1}.{uid}.{folder}")) is ErrorCode.NOT_FOUND
    assert await code_of(get(f"{uidvalidity}.{uid}.A")) is ErrorCode.INVALID_INPUT
    assert await code_of(get(ref, raw=True)) is ErrorCode.MESSAGE_TOO_LARGE
    assert await code_of(get(ref)) is None, "parsed, it is read whatever its size"
    missing = await handlers_read.list_messages(
        ListMessages(agent_id="a1", folder="No Such Folder"), ports
    )
    assert missing.error is not None and missing.error.code is ErrorCode.NOT_FOUND
