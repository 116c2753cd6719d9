"""AioimaplibMailboxReader: IMAP login over verified TLS and ``STATUS INBOX (MESSAGES UNSEEN)``."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import aioimaplib

from mailbridge.mail_worker.adapters import imap_browse
from mailbridge.mail_worker.adapters.imap_commands import (
    fetch_message,
    new_messages,
    parse_counts,
    quoted,
    select_inbox,
)
from mailbridge.mail_worker.adapters.imap_push import ImapPushSession
from mailbridge.mail_worker.adapters.network import Network, connection_error
from mailbridge.mail_worker.adapters.sessions import (
    SessionKey,
    SessionLimits,
    SessionPool,
    account_key,
)
from mailbridge.mail_worker.adapters.xoauth2 import MailTokenSource, Refused, XOAuth2Login
from mailbridge.mail_worker.domain.classify import classify_imap_login_failure, refusal
from mailbridge.mail_worker.domain.message_ref import MessageRef, PageCursor
from mailbridge.mail_worker.ports import (
    FetchedBatch,
    FetchedItem,
    FirstUid,
    FolderPage,
    InboxCounts,
)
from mailbridge.shared.errors import ErrorCode, MailbridgeError, PermanentError, RetryableError
from mailbridge.shared.messages import Credentials, ServerEndpoint

DEFAULT_SENT = "Sent"
_EXISTS = re.compile(rb"\* \d+ EXISTS")
_LIST_LINE = re.compile(rb'^\(([^)]*)\) (?:"[^"]*"|NIL) (.+)$')


class AioimaplibMailboxReader:
    def __init__(
        self, network: Network, sessions: SessionLimits, tokens: MailTokenSource | None = None
    ) -> None:
        self._network, self._budget = network, sessions.budget
        self._xoauth2 = XOAuth2Login(tokens)
        self._pool: SessionPool[aioimaplib.IMAP4] = sessions.pool(
            alive=_answers_noop, close=_logout
        )
        self._sent_folders: dict[SessionKey, str] = {}

    async def close(self) -> None:
        await self._pool.close_all()

    async def inbox_counts(self, credentials: Credentials) -> InboxCounts:
        """Always a fresh connection and login: that is what a test is for."""
        async with self._fresh(credentials) as client:
            response = await client.status("INBOX", "(MESSAGES UNSEEN)")
            return parse_counts(response.result, response.lines)

    async def append(self, credentials: Credentials, message: bytes) -> None:
        """A copy in the folder flagged ``\\Sent`` (RFC 6154), created as "Sent" if missing."""
        key = account_key(credentials, _endpoint(credentials))
        async with self._pool.lease(key, lambda: self._login(credentials)) as client:
            folder = await self._sent_of(key, client)
            response = await client.append(message, mailbox=folder, flags="(\\Seen)")
            if response.result != "OK":
                raise RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, "APPEND to Sent failed.")

    async def find_sent(self, credentials: Credentials, message_id: str) -> bool:
        """Whether the Sent folder holds a message with this Message-ID (``SEARCH HEADER``)."""
        key = account_key(credentials, _endpoint(credentials))
        async with self._pool.lease(key, lambda: self._login(credentials)) as client:
            selected = await client.select(await self._sent_of(key, client))  # read, not changed
            if selected.result != "OK":
                raise RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, "Sent could not be opened.")
            found = await client.uid_search(f"HEADER Message-ID {quoted(message_id)}")
            if found.result != "OK":
                raise RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, "Sent could not be searched.")
            return any(line.split() for line in found.lines[:1] if isinstance(line, bytes))

    async def _sent_of(self, key: SessionKey, client: aioimaplib.IMAP4) -> str:
        folder = self._sent_folders.get(key) or await _sent_folder(client)
        self._sent_folders[key] = folder
        return folder

    async def fetch_new(
        self, credentials: Credentials, first_uid: FirstUid, limit: int, max_bytes: int
    ) -> FetchedBatch:
        """Messages of INBOX from the UID that ``first_uid`` picks, at most ``limit`` of them;
        larger than ``max_bytes``: headers only. Read with PEEK, so nothing is marked seen."""
        async with self._leased(credentials) as client:
            return await new_messages(client, first_uid, limit, max_bytes)

    async def list_page(
        self, credentials: Credentials, folder: str, cursor: PageCursor | None, limit: int
    ) -> FolderPage:
        async with self._leased(credentials) as client:
            uidvalidity = await imap_browse.examine(client, folder)
            if cursor is not None and cursor.uidvalidity != uidvalidity:
                raise MailbridgeError(
                    ErrorCode.INVALID_INPUT,
                    f"{folder} was renumbered since this cursor; list it again from the newest.",
                )
            below = cursor.below_uid if cursor is not None else None
            return await imap_browse.page(client, uidvalidity, below, limit)

    async def read(
        self, credentials: Credentials, ref: MessageRef, max_bytes: int
    ) -> FetchedItem | None:
        async with self._leased(credentials) as client:
            if await imap_browse.examine(client, ref.folder) != ref.uidvalidity:
                return None
            found = await imap_browse.fetch_items(client, [ref.uid])
            if not found:
                return None
            sizes = {ref.uid: found[0].size}
            found[0].literal = await fetch_message(client, ref.uid, sizes, max_bytes)
            return found[0]

    async def mark_seen(self, credentials: Credentials, ref: MessageRef) -> bool:
        async with self._leased(credentials) as client:
            if await imap_browse.select(client, ref.folder) != ref.uidvalidity:
                return False
            found = await imap_browse.fetch_items(client, [ref.uid])
            if found and not found[0].seen:
                await imap_browse.mark_seen(client, ref.uid)
            return bool(found)

    @asynccontextmanager
    async def _leased(self, credentials: Credentials) -> AsyncIterator[aioimaplib.IMAP4]:
        """A pooled session of the account; its reads may leave any folder selected (a poll
        selects INBOX again first)."""
        endpoint = _endpoint(credentials)
        key = account_key(credentials, endpoint)
        async with self._pool.lease(key, lambda: self._login(credentials)) as client:
            try:
                yield client
            except (OSError, TimeoutError) as exc:  # a pooled session the server cut, raised bare
                raise connection_error(exc, endpoint.host, endpoint.port) from exc

    async def watch(self, credentials: Credentials) -> ImapPushSession | None:
        """A session of its own for waiting on INBOX, or None when the server has no IDLE."""
        client = await self._login(credentials)
        try:
            await asyncio.wait_for(client.protocol.capability(), self._network.timeout)
            inbox = await select_inbox(client)  # IDLE waits on a selected mailbox
        except BaseException:
            await _logout(client)
            raise
        if not client.has_capability("IDLE"):
            await _logout(client)
            return None
        return ImapPushSession(client, _endpoint(credentials), self._network.timeout, inbox)

    @asynccontextmanager
    async def _fresh(self, credentials: Credentials) -> AsyncIterator[aioimaplib.IMAP4]:
        async with self._budget.slot(_endpoint(credentials).host):
            client = await self._login(credentials)
            try:
                yield client
            finally:
                await _logout(client)

    async def _login(self, credentials: Credentials) -> aioimaplib.IMAP4:
        client = await self._connect(_endpoint(credentials))
        try:
            await self._authenticate(client, credentials)
        except BaseException:
            await _logout(client)
            raise
        return client

    async def _authenticate(self, client: _PinnedImap4Ssl, credentials: Credentials) -> None:
        if credentials.xoauth2:
            attempt = partial(_xoauth2_attempt, client)
            await self._xoauth2.log_in(credentials, attempt, "IMAP XOAUTH2 login was refused.")
            return
        assert credentials.password is not None
        response = await client.login(
            credentials.username or credentials.email, credentials.password.get_secret_value()
        )
        if response.result != "OK":
            raise refusal(_password_code(response), "IMAP login was refused.")

    async def _connect(self, endpoint: ServerEndpoint) -> _PinnedImap4Ssl:
        """Implicit TLS on a connection to the address the guard checked."""
        if endpoint.security != "ssl":
            raise PermanentError(ErrorCode.INVALID_INPUT, "IMAP requires implicit TLS (ssl).")
        sock = await self._network.guard.connect(endpoint.host, endpoint.port)
        client = _PinnedImap4Ssl(sock, endpoint, self._network)
        try:
            await asyncio.wait_for(client.wait_hello_from_server(), self._network.timeout)
        except (OSError, TimeoutError) as exc:
            client.abandon()
            raise connection_error(exc, endpoint.host, endpoint.port) from exc
        return client


class _PinnedImap4Ssl(aioimaplib.IMAP4):  # type: ignore[misc]  # aioimaplib has no types
    """aioimaplib's IMAP4_SSL, but over a socket already connected to the checked address: the
    TLS handshake names (SNI) and verifies ``host``, which is never looked up again."""

    def __init__(self, sock: socket.socket, endpoint: ServerEndpoint, network: Network) -> None:
        self._sock = sock
        super().__init__(
            endpoint.host, endpoint.port, timeout=network.timeout, ssl_context=network.tls
        )

    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: object = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Called by ``IMAP4.__init__``: the same protocol, on ``sock`` instead of (host, port)."""
        local_loop = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = _Protocol(local_loop, conn_lost_cb)
        connecting = local_loop.create_connection(
            lambda: self.protocol,
            sock=self._sock,
            ssl=ssl_context,
            server_hostname=host,
            ssl_handshake_timeout=self.timeout,
        )
        self._client_task = local_loop.create_task(connecting)

    async def xoauth2_login(self, initial_response: str) -> aioimaplib.Response:
        """``AUTHENTICATE XOAUTH2`` with the initial response (RFC 4959); a challenge the server
        sends on refusal is answered empty by ``_Protocol`` and kept in the response's lines."""
        protocol = self.protocol
        command = aioimaplib.Command(
            "AUTHENTICATE", protocol.new_tag(), "XOAUTH2", initial_response, loop=protocol.loop
        )
        async with protocol.state_condition:
            execution = protocol.execute(command, scrub=initial_response)
            response = await asyncio.wait_for(execution, self.timeout)
            if response.result == "OK":
                protocol.state = aioimaplib.AUTH
            protocol.state_condition.notify_all()
        return response

    def abandon(self) -> None:
        """Drop the connection of a client that never became usable (no greeting, no TLS).

        The socket belongs to asyncio once the connection is being made: it closes it with the
        transport, or when the connection attempt is cancelled. Closing it here as well would
        free its descriptor while a transport still holds the number."""
        transport = getattr(self.protocol, "transport", None)
        if transport is not None:
            transport.abort()
        elif not self._client_task.done():
            self._client_task.cancel()


