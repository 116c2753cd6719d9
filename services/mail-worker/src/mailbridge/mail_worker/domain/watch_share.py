"""Who watches which mailbox: the share each mail-worker takes of the mailboxes to watch.

Every watchable mailbox has one entry, free or owned by one worker. A worker is live while its
heartbeat is younger than the lease; a mailbox owned by a worker that is not live is free to
claim again. Each worker aims at an even share, ``ceil(watchable / live workers)``, capped by its
budget of connections: below it, it claims free mailboxes (in an order of its own, so replicas
rarely race for the same one); above it (workers joined), it releases the excess. Mailboxes that
no budget has room for are read by polls alone.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WatchEntry:
    agent_id: str
    owner: str = ""  # the watching worker's id; "" while free
    push: bool = True  # False: its server cannot push (no IDLE), so it is only polled


@dataclass(frozen=True)
class WatchShare:
    entries: Mapping[str, WatchEntry] = field(default_factory=dict)
    live_workers: frozenset[str] = frozenset()

    def is_watched(self, agent_id: str) -> bool:
        entry = self.entries.get(agent_id)
        return entry is not None and entry.push and entry.owner in self.live_workers

    def owned_by(self, worker_id: str) -> set[str]:
        return {e.agent_id for e in self.entries.values() if e.push and e.owner == worker_id}


@dataclass(frozen=True)
class WatchPlan:
    claim: list[str]
    release: list[str]


def plan(share: WatchShare, me: str, budget: int, most_per_round: int) -> WatchPlan:
    """What ``me`` claims and releases this round (at most ``most_per_round`` of each)."""
    watchable = [e for e in share.entries.values() if e.push]
    workers = len(share.live_workers | {me})
    target = min(budget, math.ceil(len(watchable) / workers))
    mine = sorted(share.owned_by(me))
    if len(mine) > target:
        return WatchPlan(claim=[], release=mine[target:][:most_per_round])
    claimable = sorted(e.agent_id for e in watchable if e.owner not in share.live_workers)
    random.Random(me).shuffle(claimable)  # noqa: S311  # an order, not a secret
    room = min(target - len(mine), most_per_round)
    return WatchPlan(claim=claimable[:room], release=[])
