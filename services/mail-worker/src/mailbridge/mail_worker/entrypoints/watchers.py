"""Receiving as mail arrives: connected IMAP mailboxes watched with IDLE, one worker each.

``WatchSupervisor`` (a service part) runs this worker's watches. Once a second, and at once when
a config event asks, it takes its share of the mailboxes to watch (``domain/watch_share.py``,
held in NATS KV by ``adapters/watch_leases.py``): claims free ones and those of workers gone,
releases the excess when workers join, and starts or stops a ``MailboxWatch`` for each.

``MailboxWatch`` reads a mailbox on a session of its own: a read (the same cursor, events and
dedupe as a poll), then IDLE until the server announces mail or a quiet spell passes, and again.
A lost session is replaced (``watch_reconnects`` times in a row, 1, 2, 4 s apart). A failure it
cannot mend ends the watch: reported as a failed poll (``mailbox.poll_failed``: an auth failure
turns the badge error; config-api backs the mailbox's polls off), and the mailbox is left to
polls, whose first success offers it to be watched again. A server without IDLE is marked so,
and polled.

Where a mailbox comes from: a ``status.changed`` to connected offers it (every replica hears
config events), as does every IMAP poll that read it; a config saved or a re-linked agent
restarts its watch, a disconnection stops it. A stopping worker hands its mailboxes over while
its connection still works (``hand_over``), so the others take them at once; a killed one's wait
a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime

from nats.js import JetStreamContext

from mailbridge.mail_worker import handlers
from mailbridge.mail_worker.container import Container
from mailbridge.mail_worker.domain.watch_share import plan
from mailbridge.mail_worker.entrypoints.commands import publish_received
from mailbridge.mail_worker.ports import PushInbox, PushSession, WatchLeases
from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.shared.errors import ErrorCode, MailbridgeError, RetryableError
from mailbridge.shared.errors import needs_new_credentials as credentials_broken
from mailbridge.shared.messages import Credentials, MailboxPollFailed

log = logging.getLogger(__name__)

ROUND_SECONDS = 1.0
CLAIMS_PER_ROUND = 200  # a thousand mailboxes are taken in five rounds, not all in one burst


@dataclass(frozen=True)
class NoPush:
    """The server cannot push (no IDLE), or the account reads through a provider's API."""


@dataclass(frozen=True)
class Failed:
    error: MailbridgeError
    credentials_read_at: datetime | None  # when the credentials that failed were read


@dataclass
class _Streak:
    failures: int = 0  # lost sessions in a row, since the last good read


WatchEnd = NoPush | Failed


class MailboxWatch:
    def __init__(
        self, c: Container, push: PushInbox, settings: MailWorkerSettings, logins: asyncio.Semaphore
    ) -> None:
        self._c, self._push, self._settings, self._logins = c, push, settings, logins
        self._reconnects = settings.watch_reconnects

    async def run(self, agent_id: str) -> WatchEnd:
        """Watch until cancelled; answers why it ended otherwise."""
        streak = _Streak()
        while True:
            read_at = self._c.clock.now()
            try:
                opened = await self._open(agent_id)
                if opened is None:
                    return NoPush()
                await self._read_until_lost(agent_id, *opened, streak)
            except MailbridgeError as exc:
                if credentials_broken(exc.code) or streak.failures >= self._reconnects:
                    return Failed(exc, read_at)
                log.info("watch of %s lost (%s); reconnecting", agent_id, exc.code)
            except Exception as exc:  # NATS or the KV answered late: the session is fine
                if streak.failures >= self._reconnects:
                    return Failed(RetryableError(ErrorCode.INTERNAL, "The watch broke."), read_at)
                log.warning("watch of %s broke (%r); reconnecting", agent_id, exc)
            streak.failures += 1
            self._c.metrics.watch_reconnects.inc()
            await asyncio.sleep(2.0 ** (streak.failures - 1))

    async def _open(self, agent_id: str) -> tuple[PushSession, Credentials] | None:
        account = await self._c.fresh_credentials.get(agent_id)
        if handlers.api_of(account, self._c.apis) is not None or account.imap is None:
            return None
        async with self._logins:
            try:
                session = await self._push.watch(account)
            except MailbridgeError:
                raise
            except Exception as exc:  # aioimaplib's own errors: the session did not come up
                raise RetryableError(
                    ErrorCode.PROVIDER_UNAVAILABLE, "IMAP session failed."
                ) from exc
        return None if session is None else (session, account)

    async def _read_until_lost(
        self, agent_id: str, session: PushSession, account: Credentials, streak: _Streak
    ) -> None:
        """Read, wait for news, read again; raises when the session is lost. The cursor is read
        once a session: while this worker holds the mailbox, no other reads it."""
        try:
            cursor = await self._c.cursors.get(agent_id)
            while True:
                read = await handlers.read_imap_inbox(
                    agent_id, account, session, cursor, self._c.limits
                )
                if read.cursor != cursor:
                    await publish_received(self._c, agent_id, read.events, read.cursor)
                    self._c.metrics.pushed.inc(len(read.events))
                    cursor = read.cursor
                streak.failures = 0
                if not read.more_waiting:
                    await session.wait_for_mail(self._settings.watch_quiet_seconds)
        finally:
            await session.close()


