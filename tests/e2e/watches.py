"""Who watches a mailbox, as the watch leases in NATS KV say (``adapters/watch_leases.py``)."""

from __future__ import annotations

import json
from collections import Counter

from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError, NoKeysError

from mailbridge.devstack.system import RunningSystem
from mailbridge.mail_worker.adapters.kv import kv_key
from mailbridge.mail_worker.adapters.watch_leases import MAILBOXES, WORKERS
from tests.e2e.mailboxes import Agent
from tests.support.waiting import eventually


async def watcher_of(bus: Client, agent: Agent, besides: str = "") -> str:
    """The id of the worker that holds the agent's watch (other than ``besides``), once one does."""

    async def owner() -> str | None:
        found = await watch_entry(bus, agent)
        return found["owner"] if found and found["owner"] not in ("", besides) else None

    try:
        return await eventually(owner, what=f"a worker watching {agent.agent_id}", every=0.05)
    except AssertionError as exc:  # say what the leases hold, for whoever reads the failure
        raise AssertionError(f"{exc}; its entry: {await watch_entry(bus, agent)}") from None


async def watch_entry(bus: Client, agent: Agent) -> dict[str, str] | None:
    bucket = await bus.jetstream().key_value(MAILBOXES)
    try:
        entry = await bucket.get(kv_key(agent.agent_id))
    except KeyNotFoundError:
        return None
    return json.loads(entry.value) if entry.value else None


def replica_named_by(stack: RunningSystem, worker_id: str) -> str:
    """A worker id is ``{host}-{pid}-{random}``: the replica with that pid."""
    pid = int(worker_id.rsplit("-", 2)[1])
    found = (name for name, running in stack.supervisor.pids().items() if running == pid)
    return next(found, "")


async def owners(bus: Client) -> Counter[str]:
    """How many mailboxes each worker watches ("" for those no one holds), servers that cannot
    push left out."""
    bucket = await bus.jetstream().key_value(MAILBOXES)
    try:
        keys = await bucket.keys()
    except NoKeysError:
        return Counter()
    entries = [json.loads((await bucket.get(key)).value or b"{}") for key in keys]
    return Counter(entry["owner"] for entry in entries if entry.get("push"))


async def live_workers(bus: Client) -> set[str]:
    """The ids of the workers whose heartbeat is in ``MAIL_WATCH_WORKERS``."""
    bucket = await bus.jetstream().key_value(WORKERS)
    try:
        return set(await bucket.keys())
    except NoKeysError:
        return set()


def worker_id_of(stack: RunningSystem, name: str, ids: set[str]) -> str:
    return next(worker for worker in ids if replica_named_by(stack, worker) == name)
