"""The pacing rules (``mail_worker/domain/pacing.py``), whatever the sequence of calls and clock
times: never more than a budget's limit in any window, never more calls in flight than the
provider's concurrency, never a call before a hold-off, and a burst spread out, not refused."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbridge.mail_worker.adapters.pacing import NatsKvPacing, pacing_limits
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
from mailbridge.mail_worker.ports import Pacing
from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.shared.messages import Provider

EPSILON = 1e-6
GMAIL = Budget("units", limit=6000, window=60, burst=250, costs={"send": 100, "read": 5})
GRAPH_SENDS = Budget("sends", limit=30, window=60, burst=5, costs={"send": 1})
FOREVER = math.inf


def call(kind: str = "send", lease: str = "l", deadline: float = FOREVER) -> Call:
    return Call(kind, lease, lease_seconds=30.0, deadline=deadline)


def admitted(decision: object) -> Admitted:
    assert isinstance(decision, Admitted), decision
    return decision


@st.composite
def steps(draw: st.DrawFn) -> list[tuple[float, str]]:
    """Calls asked after a gap each: bursts of the same kind at once, and lulls between them."""
    bursts = draw(
        st.lists(
            st.tuples(st.floats(0, 30), st.sampled_from(["send", "read"]), st.integers(1, 40)),
            min_size=1,
            max_size=12,
        )
    )
    return [(gap if n == 0 else 0.0, kind) for gap, kind, size in bursts for n in range(size)]


def starts_of(rules: ProviderRules, schedule: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """Each call asked ``gap`` seconds after the one before, admitted whenever the rules say."""
    pace, now, starts = Pace(), 1_000.0, []
    for n, (gap, kind) in enumerate(schedule):
        now += gap
        decision = admitted(admit(pace, rules, call(kind, lease=str(n)), now))
        assert decision.start >= now
        pace = decision.pace
        starts.append((decision.start, kind))
    return starts


def most_in_any_window(budget: Budget, starts: list[tuple[float, str]]) -> float:
    """The largest cost admitted in a closed window of ``budget.window`` seconds; the worst
    window begins at some start."""
    return max(
        sum(
            budget.costs.get(kind, 0) for at, kind in starts if first <= at <= first + budget.window
        )
        for first, _ in starts
    )


@given(steps())
def test_gmail_never_spends_more_than_its_units_in_any_minute(
    schedule: list[tuple[float, str]],
) -> None:
    starts = starts_of(ProviderRules((GMAIL,)), schedule)
    assert most_in_any_window(GMAIL, starts) <= GMAIL.limit + EPSILON


@given(steps())
def test_graph_never_sends_more_than_thirty_in_any_minute_nor_reads_count(
    schedule: list[tuple[float, str]],
) -> None:
    starts = starts_of(ProviderRules((GRAPH_SENDS,)), schedule)
    assert most_in_any_window(GRAPH_SENDS, starts) <= GRAPH_SENDS.limit + EPSILON
    reads = [at for at, kind in starts if kind == "read"]
    asked = 1_000.0
    for (gap, kind), (at, _) in zip(schedule, starts, strict=True):
        asked += gap
        if kind == "read":
            assert at == asked  # a read costs no send: never held back by sends
    assert len(reads) == sum(kind == "read" for _, kind in schedule)


@dataclass
class Held:
    lease: str
    since: float
    until: float  # released, or the lease ran out


events = st.lists(
    st.one_of(
        st.tuples(st.just("call"), st.floats(0, 3, allow_nan=False)),
        st.tuples(st.just("end"), st.integers(0, 1000)),
        st.tuples(st.just("crash"), st.integers(0, 1000)),
    ),
    max_size=150,
)


@given(events)
def test_never_more_calls_in_flight_than_the_concurrency_crashed_holders_included(
    script: list[tuple[str, float]],
) -> None:
    """Calls arrive, end (released) or crash (never released, their lease runs out); at every
    moment the calls admitted and not yet ended nor expired are at most four."""
    rules = ProviderRules((), concurrency=4)
    pace, now, holders, open_ = Pace(), 0.0, list[Held](), list[Held]()
    for n, (what, value) in enumerate(script):
        if what == "call":
            now += value
            decision = admit(pace, rules, call(lease=str(n)), now)
            if isinstance(decision, Admitted):
                pace = decision.pace
                held = Held(str(n), now, decision.start + 30.0)
                holders.append(held)
                open_.append(held)
            else:
                assert isinstance(decision, Wait) and decision.seconds > 0
        elif open_:
            held = open_.pop(int(value) % len(open_))
            if what == "end":
                pace, held.until = released(pace, held.lease, now), min(held.until, now)
        for moment in {h.since for h in holders}:
            assert sum(h.since <= moment < h.until for h in holders) <= 4


def test_a_crashed_holders_slot_frees_when_its_lease_runs_out() -> None:
    rules = ProviderRules((), concurrency=1)
    pace = admitted(admit(Pace(), rules, call(lease="crashed"), 0.0)).pace
    blocked = admit(pace, rules, call(lease="next"), 10.0)
    assert blocked == Wait(20.0, for_slot=True)  # the crashed lease runs out at 30
    assert admitted(admit(pace, rules, call(lease="next"), 30.0)).start == 30.0


def test_a_burst_of_sends_is_spread_out_in_order_not_refused() -> None:
    rules = ProviderRules((GRAPH_SENDS,))
    starts = [at for at, _ in starts_of(rules, [(0.0, "send")] * 12)]
    assert starts[:5] == [1_000.0] * 5  # the burst allowance goes at once
    gaps = [later - earlier for earlier, later in pairwise(starts[4:])]
    assert gaps == pytest.approx([60 / 25] * 7)  # then one each (limit - burst) / window


@given(st.floats(0, 100), st.floats(0, 100))
def test_a_hold_off_is_never_moved_earlier_and_no_call_starts_before_it(
    first: float, second: float
) -> None:
    pace = held_off(held_off(Pace(), 1_000.0 + first), 1_000.0 + second)
    assert pace.not_before == 1_000.0 + max(first, second)
    decision = admit(pace, ProviderRules((GMAIL,)), call(), 1_000.0)
    if pace.not_before > 1_000.0:
        assert decision == Wait(pace.not_before - 1_000.0)
    later = admitted(admit(pace, ProviderRules((GMAIL,)), call(), pace.not_before))
    assert later.start >= pace.not_before


def test_a_wait_beyond_the_deadline_is_refused_with_the_seconds_it_would_take() -> None:
    rules = ProviderRules((GRAPH_SENDS,))
    pace = Pace(drained_at={"sends": 1_060.0})  # full: room for one once 4 of 5 have drained
    too_late = admit(pace, rules, call(deadline=1_010.0), 1_000.0)
    assert isinstance(too_late, Refused) and too_late.retry_after == pytest.approx(50.4)
    held = admit(held_off(pace, 2_000.0), rules, call(deadline=1_010.0), 1_000.0)
    assert held == Refused(1_000.0)
    in_time = admitted(admit(pace, rules, call(deadline=1_060.0), 1_000.0))
    assert in_time.start == pytest.approx(1_050.4)


def test_every_slot_busy_past_the_deadline_is_refused_without_a_known_wait() -> None:
    rules = ProviderRules((), concurrency=1)
    pace = admitted(admit(Pace(), rules, call(lease="a"), 0.0)).pace
    assert admit(pace, rules, call(lease="b", deadline=5.0), 5.0) == Refused(None)


def test_the_state_round_trips_through_its_document() -> None:
    pace = Pace(12.5, {"units": 3.0}, {"a": 40.0})
    assert Pace.of(pace.document()) == pace and Pace.of(None) == Pace()


def test_a_budget_whose_cost_cannot_fit_its_burst_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="burst"):
        replace(GMAIL, burst=50)


def test_the_settings_default_to_the_documented_limits() -> None:
    limits = pacing_limits(MailWorkerSettings.model_construct(ack_wait_seconds=60.0))
    gmail, graph = limits.rules[Provider.GOOGLE], limits.rules[Provider.MICROSOFT]
    assert (gmail.budgets[0].limit, gmail.budgets[0].costs) == (6000, {"send": 100, "read": 5})
    assert graph.concurrency == 4
    assert {(b.name, b.limit, b.window) for b in graph.budgets} == {
        ("requests", 10_000, 600),
        ("sends", 30, 60),
    }
    assert limits.max_wait_seconds == 20.0


def test_the_adapter_is_the_port() -> None:
    """mypy checks the assignment: NatsKvPacing has every method of Pacing, as declared."""
    settings = MailWorkerSettings.model_construct(ack_wait_seconds=60.0)
    pacing: Pacing = NatsKvPacing(pacing_limits(settings))
    assert pacing.call is not None