class WatchSupervisor:
    """This worker's watches and its share of the mailboxes; the ``Watches`` port for commands
    and config events."""

    def __init__(
        self, c: Container, push: PushInbox, leases: WatchLeases, settings: MailWorkerSettings
    ) -> None:
        self._c, self._leases, self._settings = c, leases, settings
        logins = asyncio.Semaphore(settings.watch_concurrent_logins)
        self._watch = MailboxWatch(c, push, settings, logins)
        self._running: dict[str, asyncio.Task[WatchEnd]] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    async def start(self, js: JetStreamContext) -> None:
        self._loop = asyncio.create_task(self._rounds(), name="watch-supervisor")

    async def hand_over(self) -> None:
        """Stopping: no more rounds, every watch ended and its mailbox given back, so the other
        replicas take it at their next round instead of a lease later."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        for agent_id in list(self._running):
            await self._end(agent_id)
            with contextlib.suppress(Exception):
                await self._leases.release(agent_id)

    async def stop(self) -> None:
        await self.hand_over()  # done already, unless the connection was lost first

    def is_watched(self, agent_id: str) -> bool:
        return self._leases.share().is_watched(agent_id)

    async def offer(self, agent_id: str) -> None:
        await self._leases.offer(agent_id)
        self._wake.set()

    async def restart(self, agent_id: str) -> None:
        if agent_id in self._running:
            await self._end(agent_id)
            self._wake.set()  # still this worker's: the next round starts it afresh

    async def stop_watching(self, agent_id: str) -> None:
        await self._end(agent_id)
        await self._leases.forget(agent_id)

    async def _rounds(self) -> None:
        beat_every = self._settings.watch_lease_seconds / 3
        last_beat = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                if loop.time() - last_beat >= beat_every:
                    await self._leases.heartbeat()
                    last_beat = loop.time()
                await self.reconcile()
            except Exception:  # NATS away: the next round tries again
                log.warning("watch round failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), ROUND_SECONDS)
            self._wake.clear()

    async def reconcile(self) -> None:
        """One round: settle ended watches, then match the running ones to this worker's share."""
        await self._settle_ended()
        share = self._leases.share()
        me = self._leases.worker_id
        for agent_id in set(self._running) - share.owned_by(me):
            await self._end(agent_id)  # taken by another (this worker was thought gone)
        budget = self._settings.watch_max_mailboxes
        decided = plan(share, me, budget, CLAIMS_PER_ROUND)
        for agent_id in decided.release:
            await self._end(agent_id)
            await self._leases.release(agent_id)
        for agent_id in decided.claim:
            await self._leases.claim(agent_id)
        for agent_id in self._leases.share().owned_by(me) - set(self._running):
            self._begin(agent_id)
        self._c.metrics.watched.set(len(self._running))

    def _begin(self, agent_id: str) -> None:
        self._running[agent_id] = asyncio.create_task(
            self._watch.run(agent_id), name=f"watch-{agent_id}"
        )

    async def _end(self, agent_id: str) -> None:
        task = self._running.pop(agent_id, None)
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        self._c.metrics.watch_ends.labels(reason="stopped").inc()

    async def _settle_ended(self) -> None:
        for agent_id, task in list(self._running.items()):
            if not task.done():
                continue
            del self._running[agent_id]
            try:
                ended = task.result()
            except Exception:
                log.exception("watch of %s broke", agent_id)
                ended = Failed(RetryableError(ErrorCode.INTERNAL, "The watch broke."), None)
            await self._settle(agent_id, ended)

    async def _settle(self, agent_id: str, ended: WatchEnd) -> None:
        if isinstance(ended, NoPush):
            log.info("%s cannot be watched (no IDLE, or read through an API): polled", agent_id)
            self._c.metrics.watch_ends.labels(reason="no_push").inc()
            await self._leases.unpushable(agent_id)
            return
        log.warning("watch of %s ended: %s; polls read it now", agent_id, ended.error.code)
        self._c.metrics.watch_ends.labels(reason="failed").inc()
        failure = _reported(agent_id, ended, self._c)
        self._c.metrics.poll_failed(failure.auth)
        await self._c.publisher.publish(failure)
        await self._leases.forget(agent_id)


def _reported(agent_id: str, ended: Failed, c: Container) -> MailboxPollFailed:
    """A watch's failure as a failed poll of the credentials read when it (re)connected."""
    issued_at = ended.credentials_read_at or c.clock.now()
    return MailboxPollFailed(
        agent_id=agent_id,
        command_id=f"watch-{agent_id}-{int(c.clock.now().timestamp() * 1000)}",
        poll_issued_at=issued_at,
        error=ended.error.info(),
        auth=credentials_broken(ended.error.code),
    )
