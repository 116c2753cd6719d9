"""How hard one mailbox's provider may be called: the pure rules, on a small state that every
replica shares (the adapter keeps it in NATS KV and changes it by compare-and-set).

A mailbox's state holds three things, all in epoch seconds so that replicas agree on them:

- ``not_before``: no call before it (a provider's Retry-After); it only ever moves later.
- per rate budget, ``drained_at``: when the budget's bucket is empty again (the "theoretical
  arrival time" of GCRA, the generic cell rate algorithm). A budget admits at most ``limit``
  units in any ``window`` seconds, ``burst`` of them at once: the bucket holds up to ``burst``
  units and drains at ``(limit - burst) / window`` units a second, so whatever the calls, what
  is admitted in any interval of ``d`` seconds is at most ``burst + rate * d`` (the bucket's level
  after the last of them is the level before, plus their costs, less what drained, and it never
  exceeds ``burst``): at most ``limit`` in any window. One number per budget, not a log of calls.
- ``leases``: the calls in flight, each until it ends or its lease expires (a replica that died
  mid-call frees its slot when the lease runs out).

A call is admitted with a start time: now, or later when the budget is full ("spread out
instead of refused"); the budget is reserved at once, so a burst of calls is handed start times
one after another in a single compare-and-set each, instead of all retrying together. A call that
would start after its deadline is refused with the seconds it would have waited.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Budget:
    """At most ``limit`` units in any ``window`` seconds, ``burst`` of them at once; ``costs``:
    the units each kind of call takes (a kind not named takes none)."""

    name: str
    limit: float
    window: float
    burst: float
    costs: Mapping[str, float]

    def __post_init__(self) -> None:
        if not 0 < max(self.costs.values(), default=0) <= self.burst < self.limit:
            raise ValueError(f"budget {self.name}: need 0 < each cost <= burst < limit")

    @property
    def rate(self) -> float:
        """Units a second the bucket drains: what is sustained, below ``limit / window``."""
        return (self.limit - self.burst) / self.window

    def earliest(self, drained_at: float, cost: float) -> float:
        """When the bucket has room for ``cost``: its level, ``(drained_at - t) * rate``, is
        then at most ``burst - cost``."""
        return drained_at - (self.burst - cost) / self.rate

    def after(self, drained_at: float, start: float, cost: float) -> float:
        """``drained_at`` once ``cost`` is taken at ``start``."""
        return max(drained_at, start) + cost / self.rate


@dataclass(frozen=True)
class ProviderRules:
    """One provider's budgets per mailbox, and how many of its calls may be in flight at once
    (``None``: no limit, and then no lease is taken either)."""

    budgets: tuple[Budget, ...]
    concurrency: int | None = None


@dataclass(frozen=True)
class Pace:
    """One mailbox's shared state: see the module's docstring."""

    not_before: float = 0.0
    drained_at: Mapping[str, float] = field(default_factory=dict)
    leases: Mapping[str, float] = field(default_factory=dict)

    def live_leases(self, now: float) -> dict[str, float]:
        return {lease: until for lease, until in self.leases.items() if until > now}

    def document(self) -> dict[str, Any]:
        return {"not_before": self.not_before, "drained_at": dict(self.drained_at),
                "leases": dict(self.leases)}  # fmt: skip

    @classmethod
    def of(cls, document: Mapping[str, Any] | None) -> Pace:
        if document is None:
            return cls()
        return cls(document["not_before"], document["drained_at"], document["leases"])


@dataclass(frozen=True)
class Call:
    """One call asking to be admitted: its kind, its lease (id and length), its deadline."""

    kind: str
    lease_id: str
    lease_seconds: float
    deadline: float


@dataclass(frozen=True)
class Admitted:
    """Write ``pace`` (compare-and-set), then call at ``start``; ``leased``: release after."""

    pace: Pace
    start: float
    leased: bool


@dataclass(frozen=True)
class Wait:
    """Nothing changes now: decide again after ``seconds``, the hold-off's end or the first
    lease's; ``for_slot``: a slot's release may come sooner, so look again before that."""

    seconds: float
    for_slot: bool = False


@dataclass(frozen=True)
class Refused:
    """The wait would outlast the deadline; ``retry_after``: how long it would have been, when
    known (a slot's release is not)."""

    retry_after: float | None


Decision = Admitted | Wait | Refused


def admit(pace: Pace, rules: ProviderRules, call: Call, now: float) -> Decision:
    """The hold-off first, then a free slot, then room in every budget (reserved at once)."""
    if pace.not_before > now:
        return _wait_until(pace.not_before, call, now)
    live = pace.live_leases(now)
    if rules.concurrency is not None and len(live) >= rules.concurrency:
        return _no_slot(live, call, now)
    start = max([now, *(_earliest(pace, budget, call.kind) for budget in rules.budgets)])
    if start > call.deadline:
        return Refused(start - now)
    drained = {**pace.drained_at, **_taken(pace, rules, call.kind, start)}
    if rules.concurrency is not None:
        live[call.lease_id] = start + call.lease_seconds
    return Admitted(
        replace(pace, drained_at=drained, leases=live), start, rules.concurrency is not None
    )


def released(pace: Pace, lease_id: str, now: float) -> Pace:
    """The call has ended: its slot is free (and expired leases are dropped on the way)."""
    live = pace.live_leases(now)
    live.pop(lease_id, None)
    return replace(pace, leases=live)


def held_off(pace: Pace, until: float) -> Pace:
    """No call before ``until``; an earlier Retry-After never shortens a later one."""
    return replace(pace, not_before=max(pace.not_before, until))


def _no_slot(live: Mapping[str, float], call: Call, now: float) -> Decision:
    """Every slot is taken: look again when the first lease runs out, or sooner (the adapter
    polls, since a release comes before that), and give up at the deadline."""
    if now >= call.deadline:
        return Refused(None)
    return Wait(min(min(live.values()), call.deadline) - now, for_slot=True)


def _wait_until(moment: float, call: Call, now: float) -> Decision:
    return Refused(moment - now) if moment > call.deadline else Wait(moment - now)


def _earliest(pace: Pace, budget: Budget, kind: str) -> float:
    cost = budget.costs.get(kind, 0.0)
    if cost == 0.0:
        return 0.0
    return budget.earliest(pace.drained_at.get(budget.name, 0.0), cost)


def _taken(pace: Pace, rules: ProviderRules, kind: str, start: float) -> dict[str, float]:
    return {
        budget.name: budget.after(pace.drained_at.get(budget.name, 0.0), start, cost)
        for budget in rules.budgets
        if (cost := budget.costs.get(kind, 0.0)) > 0
    }
