"""ImapPushSession: one logged-in IMAP session that stays on INBOX and waits in IDLE (RFC 2177).

Made by ``AioimaplibMailboxReader.watch``, outside the pool: a watched mailbox holds its session
for as long as it is watched. ``fetch_new`` reads as a poll does; ``wait_for_mail`` returns when
the server says ``* n EXISTS`` or after a quiet spell, so the caller reads again either way (the
quiet spell's read is the safety net for anything a push missed). Each wait is a fresh IDLE, so
IDLE is re-issued at least every quiet spell, well before servers' 29-minute limit.

A lost connection, or one that stops answering (its IDLE is not ended within the timeout), is a
``RetryableError`` in the taxonomy's connection terms: the watcher replaces the session.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aioimaplib

from mailbridge.mail_worker.adapters.imap_commands import announced_since, new_messages
from mailbridge.mail_worker.adapters.network import connection_error
from mailbridge.mail_worker.ports import FetchedBatch, FirstUid
from mailbridge.shared.errors import ErrorCode, MailbridgeError, RetryableError
from mailbridge.shared.messages import Credentials, ServerEndpoint

_NEWS = (b"EXISTS", b"RECENT")


class ImapPushSession:
    def __init__(self, client: Any, endpoint: ServerEndpoint, timeout: float) -> None:
        self._client, self._endpoint, self._timeout = client, endpoint, timeout

    async def fetch_new(
        self, credentials: Credentials, first_uid: FirstUid, limit: int, max_bytes: int
    ) -> FetchedBatch:
        """As ``InboxFetcher.fetch_new`` (``credentials`` are those the session logged in with)."""
        self._check_alive()
        try:
            return await new_messages(self._client, first_uid, limit, max_bytes)
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
                await self._until_news(quiet_seconds + self._timeout)
            finally:
                if not self._lost():
                    self._client.idle_done()
            await asyncio.wait_for(idle, self._timeout)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            raise self._dropped(exc) from exc

    async def close(self) -> None:
        if not self._lost():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._client.logout(), 5)
        self._client.abandon()
        for task in list(getattr(self._client, "tasks", ())):  # an IDLE the server never ended
            task.cancel()

    async def _until_news(self, limit_seconds: float) -> None:
        """Pushes other than new mail (``* OK Still here``, flag changes) keep it waiting."""
        lost = asyncio.ensure_future(self._client.protocol.lost.wait())
        push: asyncio.Future[Any] | None = None
        try:
            while True:
                push = asyncio.ensure_future(self._client.wait_server_push(limit_seconds))
                done, _ = await asyncio.wait({push, lost}, return_when=asyncio.FIRST_COMPLETED)
                if push not in done:
                    raise ConnectionResetError("the IMAP connection was lost")
                lines = push.result()
                if lines == aioimaplib.STOP_WAIT_SERVER_PUSH or _announces_mail(lines):
                    return
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


def _announces_mail(lines: object) -> bool:
    return isinstance(lines, list) and any(
        isinstance(line, bytes) and line.rstrip().endswith(_NEWS) for line in lines
    )
