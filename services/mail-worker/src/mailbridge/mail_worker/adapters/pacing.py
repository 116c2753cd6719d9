"""NatsKvPacing: how hard each mailbox's provider is called, held across every replica in one
NATS KV entry per mailbox (bucket ``MAIL_PACING``), changed by compare-and-set on its revision.

The rules are in ``domain/pacing.py``. KV traffic of one call: 1 get + 1 compare-and-set to be
admitted; 1 more get when it had to wait (a Retry-After may have come meanwhile); for Graph, whose
calls hold a concurrency lease, 1 get + 1 compare-and-set to release it. A conflict (another
replica wrote in between) reads again and decides again; a call waiting for a free slot reads once
per ``poll_seconds``. Times are wall-clock epoch seconds, so replicas' clocks must agree (NTP):
a replica ``d`` seconds ahead calls at most ``d`` seconds early.

A service part: built before the worker connects, its bucket opened by ``start``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from uuid import uuid4

from nats.js import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from mailbridge.mail_worker.adapters.kv import kv_key, open_bucket
from mailbridge.mail_worker.domain.pacing import (
    Admitted,
    Budget,
    Call,
    Pace,
    ProviderRules,
    Refused,
    Wait,
    admit,
    held_off,
    released,
)
from mailbridge.mail_worker.ports import ApiCall
from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.shared.errors import ErrorCode, RetryableError
from mailbridge.shared.messages import Provider

log = logging.getLogger(__name__)

BUCKET = "MAIL_PACING"
TTL_SECONDS = 24 * 3600.0
"""An idle mailbox's entry goes after a day; a longer Retry-After is held for a day."""


@dataclass(frozen=True)
class PacingLimits:
    """The providers' rules, and how long a call may wait to be admitted (then it is retried)."""

    rules: Mapping[Provider, ProviderRules]
    max_wait_seconds: float
    lease_seconds: float
    poll_seconds: float


def pacing_limits(settings: MailWorkerSettings) -> PacingLimits:
    """The rules from the settings; a call waits at most a third of the ack wait, as long as
    the in-progress keepalive of a delivery (``commands._keep_in_progress``)."""
    s = settings
    gmail_costs = {ApiCall.SEND.value: s.pacing_gmail_send_units,
                   ApiCall.READ.value: s.pacing_gmail_read_units}  # fmt: skip
    gmail = Budget("units", s.pacing_gmail_units_per_minute, 60.0, s.pacing_gmail_burst_units,
                   gmail_costs)  # fmt: skip
    requests = Budget("requests", s.pacing_graph_requests_per_10_minutes, 600.0,
                      s.pacing_graph_request_burst, {k.value: 1.0 for k in ApiCall})  # fmt: skip
    sends = Budget("sends", s.pacing_graph_sends_per_minute, 60.0, s.pacing_graph_send_burst,
                   {ApiCall.SEND.value: 1.0})  # fmt: skip
    rules = {
        Provider.GOOGLE: ProviderRules((gmail,)),
        Provider.MICROSOFT: ProviderRules((requests, sends), s.pacing_graph_concurrency),
    }
    return PacingLimits(
        rules, s.ack_wait_seconds / 3, s.pacing_lease_seconds, s.pacing_poll_seconds
    )


@dataclass
class _Slot:
    """A call's lease id, and whether a lease is written and so must be released."""

    call: Call
    held: bool = False


