"""NatsKvWatchLeases: which mail-worker watches which mailbox, in two NATS KV buckets.

- ``MAIL_WATCH``: one entry per mailbox to watch, ``{agent_id, owner, push}`` (``owner`` "" while
  free). Claimed and released by compare-and-set on the revision this worker last saw, so two
  workers never both take one.
- ``MAIL_WATCH_WORKERS``: one heartbeat per live worker, put every third of the lease; the
  bucket's TTL is the lease, so a dead worker's heartbeat goes. A worker's id is fresh per
  process and says where it runs: ``{host}-{pid}-{random}``.

Every worker follows both buckets with a KV watch and keeps the share in memory: a decision
(``domain/watch_share.py``) costs no round trip, and a claim or a release is one write. A worker
is live while its last heartbeat is younger than the lease, judged by the heartbeat's server
timestamp: a worker SIGKILLed is gone for the others one lease later, and its mailboxes are free.

A service part: the buckets are opened and followed by ``start``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from nats.js import JetStreamContext
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from mailbridge.mail_worker.adapters.kv import kv_key, open_bucket
from mailbridge.mail_worker.domain.watch_share import WatchEntry, WatchShare

log = logging.getLogger(__name__)

MAILBOXES = "MAIL_WATCH"
WORKERS = "MAIL_WATCH_WORKERS"


class NatsKvWatchLeases:
    def __init__(self, lease_seconds: float, worker_id: str | None = None) -> None:
        self.worker_id = worker_id or new_worker_id()
        self._lease = timedelta(seconds=lease_seconds)
        self._entries: dict[str, tuple[WatchEntry, int]] = {}  # agent id → entry, revision
        self._agents: dict[str, str] = {}  # KV key → agent id (a deletion names only the key)
        self._gone: set[str] = set()  # forgotten here; their deletion not yet back from the watch
        self._beats: dict[str, datetime] = {}  # worker id → its last heartbeat
        self._followers: list[asyncio.Task[None]] = []

    async def start(self, js: JetStreamContext) -> None:
        self._mailboxes = await open_bucket(js, MAILBOXES)
        self._workers = await open_bucket(js, WORKERS, self._lease.total_seconds())
        await self.heartbeat()
        for bucket, apply in ((self._mailboxes, self._apply_mailbox), (self._workers, self._beat)):
            up_to_date = asyncio.Event()
            self._followers.append(asyncio.create_task(_follow(bucket, apply, up_to_date)))
            await asyncio.wait_for(up_to_date.wait(), 10)

    async def hand_over(self) -> None:
        """Stopping: the heartbeat goes, so the others need not wait a lease for this worker."""
        with contextlib.suppress(Exception):
            await self._workers.delete(self.worker_id)

    async def stop(self) -> None:
        for follower in self._followers:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower

    def share(self) -> WatchShare:
        now = datetime.now(UTC)
        live = {worker for worker, beat in self._beats.items() if now - beat < self._lease}
        entries = {agent: entry for agent, (entry, _) in self._entries.items()}
        return WatchShare(entries, frozenset(live | {self.worker_id}))

    async def heartbeat(self) -> None:
        await self._workers.put(self.worker_id, b"")

    async def offer(self, agent_id: str) -> None:
        if agent_id in self._entries:
            return
        with contextlib.suppress(KeyWrongLastSequenceError):  # offered by another just now
            await self._mailboxes.create(kv_key(agent_id), _encoded(WatchEntry(agent_id)))

    async def claim(self, agent_id: str) -> bool:
        return await self._swap(agent_id, owner=self.worker_id)

    async def release(self, agent_id: str) -> None:
        await self._swap(agent_id, owner="")

    async def unpushable(self, agent_id: str) -> None:
        marked = WatchEntry(agent_id, push=False)
        revision = await self._mailboxes.put(kv_key(agent_id), _encoded(marked))
        self._entries[agent_id] = (marked, revision)  # this round already must not start it

    async def forget(self, agent_id: str) -> None:
        await self._mailboxes.delete(kv_key(agent_id))
        if self._entries.pop(agent_id, None) is not None:  # older changes may still come back:
            self._gone.add(agent_id)  # they are ignored until the deletion does

    async def _swap(self, agent_id: str, *, owner: str) -> bool:
        """Set the owner, if the entry is still the revision this worker last saw."""
        seen = self._entries.get(agent_id)
        if seen is None:
            return False
        entry, revision = seen
        changed = WatchEntry(agent_id, owner=owner, push=entry.push)
        try:
            revision = await self._mailboxes.update(kv_key(agent_id), _encoded(changed), revision)
        except KeyWrongLastSequenceError:
            return False
        self._entries[agent_id] = (changed, revision)  # not waiting for the watch to say so
        return True

    def _apply_mailbox(self, entry: KeyValue.Entry) -> None:
        if entry.operation in (KV_DEL, KV_PURGE):
            agent_id = self._agents.pop(entry.key, None)
            if agent_id is not None:
                self._entries.pop(agent_id, None)
                self._gone.discard(agent_id)
            return
        try:
            raw = json.loads(entry.value or b"")
            decoded = WatchEntry(str(raw["agent_id"]), str(raw["owner"]), bool(raw["push"]))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable %s entry %s", MAILBOXES, entry.key)
            return
        known = self._entries.get(decoded.agent_id)
        if decoded.agent_id in self._gone or entry.revision is None:
            return
        if known is None or known[1] <= entry.revision:
            self._agents[entry.key] = decoded.agent_id
            self._entries[decoded.agent_id] = (decoded, entry.revision)

    def _beat(self, entry: KeyValue.Entry) -> None:
        if entry.operation in (KV_DEL, KV_PURGE):
            self._beats.pop(entry.key, None)
        elif entry.created is not None:
            self._beats[entry.key] = _as_time(entry.created)


async def _follow(
    bucket: KeyValue, apply: Callable[[KeyValue.Entry], None], up_to_date: asyncio.Event
) -> None:
    """Apply every change of the bucket as it comes; ``up_to_date`` once its history is read."""
    watcher = await bucket.watchall()
    try:
        async for entry in watcher:
            if entry is None:
                up_to_date.set()
                continue
            apply(entry)
    finally:
        with contextlib.suppress(Exception):
            await watcher.stop()  # type: ignore[no-untyped-call]


def new_worker_id() -> str:
    """``{host}-{pid}-{random}``, in the characters a KV key may hold."""
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40]
    return f"{host}-{os.getpid()}-{uuid4().hex[:8]}"


def _as_time(created: object) -> datetime:
    """A KV entry's server timestamp (nats-py gives a datetime; its type hint says int)."""
    if isinstance(created, datetime):
        return created
    return datetime.fromtimestamp(int(created) / 1e9, UTC)  # type: ignore[call-overload]


def _encoded(entry: WatchEntry) -> bytes:
    return json.dumps(
        {"agent_id": entry.agent_id, "owner": entry.owner, "push": entry.push}
    ).encode()