class _Protocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]  # aioimaplib has no types
    """aioimaplib's protocol, which also notes new mail the server announces (``* n EXISTS``:
    aioimaplib drops those that come with an answer to SEARCH or FETCH), a UIDVALIDITY said
    while selected (the mailbox renumbered), and when the connection is lost (aioimaplib leaves
    a running IDLE waiting forever)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn_lost_cb: object = None) -> None:
        super().__init__(loop, conn_lost_cb)
        self.mail_announced = False
        self.renumbered = False
        self.lost = asyncio.Event()

    def _untagged_response(self, line: bytes) -> object:
        if _EXISTS.match(line):
            self.mail_announced = True
        elif b"[UIDVALIDITY " in line:
            self.renumbered = True
        return super()._untagged_response(line)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()
        super().connection_lost(exc)

    def _continuation(self, line: bytes) -> None:
        """A challenge to AUTHENTICATE is a refusal (XOAUTH2's error JSON): kept with the
        response, and answered with the empty line after which the server says NO."""
        command = self.pending_sync_command
        if command is None or command.name != "AUTHENTICATE":
            super()._continuation(line)
            return
        command.append_to_resp(line)
        self.transport.write(b"\r\n")


def _password_code(response: aioimaplib.Response) -> ErrorCode:
    text = b" ".join(line for line in response.lines if isinstance(line, bytes))
    return classify_imap_login_failure(text.decode(errors="replace"))


async def _xoauth2_attempt(client: _PinnedImap4Ssl, initial_response: str) -> Refused | None:
    try:
        response = await client.xoauth2_login(initial_response)
    except (aioimaplib.AioImapException, OSError, TimeoutError) as exc:  # closed after a refusal
        raise RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, "The IMAP session broke.") from exc
    if response.result == "OK":
        return None
    challenge = next((line[1:] for line in response.lines if line.startswith(b"+")), None)
    return Refused(_password_code(response), challenge)


def _endpoint(credentials: Credentials) -> ServerEndpoint:
    if credentials.imap is None or (credentials.password is None and not credentials.xoauth2):
        raise PermanentError(ErrorCode.INVALID_INPUT, "No IMAP server or password configured.")
    return credentials.imap


async def _answers_noop(client: aioimaplib.IMAP4) -> bool:
    try:
        answer = await asyncio.wait_for(client.noop(), 5)
    except Exception:  # any failure means: do not reuse this session
        return False
    return bool(answer.result == "OK")


async def _logout(client: aioimaplib.IMAP4) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.logout(), 5)


async def _sent_folder(client: aioimaplib.IMAP4) -> str:
    listing = await client.list('""', "*")
    for line in listing.lines:
        match = _LIST_LINE.match(line)
        if match and b"\\sent" in match.group(1).lower():
            return match.group(2).decode().strip('"')
    await client.create(DEFAULT_SENT)
    return DEFAULT_SENT
