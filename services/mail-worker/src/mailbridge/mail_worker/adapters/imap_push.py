"""ImapPushSession: one logged-in IMAP session that stays on INBOX and waits in IDLE (RFC 2177).

Made by ``AioimaplibMailboxReader.watch``, outside the pool: a watched mailbox holds its session
for as long as it is watched. ``fetch_new`` reads as a poll does, without selecting INBOX again
when news woke it; ``wait_for_mail`` returns when the server says ``* n EXISTS`` or after a quiet
spell, so the caller reads again either way (the quiet spell's read, on a fresh SELECT, is the
safety net for anything a push missed). Each wait is a fresh IDLE, so
IDLE is re-issued at least every quiet spell, well before servers' 29-minute limit.

A lost connection, or one that stops answering (its IDLE is not ended within the timeout), is a
``RetryableError`` in the taxonomy's connection terms: the watcher replaces the session.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aioimaplib

from mailbridge.mail_worker.adapters.imap_commands import (
    Selected,
    announced_since,
    new_messages,
    renumbered_since,
    select_inbox,
)
from mailbridge.mail_worker.adapters.network import connection_error
from mailbridge.mail_worker.ports import FetchedBatch, FirstUid
from mailbridge.shared.errors import ErrorCode, MailbridgeError, RetryableError
from mailbridge.shared.messages import Credentials, ServerEndpoint


class ImapPushSession:
    def __init__(
        self, client: Any, endpoint: ServerEndpoint, timeout: float, inbox: Selected
    ) -> None:
        self._client, self._endpoint, self._timeout = client, endpoint, timeout
        self._inbox: Selected | None = inbox  # None: SELECT again before the next read

    async def fetch_new(
        self, credentials: Credentials, first_uid: FirstUid, limit: int, max_bytes: int
    ) -> FetchedBatch:
        """As ``InboxFetcher.fetch_new`` (``credentials`` are those the session logged in with).
        Woken by news, INBOX is still selected: read at once; after a quiet spell, or when the
        server renumbered the mailbox, it is selected afresh."""
        self._check_alive()
        try:
            if self._inbox is None or renumbered_since(self._client):
                self._inbox = await select_inbox(self._client)
            return await new_messages(self._client, first_uid, limit, max_bytes, self._inbox)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            raise self._dropped(exc) from exc

    async def wait_for_mail(self, quiet_seconds: float) -> None:
        """Until the server announces new mail, or ``quiet_seconds`` pass without any."""
        self._check_alive()
        if announced_since(self._client):  # mail came while the last read was answered
            return
        try:
            idle = await asyncio.wait_for(self._client.idle_start(quiet_seconds), self._timeout)
            try:
                news = await self._until_news(quiet_seconds + self._timeout)
            finally:
                if not self._lost():
                    self._client.idle_done()
            await asyncio.wait_for(idle, self._timeout)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            raise self._dropped(exc) from exc
        if not news:
            self._inbox = None  # the quiet spell's read is the safety net: a fresh SELECT

    async def close(self) -> None:
        if not self._lost():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._client.logout(), 5)
        self._client.abandon()
        for task in list(getattr(self._client, "tasks", ())):  # an IDLE the server never ended
            task.cancel()

    async def _until_news(self, limit_seconds: float) -> bool:
        """True when the server announced mail, False after the quiet spell; pushes other than
        new mail (``* OK Still here``, flag changes) keep it waiting."""
        lost = asyncio.ensure_future(self._client.protocol.lost.wait())
        push: asyncio.Future[Any] | None = None
        try:
            while True:
                push = asyncio.ensure_future(self._client.wait_server_push(limit_seconds))
                done, _ = await asyncio.wait({push, lost}, return_when=asyncio.FIRST_COMPLETED)
                if push not in done:
                    raise ConnectionResetError("the IMAP connection was lost")
                if announced_since(self._client):
                    return True
                if push.result() == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    return False
        finally:
            for waiting in (lost, push):
                if waiting is not None and not waiting.done():
                    waiting.cancel()

    def _check_alive(self) -> None:
        if self._lost():
            raise self._dropped(ConnectionResetError("the IMAP connection was lost"))

    def _lost(self) -> bool:
        return bool(self._client.protocol.lost.is_set())

    def _dropped(self, exc: BaseException) -> MailbridgeError:
        if isinstance(exc, TimeoutError):
            return connection_error(exc, self._endpoint.host, self._endpoint.port)
        where = f"{self._endpoint.host}:{self._endpoint.port}"
        return RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, f"{where} dropped the connection.")
