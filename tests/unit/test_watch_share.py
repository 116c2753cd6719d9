"""The share of mailboxes each worker watches, as every replica plans it round after round:
mailboxes end up watched once each, evenly, within budgets, and the plan then stays put; a
worker gone leaves its mailboxes to the others; a mailbox its server cannot push is left alone."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailbridge.mail_worker.domain.watch_share import WatchEntry, WatchShare, plan


def rounds(
    entries: dict[str, WatchEntry], workers: list[str], budget: int, times: int = 12
) -> dict[str, WatchEntry]:
    """Every worker plans on the same view and applies its plan, in turn (a claim of a mailbox
    that another took this round fails, as the KV compare-and-set makes it)."""
    live = frozenset(workers)
    for _ in range(times):
        for worker in workers:
            decided = plan(WatchShare(dict(entries), live), worker, budget, most_per_round=50)
            for agent in decided.release:
                entries[agent] = WatchEntry(agent, "", True)
            for agent in decided.claim:
                if entries[agent].owner not in live:
                    entries[agent] = WatchEntry(agent, worker, True)
    return entries


def mailboxes(count: int, owner: str = "") -> dict[str, WatchEntry]:
    return {f"a{i}": WatchEntry(f"a{i}", owner) for i in range(count)}


@settings(max_examples=60, deadline=None)
@given(count=st.integers(0, 150), workers=st.integers(1, 5), budget=st.integers(0, 200))
def test_mailboxes_end_watched_once_each_evenly_within_budgets(
    count: int, workers: int, budget: int
) -> None:
    names = [f"w{i}" for i in range(workers)]
    entries = rounds(mailboxes(count), names, budget)
    held = [sum(e.owner == w for e in entries.values()) for w in names]
    fair = -(-count // workers)
    assert all(h <= min(budget, fair) for h in held)
    assert sum(held) == min(count, workers * min(budget, fair))
    again = rounds(dict(entries), names, budget, times=1)
    assert again == entries  # settled: nothing moves once shared


def test_a_worker_that_joins_takes_its_share_from_the_one_that_had_all() -> None:
    entries = rounds(mailboxes(100), ["w0"], budget=1000)
    assert all(e.owner == "w0" for e in entries.values())
    entries = rounds(entries, ["w0", "w1"], budget=1000)
    held = sorted(sum(e.owner == w for e in entries.values()) for w in ("w0", "w1"))
    assert held == [50, 50]


def test_the_mailboxes_of_a_worker_gone_are_taken_by_the_others() -> None:
    entries = mailboxes(30, owner="dead")
    entries = rounds(entries, ["w0", "w1"], budget=1000)
    assert {e.owner for e in entries.values()} == {"w0", "w1"}


def test_a_mailbox_its_server_cannot_push_for_is_never_claimed() -> None:
    entries = {"a": WatchEntry("a", "", push=False), "b": WatchEntry("b")}
    entries = rounds(entries, ["w0"], budget=10)
    assert entries["a"].owner == "" and entries["b"].owner == "w0"
    assert not WatchShare(entries, frozenset({"w0"})).is_watched("a")