@dataclass
class NatsKvPacing:
    """The ``Pacing`` port for every replica at once; ``clock`` (epoch seconds) and ``sleep``
    are the real ones but for tests that watch the waits."""

    limits: PacingLimits
    name: str = BUCKET
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _bucket: KeyValue = field(init=False)

    async def start(self, js: JetStreamContext) -> None:
        self._bucket = await open_bucket(js, self.name, TTL_SECONDS)

    async def stop(self) -> None:
        return None

    def call(
        self, agent_id: str, provider: Provider, kind: ApiCall
    ) -> AbstractAsyncContextManager[None]:
        return self._paced(agent_id, provider, kind)

    async def hold_off(self, agent_id: str, seconds: float) -> None:
        until = self.clock() + min(seconds, TTL_SECONDS)
        await self._change(agent_id, lambda pace: held_off(pace, until))

    @asynccontextmanager
    async def _paced(self, agent_id: str, provider: Provider, kind: ApiCall) -> AsyncIterator[None]:
        """A provider without rules (IMAP and SMTP go elsewhere) is not paced."""
        rules = self.limits.rules.get(provider)
        deadline = self.clock() + self.limits.max_wait_seconds
        slot = _Slot(Call(kind.value, uuid4().hex, self.limits.lease_seconds, deadline))
        try:
            if rules is not None:
                await self._admitted(agent_id, rules, slot)
            yield
        finally:
            await self._release(agent_id, slot)

    async def _admitted(self, agent_id: str, rules: ProviderRules, slot: _Slot) -> None:
        """Admitted, and the start reached with no hold-off set meanwhile; a hold-off that came
        while it waited gives its slot back and asks again (its reserved budget stays spent)."""
        while True:
            admitted = await self._reserved(agent_id, rules, slot)
            if await self._still_clear(agent_id, admitted.start):
                return
            await self._release(agent_id, slot)

    async def _reserved(self, agent_id: str, rules: ProviderRules, slot: _Slot) -> Admitted:
        while True:
            pace, revision = await self._read(agent_id)
            decision = admit(pace, rules, slot.call, self.clock())
            if isinstance(decision, Refused):
                raise throttled(decision)
            if isinstance(decision, Wait):
                poll = self.limits.poll_seconds if decision.for_slot else decision.seconds
                await self.sleep(min(decision.seconds, poll))
            elif await self._write(agent_id, decision.pace, revision):
                slot.held = decision.leased
                return decision

    async def _still_clear(self, agent_id: str, start: float) -> bool:
        """Sleeps until ``start``; whether no hold-off was set meanwhile (no read if no wait)."""
        if (delay := start - self.clock()) <= 0:
            return True
        await self.sleep(delay)
        pace, _ = await self._read(agent_id)
        return pace.not_before <= self.clock()

    async def _release(self, agent_id: str, slot: _Slot) -> None:
        """Frees the slot; if NATS cannot be told, the lease runs out by itself."""
        if not slot.held:
            return
        lease_id = slot.call.lease_id
        try:
            await self._change(agent_id, lambda pace: released(pace, lease_id, self.clock()))
        except Exception:  # never hide the call's own outcome behind a lost release
            log.warning("a pacing lease of %s was not released; it expires", agent_id)
        slot.held = False

    async def _change(self, agent_id: str, change: Callable[[Pace], Pace]) -> None:
        while True:
            pace, revision = await self._read(agent_id)
            if await self._write(agent_id, change(pace), revision):
                return

    async def _read(self, agent_id: str) -> tuple[Pace, int | None]:
        """The mailbox's state and its revision; none yet: the empty state, no revision."""
        try:
            entry = await self._bucket.get(kv_key(agent_id))
        except KeyDeletedError as exc:
            return Pace(), exc.entry.revision if exc.entry else None
        except KeyNotFoundError:
            return Pace(), None
        return Pace.of(json.loads(entry.value) if entry.value else None), entry.revision

    async def _write(self, agent_id: str, pace: Pace, revision: int | None) -> bool:
        """Compare-and-set: False when another replica wrote since ``revision`` was read."""
        value = json.dumps(pace.document()).encode()
        try:
            if revision is None:
                await self._bucket.create(kv_key(agent_id), value)
            else:
                await self._bucket.update(kv_key(agent_id), value, last=revision)
        except KeyWrongLastSequenceError:
            return False
        return True


def throttled(refused: Refused) -> RetryableError:
    """The mailbox is paced beyond what one delivery may wait: retried, not sooner than it
    would have waited."""
    wait = refused.retry_after
    detail = "mailbridge is pacing this mailbox's calls" + (
        f"; room again in {wait:.0f}s" if wait is not None else "; every call slot is busy"
    )
    return RetryableError(ErrorCode.PROVIDER_THROTTLED, detail, retry_after_seconds=wait)
