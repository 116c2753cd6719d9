"""A watch session against the local Dovecot: IDLE ends when mail arrives, a quiet spell ends on
its own, a session the server cuts is reported lost, and a read picks up exactly what is new."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from mailbridge.devstack.mailstack import MailStack, MailStackEndpoints
from mailbridge.mail_worker.ports import PushSession
from mailbridge.shared.errors import ErrorCode, RetryableError
from mailbridge.shared.ids import new_id
from tests.support.imap_account import LocalImapAccount
from tests.support.proxy import Proxy

pytestmark = pytest.mark.integration

NETWORK_TIMEOUT = 3.0


class Watched(LocalImapAccount):
    def __init__(self, mail_stack: MailStack, endpoints: MailStackEndpoints) -> None:
        super().__init__(mail_stack, endpoints, "idle", NETWORK_TIMEOUT)

    async def session(self) -> PushSession:
        session = await self.reader.watch(self.account)
        assert session is not None, "the local Dovecot offers IDLE"
        return session

    async def uids_from(self, session: PushSession, first: int) -> list[int]:
        batch = await session.fetch_new(self.account, lambda validity, following: first, 50, 10**6)
        return [uid for uid, _ in batch.messages]


@pytest.fixture
async def watched(
    mail_stack: MailStack, mail_endpoints: MailStackEndpoints
) -> AsyncIterator[Watched]:
    made = Watched(mail_stack, mail_endpoints)
    yield made
    await made.reader.close()


async def test_idle_ends_when_mail_arrives_and_the_read_finds_only_it(
    watched: Watched, mail_stack: MailStack
) -> None:
    mail_stack.seed_message(watched.address, subject="before", body="x")
    session = await watched.session()
    try:
        assert await watched.uids_from(session, 1) == [1]
        waiting = asyncio.create_task(session.wait_for_mail(30))
        await asyncio.sleep(0.3)  # in IDLE by now; a message stored before it would also end it
        await asyncio.to_thread(mail_stack.seed_message, watched.address, subject="new", body="y")
        await asyncio.wait_for(waiting, 10)  # the push ended it: the quiet spell is 30 s
        assert await watched.uids_from(session, 2) == [2]
    finally:
        await session.close()


async def test_a_quiet_spell_ends_the_wait_and_the_session_stays_usable(watched: Watched) -> None:
    session = await watched.session()
    try:
        began = time.monotonic()
        await session.wait_for_mail(1.0)
        assert 0.9 <= time.monotonic() - began < 5
        assert await watched.uids_from(session, 1) == []
        await session.wait_for_mail(0.5)  # IDLE issued again on the same session
    finally:
        await session.close()


async def test_a_session_the_server_cuts_is_reported_lost(
    watched: Watched, mail_stack: MailStack
) -> None:
    session = await watched.session()
    try:
        waiting = asyncio.create_task(session.wait_for_mail(30))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(mail_stack.change_password, watched.address, new_id())  # kicks
        with pytest.raises(RetryableError):
            await asyncio.wait_for(waiting, 10)
        with pytest.raises(RetryableError):
            await watched.uids_from(session, 1)
    finally:
        await session.close()


async def test_a_link_that_died_without_a_word_is_found_out_after_the_quiet_spell(
    mail_stack: MailStack, mail_endpoints: MailStackEndpoints
) -> None:
    proxy = Proxy(mail_endpoints.host, mail_endpoints.imap_port)
    port = await proxy.start()
    watched = Watched(mail_stack, replace(mail_endpoints, imap_port=port))
    session = await watched.session()
    try:
        proxy.silent = True  # no FIN, no RST: only a timeout tells
        began = time.monotonic()
        with pytest.raises(RetryableError) as raised:
            await session.wait_for_mail(1.0)
        assert raised.value.code is ErrorCode.TIMEOUT
        assert time.monotonic() - began < 1.0 + 2 * NETWORK_TIMEOUT
    finally:
        await session.close()
        await watched.reader.close()
        await proxy.stop()
